package smtpclient

import (
	"bufio"
	"bytes"
)

// dataWriter encodes message content for DATA as it streams through: every
// line end — CRLF, or a bare CR or LF — goes out as CRLF (RFC 5321 §2.3.8
// forbids bare ones), a line that begins with "." gets one more
// (transparency, §4.5.2), and Close ends the last line and writes the
// terminating ".\r\n" (§4.1.1.4). It holds no more than its state: the
// content is never gathered in memory.
type dataWriter struct {
	w         *bufio.Writer
	lineStart bool // the next octet begins a line; true at the start
	afterCR   bool // the last octet was a CR, already sent as CRLF
	err       error
}

var crlf = []byte("\r\n")

func (d *dataWriter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	for i := 0; i < len(p); {
		switch b := p[i]; {
		case b == '\n' && d.afterCR:
			// The LF of a CRLF whose CR went out as CRLF.
			d.afterCR = false
			i++
			continue
		case b == '\r' || b == '\n':
			d.w.Write(crlf)
			d.afterCR = b == '\r'
			d.lineStart = true
			i++
			continue
		case b == '.' && d.lineStart:
			d.w.WriteByte('.')
		}
		d.afterCR, d.lineStart = false, false
		// Copy the rest of the line in one piece.
		rest := p[i:]
		end := bytes.IndexByte(rest, '\n')
		if end < 0 {
			end = len(rest)
		}
		if cr := bytes.IndexByte(rest[:end], '\r'); cr >= 0 {
			end = cr
		}
		d.w.Write(rest[:end])
		i += end
	}
	if _, err := d.w.Write(nil); err != nil {
		// bufio.Writer keeps its first error; report it once per Write.
		d.err = err
		return 0, err
	}
	return len(p), nil
}

// Close ends an unterminated last line and writes the end-of-data line.
func (d *dataWriter) Close() error {
	if d.err != nil {
		return d.err
	}
	if !d.lineStart {
		d.w.Write(crlf)
	}
	if _, err := d.w.WriteString(".\r\n"); err != nil {
		d.err = err
		return err
	}
	return nil
}
