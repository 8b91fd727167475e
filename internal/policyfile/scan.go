package policyfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// The scanner walks a file's JSON tokens before encoding/json decodes it,
// for what encoding/json does not do: it rejects keys given twice and
// field names that match only case-insensitively, and it records where
// every setting is, so that an error can name its line and column.

// kind is the JSON kind a value must have.
type kind int

const (
	kindBool kind = iota + 1
	kindString
	kindArray  // elem
	kindObject // fields
	kindMap    // any keys, elem
)

// shape is the JSON shape a value must have.
type shape struct {
	kind     kind
	fields   map[string]*shape
	elem     *shape
	nullable bool // null stands for "none"
}

// shapeOf derives the shape of t from its Go type and json tags, so that
// the file's structs are the one statement of its format. t holds only
// bools, strings, pointers to structs, structs, string-keyed maps and
// slices.
func shapeOf(t reflect.Type) *shape {
	nullable := false
	if t.Kind() == reflect.Pointer {
		t, nullable = t.Elem(), true
	}
	switch t.Kind() {
	case reflect.Bool:
		return &shape{kind: kindBool}
	case reflect.Slice:
		return &shape{kind: kindArray, elem: shapeOf(t.Elem()), nullable: true}
	case reflect.Map:
		return &shape{kind: kindMap, elem: shapeOf(t.Elem()), nullable: true}
	case reflect.Struct:
		s := &shape{kind: kindObject, fields: map[string]*shape{}, nullable: nullable}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			s.fields[name] = shapeOf(f.Type)
		}
		return s
	}
	return &shape{kind: kindString}
}

// want describes what the shape wants, for an error.
func (s *shape) want() string {
	switch s.kind {
	case kindBool:
		return "true or false"
	case kindString:
		return "a string"
	case kindArray:
		return "a list of " + strings.TrimPrefix(s.elem.want(), "a ") + "s"
	}
	return "an object"
}

// found describes a token, for an error.
func found(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case bool:
		return fmt.Sprint(v)
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case json.Delim:
		if v == '[' {
			return "a list"
		}
		return "an object"
	}
	return fmt.Sprintf("%v", tok)
}

// scanner walks one file.
type scanner struct {
	data []byte
	dec  *json.Decoder
	// pos maps the path of every setting — `domains["a.example"].mta_sts`,
	// `...mx[1]` — to the offset of its key, or of the value for a list
	// element.
	pos map[string]int64
}

// scan checks that data is one JSON object of the shape of file, and
// returns where each setting is.
func scan(data []byte) (map[string]int64, error) {
	s := &scanner{data: data, dec: json.NewDecoder(bytes.NewReader(data)), pos: map[string]int64{}}
	s.dec.UseNumber()
	if err := s.value("", shapeOf(reflect.TypeFor[file]())); err != nil {
		return nil, err
	}
	tok, off, err := s.token(true)
	switch {
	case errors.Is(err, io.EOF):
		return s.pos, nil
	case err != nil:
		return nil, err
	}
	return nil, s.errAt(off, "", fmt.Sprintf("unexpected %s after the JSON object", found(tok)))
}

// token returns the next token and the offset where it starts. The end of
// the file is io.EOF where endOK says a value may end there, and an error
// elsewhere.
func (s *scanner) token(endOK bool) (json.Token, int64, error) {
	// InputOffset is the end of the last token; the next one starts after
	// the white space and separators that follow it.
	off := s.dec.InputOffset()
	for off < int64(len(s.data)) && strings.IndexByte(" \t\r\n,:", s.data[off]) >= 0 {
		off++
	}
	tok, err := s.dec.Token()
	switch {
	case err == nil:
		return tok, off, nil
	case errors.Is(err, io.EOF) && endOK:
		return nil, off, io.EOF
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return nil, off, s.errAt(int64(len(s.data)), "", "not valid JSON: the file ends inside a value")
	}
	// The decoder's SyntaxError offsets are relative to the value it was
	// reading or to the stream, depending on where it failed; a check of
	// the whole file says where the first fault is.
	var se *json.SyntaxError
	if errors.As(json.Unmarshal(s.data, new(json.RawMessage)), &se) {
		return nil, off, s.errAt(max(se.Offset-1, 0), "", "not valid JSON: "+se.Error())
	}
	return nil, off, s.errAt(off, "", "not valid JSON: "+err.Error())
}

// value checks the next value against sh. path is the setting's path.
func (s *scanner) value(path string, sh *shape) error {
	tok, off, err := s.token(path == "")
	if errors.Is(err, io.EOF) {
		return s.errAt(off, path, "the file is empty: want a JSON object")
	}
	if err != nil {
		return err
	}
	if _, ok := s.pos[path]; !ok {
		s.pos[path] = off
	}
	switch v := tok.(type) {
	case nil:
		if sh.nullable {
			return nil
		}
	case bool:
		if sh.kind == kindBool {
			return nil
		}
	case string:
		if sh.kind == kindString {
			return nil
		}
	case json.Delim:
		switch {
		case v == '{' && (sh.kind == kindObject || sh.kind == kindMap):
			return s.object(path, sh)
		case v == '[' && sh.kind == kindArray:
			return s.array(path, sh)
		}
	}
	return s.errAt(off, path, fmt.Sprintf("want %s, found %s", sh.want(), found(tok)))
}

// object checks the members of an object whose '{' was read.
func (s *scanner) object(path string, sh *shape) error {
	seen := map[string]bool{}
	for s.dec.More() {
		tok, off, err := s.token(false)
		if err != nil {
			return err
		}
		key, _ := tok.(string) // the decoder returns object keys as strings
		child := path + "." + key
		switch {
		case sh.kind == kindMap:
			child = fmt.Sprintf("%s[%q]", path, key)
		case path == "":
			child = key
		}
		if seen[key] {
			return s.errAt(off, child, "given twice in one object: say it once")
		}
		seen[key] = true
		fs := sh.elem
		if sh.kind == kindObject {
			if fs = sh.fields[key]; fs == nil {
				return s.errAt(off, path, fmt.Sprintf("unknown field %q (want one of %s)", key, fieldList(sh)))
			}
		}
		s.pos[child] = off
		if err := s.value(child, fs); err != nil {
			return err
		}
	}
	_, _, err := s.token(false) // '}'
	return err
}

// array checks the elements of a list whose '[' was read.
func (s *scanner) array(path string, sh *shape) error {
	for i := 0; s.dec.More(); i++ {
		if err := s.value(fmt.Sprintf("%s[%d]", path, i), sh.elem); err != nil {
			return err
		}
	}
	_, _, err := s.token(false) // ']'
	return err
}

func fieldList(sh *shape) string {
	return strings.Join(slices.Sorted(maps.Keys(sh.fields)), ", ")
}

func (s *scanner) errAt(off int64, path, reason string) *Error {
	line, col := lineColumn(s.data, off)
	return &Error{Line: line, Column: col, Field: path, Reason: reason}
}
