package smtpclient

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on what a server may send as one reply. RFC 5321 §4.5.3.1.5
// limits a reply line to 512 octets, but §4.5.3.1 asks implementations to
// avoid such limits where they can, and real servers exceed it with long
// block-list explanations; 4096 octets per line is tolerant of those and
// still bounded. An EHLO reply, the longest in practice, has about twenty
// lines.
const (
	maxReplyLine  = 4096     // octets per line, CRLF included
	maxReplyLines = 100      // lines per reply
	maxReplyBytes = 64 << 10 // octets per reply
)

// Reply is a server's reply to a command (RFC 5321 §4.2). A Reply with a
// 4xx or 5xx code is also the error that the command returns.
type Reply struct {
	// Code is the three-digit reply code (RFC 5321 §4.2.1), 200 to 559.
	Code int
	// Enhanced is the enhanced status code (RFC 2034, RFC 3463) the text
	// began with, e.g. {5, 1, 1}; all zero when the reply carried none, or
	// one whose class did not match the reply code's first digit.
	Enhanced [3]int
	// Text is the text of the reply without the codes; the lines of a
	// multi-line reply are joined by "\n". Invalid UTF-8 is replaced by
	// U+FFFD; control characters are never present.
	Text string

	// lines are the texts of the reply's lines, without the codes.
	lines []string
}

// Error formats the reply as the server sent it, on one line.
func (r *Reply) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "smtpclient: server replied %d", r.Code)
	if r.HasEnhanced() {
		b.WriteString(" " + r.EnhancedString())
	}
	if r.Text != "" {
		b.WriteString(" " + strings.ReplaceAll(r.Text, "\n", " "))
	}
	return b.String()
}

// Temporary reports a transient negative reply (4xx, RFC 5321 §4.2.1):
// the same command may succeed later.
func (r *Reply) Temporary() bool { return r.Code >= 400 && r.Code < 500 }

// Permanent reports a permanent negative reply (5xx).
func (r *Reply) Permanent() bool { return r.Code >= 500 }

// Positive reports a 2xx or 3xx reply.
func (r *Reply) Positive() bool { return r.Code >= 200 && r.Code < 400 }

// Is reports ErrConnLost for a 421 reply: RFC 5321 §3.8, the server is
// closing the transmission channel.
func (r *Reply) Is(target error) bool { return target == ErrConnLost && r.Code == 421 }

// HasEnhanced reports whether the reply carried an enhanced status code.
func (r *Reply) HasEnhanced() bool { return r.Enhanced[0] != 0 }

// EnhancedString formats the enhanced status code as "5.1.1", or returns
// "" when the reply carried none.
func (r *Reply) EnhancedString() string {
	if !r.HasEnhanced() {
		return ""
	}
	return fmt.Sprintf("%d.%d.%d", r.Enhanced[0], r.Enhanced[1], r.Enhanced[2])
}

// Lines returns the text of each line of the reply, without the codes.
func (r *Reply) Lines() []string { return append([]string(nil), r.lines...) }

// readReply reads one reply. An I/O failure is returned as it is (EOF in
// the middle of a reply becomes io.ErrUnexpectedEOF); a reply that breaks
// RFC 5321 §4.2 is a *ProtocolError with an empty Op. trace, when not nil,
// sees each line as it arrived, without its line end.
func readReply(br *bufio.Reader, trace func(string)) (*Reply, error) {
	r := &Reply{}
	total := 0
	for n := 0; ; n++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, &ProtocolError{Reason: fmt.Sprintf("reply line longer than %d octets", maxReplyLine), Got: truncate(string(line))}
		}
		if err != nil {
			if errors.Is(err, io.EOF) && (len(line) > 0 || n > 0) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		total += len(line)
		if trace != nil {
			trace(strings.TrimRight(string(line), "\r\n"))
		}
		code, more, text, perr := parseReplyLine(line)
		if perr != nil {
			return nil, perr
		}
		switch {
		case n == 0:
			r.Code = code
		case code != r.Code:
			// RFC 5321 §4.2.1: every line of a multi-line reply has the same code.
			return nil, &ProtocolError{Reason: fmt.Sprintf("multi-line reply changes its code from %d", r.Code), Got: truncate(string(line))}
		}
		r.lines = append(r.lines, text)
		if !more {
			break
		}
		if n+1 >= maxReplyLines || total >= maxReplyBytes {
			return nil, &ProtocolError{Reason: fmt.Sprintf("reply longer than %d lines or %d octets", maxReplyLines, maxReplyBytes)}
		}
	}
	r.stripEnhanced()
	r.Text = strings.Join(r.lines, "\n")
	return r, nil
}

// parseReplyLine splits one line of a reply (RFC 5321 §4.2):
//
//	Reply-line = *( Reply-code "-" [ textstring ] CRLF )
//	             Reply-code [ SP textstring ] CRLF
//	Reply-code = %x32-35 %x30-35 %x30-39
//
// A bare LF ending the line is accepted, as established clients do; a CR
// anywhere else, or any other control character but HT, is not.
func parseReplyLine(line []byte) (code int, more bool, text string, err error) {
	line = line[:len(line)-1] // the LF ReadSlice stopped at
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	bad := func(reason string) (int, bool, string, error) {
		return 0, false, "", &ProtocolError{Reason: reason, Got: truncate(string(line))}
	}
	if len(line) < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' || line[2] < '0' || line[2] > '9' {
		return bad("reply line does not begin with a reply code 200-559")
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if len(line) == 3 {
		return code, false, "", nil
	}
	switch line[3] {
	case ' ':
	case '-':
		more = true
	default:
		return bad("reply code not followed by SP, \"-\" or the line end")
	}
	rest := line[4:]
	for _, b := range rest {
		if (b < ' ' && b != '\t') || b == 0x7f {
			return bad("control character in reply text")
		}
	}
	if utf8.Valid(rest) {
		text = string(rest)
	} else {
		// Servers localise texts in Latin-1 now and then; keep what can
		// be kept rather than fail the session over a text.
		text = strings.ToValidUTF8(string(rest), "\uFFFD")
	}
	return code, more, text, nil
}

// stripEnhanced takes the enhanced status code off the first line (RFC
// 2034 §4: it begins the text) and off following lines that repeat it.
func (r *Reply) stripEnhanced() {
	if len(r.lines) == 0 {
		return
	}
	code, n, ok := parseEnhanced(r.lines[0], r.Code/100)
	if !ok {
		return
	}
	r.Enhanced = code
	prefix := r.lines[0][:n]
	for i, l := range r.lines {
		if rest, ok := strings.CutPrefix(l, prefix); ok && (rest == "" || rest[0] == ' ') {
			r.lines[i] = strings.TrimPrefix(rest, " ")
		}
	}
}

// parseEnhanced parses the status code at the start of text (RFC 3463 §2:
// class "." subject "." detail, subject and detail 1 to 3 digits),
// followed by a space or the end of the text. RFC 3463 §2 requires the
// class to match the reply code's first digit; a code that does not is
// left in the text. n is the length of the code.
func parseEnhanced(text string, class int) (code [3]int, n int, ok bool) {
	if len(text) < 5 || text[0] != byte('0'+class) || (class != 2 && class != 4 && class != 5) || text[1] != '.' {
		return code, 0, false
	}
	code[0] = class
	i := 2
	for part := 1; part <= 2; part++ {
		start := i
		for i < len(text) && i-start < 4 && text[i] >= '0' && text[i] <= '9' {
			code[part] = code[part]*10 + int(text[i]-'0')
			i++
		}
		if digits := i - start; digits < 1 || digits > 3 {
			return [3]int{}, 0, false
		}
		if part == 1 {
			if i >= len(text) || text[i] != '.' {
				return [3]int{}, 0, false
			}
			i++
		}
	}
	if i < len(text) && text[i] != ' ' {
		return [3]int{}, 0, false
	}
	return code, i, true
}

// allowedReply reports whether code may answer the step op, and when it
// may not, what was expected. RFC 5321 §4.3.2 lists the replies of each
// command; the positive ones are enforced exactly, so that no reply a
// command cannot get is taken for its success (a 250 to DATA is not a
// delivered message). Negative replies are every one allowed: whatever
// its code, a 4yz or 5yz refuses the command, temporarily or permanently
// (§4.2.1), and can never be mistaken for success, while the lists are not
// complete in practice (RFC 3207, 4954, 1870, 3461, 6531, 7504 add codes,
// and servers answer RCPT with 554 or 504). A reply whose first digit is
// not 2 to 5 never gets here (parseReplyLine).
func allowedReply(op string, code int) (ok bool, expected string) {
	if code >= 400 {
		return true, ""
	}
	var want []int
	switch op {
	case "greeting": // §4.3.2 CONNECTION ESTABLISHMENT; §3.1
		want = []int{220}
	case "EHLO", "HELO", "MAIL", "RSET", "NOOP": // §4.3.2
		want = []int{250}
	case "RCPT":
		// §4.3.2: 250, or 251 (§3.4). 252 is a reply to VRFY and EXPN
		// only (§3.5.3); a server that gives it to RCPT is not speaking
		// of this recipient.
		want = []int{250, 251}
	case "DATA": // §4.3.2: 354 only, as the intermediate reply
		want = []int{354}
	case "end of data": // §4.3.2: DATA ... -> data -> S: 250
		want = []int{250}
	case "QUIT": // §4.3.2
		want = []int{221}
	case "STARTTLS": // RFC 3207 §4
		want = []int{220}
	case "AUTH": // RFC 4954 §4: 334 carries a challenge, 235 ends it
		want = []int{235, 334}
	}
	for _, w := range want {
		if code == w {
			return true, ""
		}
	}
	return false, fmt.Sprintf("reply code not allowed for %s: expected %s or a 4yz/5yz refusal (RFC 5321 §4.3.2)", op, codeList(want))
}

// codeList formats codes as "250" or "250 or 251".
func codeList(codes []int) string {
	s := make([]string, len(codes))
	for i, c := range codes {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, " or ")
}
