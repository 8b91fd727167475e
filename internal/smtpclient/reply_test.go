package smtpclient

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

func parse(s string) (*Reply, error) {
	return readReply(bufio.NewReaderSize(strings.NewReader(s), maxReplyLine), nil)
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		code     int
		enhanced [3]int
		text     string
		lines    []string
	}{
		{"single line", "250 OK\r\n", 250, [3]int{}, "OK", []string{"OK"}},
		{"code alone is a complete reply (RFC 5321 §4.2)", "250\r\n", 250, [3]int{}, "", []string{""}},
		{"code with a space and no text", "354 \r\n", 354, [3]int{}, "", []string{""}},
		{"multi-line reply joins its lines", "250-mx.example.net\r\n250-PIPELINING\r\n250 SIZE 1000\r\n", 250, [3]int{},
			"mx.example.net\nPIPELINING\nSIZE 1000", []string{"mx.example.net", "PIPELINING", "SIZE 1000"}},
		{"continuation line with empty text", "250-\r\n250 done\r\n", 250, [3]int{}, "\ndone", []string{"", "done"}},
		{"enhanced status code is parsed and stripped (RFC 2034 §4)", "550 5.1.1 User unknown\r\n", 550, [3]int{5, 1, 1}, "User unknown", nil},
		{"enhanced code with three-digit parts (RFC 3463 §2)", "550 5.100.999 x\r\n", 550, [3]int{5, 100, 999}, "x", nil},
		{"enhanced code alone", "250 2.0.0\r\n", 250, [3]int{2, 0, 0}, "", nil},
		{"enhanced code repeated on every line is stripped from each", "550-5.7.1 first\r\n550 5.7.1 second\r\n", 550, [3]int{5, 7, 1}, "first\nsecond", nil},
		{"a different code on a later line stays in the text", "550-5.7.1 first\r\n550 5.7.2 second\r\n", 550, [3]int{5, 7, 1}, "first\n5.7.2 second", nil},
		{"enhanced class must match the reply code (RFC 3463 §2)", "550 4.1.1 odd\r\n", 550, [3]int{}, "4.1.1 odd", nil},
		{"four-digit subject is no enhanced code", "550 5.1000.1 x\r\n", 550, [3]int{}, "5.1000.1 x", nil},
		{"enhanced code must be followed by a space", "250 2.0.0ok\r\n", 250, [3]int{}, "2.0.0ok", nil},
		{"version number is no enhanced code", "220 mx ESMTP 5.1.1\r\n", 220, [3]int{}, "mx ESMTP 5.1.1", nil},
		{"class 3 has no enhanced codes", "354 3.0.0 go ahead\r\n", 354, [3]int{}, "3.0.0 go ahead", nil},
		{"bare LF line end is tolerated", "250-a\n250 b\n", 250, [3]int{}, "a\nb", nil},
		{"tab in text is kept", "250 a\tb\r\n", 250, [3]int{}, "a\tb", nil},
		{"invalid UTF-8 in text is replaced", "550 caf\xe9\r\n", 550, [3]int{}, "caf\uFFFD", nil},
		{"UTF-8 text is kept", "550 café\r\n", 550, [3]int{}, "café", nil},
		{"421 parses like any reply", "421 4.3.2 shutting down\r\n", 421, [3]int{4, 3, 2}, "shutting down", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parse(tt.in)
			if err != nil {
				t.Fatalf("readReply(%q): %v", tt.in, err)
			}
			if r.Code != tt.code || r.Enhanced != tt.enhanced || r.Text != tt.text {
				t.Errorf("readReply(%q) = %d %v %q, want %d %v %q", tt.in, r.Code, r.Enhanced, r.Text, tt.code, tt.enhanced, tt.text)
			}
			if tt.lines != nil && !slices.Equal(r.Lines(), tt.lines) {
				t.Errorf("Lines() = %q, want %q", r.Lines(), tt.lines)
			}
		})
	}
}

func TestReadReplyMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty line", "\r\n"},
		{"text without code", "hello\r\n"},
		{"two-digit code", "25 OK\r\n"},
		{"1yz codes are not SMTP (RFC 5321 §4.2)", "150 OK\r\n"},
		{"first digit above 5", "650 OK\r\n"},
		{"second digit above 5", "260 OK\r\n"},
		{"letters in the code", "2x0 OK\r\n"},
		{"code followed by other than SP or -", "250_OK\r\n"},
		{"code glued to text", "250OK\r\n"},
		{"multi-line reply changing its code (RFC 5321 §4.2.1)", "250-a\r\n251 b\r\n"},
		{"NUL in text", "250 a\x00b\r\n"},
		{"bare CR inside text", "250 a\rb\r\n"},
		{"escape sequence in text", "250 \x1b[31mred\r\n"},
		{"DEL in text", "250 a\x7f\r\n"},
		{"line over the limit", "250 " + strings.Repeat("a", maxReplyLine) + "\r\n"},
		{"too many lines", strings.Repeat("250-x\r\n", maxReplyLines) + "250 x\r\n"},
		{"reply over the byte limit", strings.Repeat("250-"+strings.Repeat("x", 2000)+"\r\n", 40) + "250 x\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parse(tt.in)
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("readReply(%.40q) = %v, %v; want a *ProtocolError", tt.in, r, err)
			}
		})
	}
}

func TestReadReplyTruncated(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"nothing at all is EOF", "", io.EOF},
		{"partial line is unexpected EOF", "250 O", io.ErrUnexpectedEOF},
		{"multi-line reply cut short is unexpected EOF", "250-a\r\n", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parse(tt.in); !errors.Is(err, tt.want) {
				t.Errorf("readReply(%q) error = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

func TestReplyError(t *testing.T) {
	r, err := parse("550-5.1.1 The email account that you tried to reach does not exist.\r\n550 5.1.1 Please try again.\r\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "smtpclient: server replied 550 5.1.1 The email account that you tried to reach does not exist. Please try again."
	if r.Error() != want {
		t.Errorf("Error() = %q, want %q", r.Error(), want)
	}
	if r.Temporary() || !r.Permanent() || r.Positive() {
		t.Errorf("550: Temporary %v Permanent %v Positive %v", r.Temporary(), r.Permanent(), r.Positive())
	}
	if errors.Is(r, ErrConnLost) {
		t.Error("550 matches ErrConnLost")
	}
	r421 := &Reply{Code: 421}
	if !errors.Is(r421, ErrConnLost) || !r421.Temporary() {
		t.Error("421 must match ErrConnLost and be temporary")
	}
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"250 OK\r\n",
		"250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n",
		"550-5.1.1 a\r\n550 5.1.1 b\r\n",
		"421 4.3.2 bye\n",
		"250\r\n",
		"250-a\r\n251 b\r\n",
		"220 caf\xe9\r\n",
		"2",
		// At the limits: a line of maxReplyLine octets and one more, a
		// reply of maxReplyLines lines and one more.
		"250 " + strings.Repeat("x", maxReplyLine-6) + "\r\n",
		"250 " + strings.Repeat("x", maxReplyLine-5) + "\r\n",
		strings.Repeat("250-x\r\n", maxReplyLines-1) + "250 x\r\n",
		strings.Repeat("250-x\r\n", maxReplyLines) + "250 x\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := readReply(bufio.NewReaderSize(strings.NewReader(string(in)), maxReplyLine), nil)
		if err != nil {
			if r != nil {
				t.Fatal("reply and error both returned")
			}
			return
		}
		if r.Code < 200 || r.Code > 559 || len(r.lines) == 0 || len(r.lines) > maxReplyLines {
			t.Fatalf("bad reply %+v from %q", r, in)
		}
		for _, l := range r.lines {
			if strings.ContainsAny(l, "\r\n\x00") {
				t.Fatalf("line %q holds a control character", l)
			}
		}
		if r.HasEnhanced() && r.Enhanced[0] != r.Code/100 {
			t.Fatalf("enhanced class %d for code %d", r.Enhanced[0], r.Code)
		}
		// Writing the reply back out, with the enhanced code on every line
		// as servers do, and reading it again gives the same.
		var b strings.Builder
		for i, l := range r.lines {
			sep := "-"
			if i == len(r.lines)-1 {
				sep = " "
			}
			if r.HasEnhanced() {
				l = r.EnhancedString() + " " + l
			}
			fmt.Fprintf(&b, "%d%s%s\r\n", r.Code, sep, l)
		}
		r2, err := parse(b.String())
		if err != nil {
			// Octets that are not UTF-8 are read as U+FFFD, three octets
			// each, so a line at the limit can come back longer than it.
			if strings.Contains(b.String(), "\uFFFD") && strings.Contains(err.Error(), "longer than") {
				return
			}
			t.Fatalf("re-reading %q: %v", b.String(), err)
		}
		if r2.Code != r.Code || r2.Enhanced != r.Enhanced || r2.Text != r.Text {
			t.Fatalf("round trip: %+v, then %+v", r, r2)
		}
	})
}
