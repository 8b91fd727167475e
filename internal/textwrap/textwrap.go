package textwrap

import (
	"strings"
	"unicode/utf8"
)

// Lines breaks s at white space into lines of at most width characters,
// each holding as many words as fit, separated by one space. A word wider
// than width has a line of its own. s without words is one empty line.
func Lines(s string, width int) []string {
	var lines []string
	line, n := "", 0
	for _, word := range strings.Fields(s) {
		wn := utf8.RuneCountInString(word)
		switch {
		case line == "":
			line, n = word, wn
		case n+1+wn <= width:
			line, n = line+" "+word, n+1+wn
		default:
			lines = append(lines, line)
			line, n = word, wn
		}
	}
	return append(lines, line)
}
