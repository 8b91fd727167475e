package textwrap

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLines(t *testing.T) {
	for _, tc := range []struct {
		in    string
		width int
		want  []string
	}{
		{"", 10, []string{""}},
		{" \t\n", 10, []string{""}},
		{"short", 10, []string{"short"}},
		{"one two three", 7, []string{"one two", "three"}},
		{"exactly ten", 11, []string{"exactly ten"}},
		{"exactly ten", 10, []string{"exactly", "ten"}},
		{"a verylongword b", 4, []string{"a", "verylongword", "b"}},
		{"  spaces\t\tcollapse \n here ", 80, []string{"spaces collapse here"}},
		{"§§§ §§§", 7, []string{"§§§ §§§"}}, // widths count characters, not bytes
		{"a b", 0, []string{"a", "b"}},
	} {
		if got := Lines(tc.in, tc.width); !slices.Equal(got, tc.want) {
			t.Errorf("Lines(%q, %d) = %q, want %q", tc.in, tc.width, got, tc.want)
		}
	}
}

// FuzzLines: wrapping keeps every word, in order; no line is wider than
// width unless it is one word; and every line is filled: the next line's
// first word would not have fitted on it.
func FuzzLines(f *testing.F) {
	f.Add("one two three", 7)
	f.Add("fix: publish _25._tcp.mx.example.com. IN TLSA 3 1 1 0123456789abcdef", 20)
	f.Add("§§§ §§§ "+strings.Repeat("é", 72)+" x", 72)
	f.Add(strings.Repeat("ab ", 40), 1)
	f.Fuzz(func(t *testing.T, s string, width int) {
		width = int(uint(width) % 200)
		lines := Lines(s, width)
		if got, want := strings.Join(lines, " "), strings.Join(strings.Fields(s), " "); got != want {
			t.Fatalf("Lines(%q, %d) = %q: words changed", s, width, lines)
		}
		for i, l := range lines {
			n := utf8.RuneCountInString(l)
			if n > width && strings.Contains(l, " ") {
				t.Fatalf("Lines(%q, %d): line %q is too wide", s, width, l)
			}
			if i+1 < len(lines) {
				next, _, _ := strings.Cut(lines[i+1], " ")
				if n+1+utf8.RuneCountInString(next) <= width {
					t.Fatalf("Lines(%q, %d): %q would have fitted after %q", s, width, next, l)
				}
			}
		}
	})
}
