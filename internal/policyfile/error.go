package policyfile

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Error is what is wrong in a policy file, and where. A policy file that
// fails to parse is a configuration error: it is permanent until the file
// is fixed.
type Error struct {
	// File is the file's name as given to Read; empty from Parse.
	File string
	// Line and Column locate the error, both from 1; the column counts
	// characters. They are 0 when the error is about the whole file (its
	// size).
	Line, Column int
	// Field is the setting at fault, written as a path:
	// `domains["example.com"].mta_sts.mx[1]`. It is empty for a syntax
	// error and for a field of the top-level object.
	Field string
	// Reason says what was expected and what was found.
	Reason string
}

// Error returns "file:line:column: field: reason", "policy file" standing
// in for a file without a name.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
	} else {
		b.WriteString("policy file")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// lineColumn converts a byte offset in data to a line and a column in
// characters, both from 1.
func lineColumn(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	start := bytes.LastIndexByte(before, '\n') + 1
	return bytes.Count(before, []byte("\n")) + 1, utf8.RuneCount(before[start:]) + 1
}

// at returns the error for the setting at path, located at the setting
// or, when the file does not write it (a required value left out), at the
// nearest enclosing setting that it does write.
func at(data []byte, pos map[string]int64, path, reason string) *Error {
	e := &Error{Field: path, Reason: reason}
	for p := path; ; p = parent(p) {
		if off, ok := pos[p]; ok {
			e.Line, e.Column = lineColumn(data, off)
			return e
		}
		if p == "" {
			return e
		}
	}
}

// parent returns the path of the setting that holds the one at p. Keys of
// maps are Go-quoted, so `["` starts the last such component; field names
// have no dots.
func parent(p string) string {
	switch {
	case strings.HasSuffix(p, `"]`):
		return p[:strings.LastIndex(p, `["`)]
	case strings.HasSuffix(p, "]"):
		return p[:strings.LastIndexByte(p, '[')]
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}
