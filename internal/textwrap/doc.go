// Package textwrap fills words into lines of a given width, for the text
// the example programs print for people.
//
// Width counts characters (runes), not bytes, so that a line of accented
// words is as wide as one of ASCII words on a terminal. Words are never
// broken: a word longer than the width stands alone on its line, so that
// a DNS record or a command in a fix can be copied whole.
package textwrap
