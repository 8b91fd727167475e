package delivery

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// maxHeaderLine bounds one header line Inspect looks at as a field; longer
// lines are only scanned for 8-bit bytes.
const maxHeaderLine = 4096

// Inspect reads the message content once and sets the fields that depend
// on it: EightBit (a byte above 127 anywhere), SMTPUTF8 (one in the
// header, RFC 6531 §3.2) and TLSOptional (a "TLS-Required: No" header
// field, RFC 8689 §3). It only ever sets them, never clears them: a
// caller may already know better. A queue calls it once, when the message
// is accepted, and stores the flags with the message.
func (m *Message) Inspect() error {
	if m.Body == nil {
		return nil
	}
	br := bufio.NewReader(io.NewSectionReader(m.Body, 0, m.Size))
	var field []byte // the current header field, unfolded
	inHeader := true
	midLine := false // the previous read ended inside a line longer than the buffer
	finishField := func() {
		if isTLSRequiredNo(field) {
			m.TLSOptional = true
		}
		field = field[:0]
	}
	for {
		line, err := br.ReadSlice('\n')
		continued := midLine
		midLine = err == bufio.ErrBufferFull
		if midLine {
			err = nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		eight := hasEightBit(line)
		m.EightBit = m.EightBit || eight
		if inHeader {
			m.SMTPUTF8 = m.SMTPUTF8 || eight
			trimmed := bytes.TrimRight(line, "\r\n")
			switch {
			case continued:
				// More of an over-long line: part of the current field.
				if len(field)+len(trimmed) <= maxHeaderLine {
					field = append(field, trimmed...)
				}
			case len(trimmed) == 0 && len(line) > 0:
				// RFC 5322 §2.1: an empty line ends the header.
				finishField()
				inHeader = false
			case len(trimmed) > 0 && (trimmed[0] == ' ' || trimmed[0] == '\t'):
				// RFC 5322 §2.2.3: a folded continuation line.
				if len(field)+len(trimmed) <= maxHeaderLine {
					field = append(field, trimmed...)
				}
			default:
				finishField()
				if len(trimmed) <= maxHeaderLine {
					field = append(field, trimmed...)
				}
			}
		} else if m.EightBit {
			// Nothing left to learn.
			return nil
		}
		if err != nil { // io.EOF
			if inHeader {
				finishField()
			}
			return nil
		}
	}
}

// isTLSRequiredNo reports whether an unfolded header field is
// "TLS-Required: No" (RFC 8689 §3; field name and value are
// case-insensitive, white space around the value ignored).
func isTLSRequiredNo(field []byte) bool {
	name, value, ok := bytes.Cut(field, []byte(":"))
	if !ok {
		return false
	}
	return bytes.EqualFold(bytes.TrimRight(name, " \t"), []byte("TLS-Required")) &&
		bytes.EqualFold(bytes.TrimSpace(value), []byte("No"))
}

func hasEightBit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}
