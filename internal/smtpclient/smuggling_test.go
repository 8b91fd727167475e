package smtpclient

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/sealpost/sealpost/internal/testenv"
)

// smugglingVariants are the end-of-data lookalikes of SMTP smuggling
// (CVE-2023-51764, -51765, -51766): line ends other than CRLF around a
// ".", which some receivers take for the end of the message, so that what
// follows becomes a second message with a forged sender.
var smugglingVariants = []struct{ name, seq string }{
	{"LF.LF", "\n.\n"},
	{"CR.CR", "\r.\r"},
	{"LF.CRLF", "\n.\r\n"},
	{"CRLF.LF", "\r\n.\n"},
	{"CR.LF", "\r.\n"},
	{"LF.CR", "\n.\r"},
	{"CR.CRLF", "\r.\r\n"},
	{"CRLF.CR", "\r\n.\r"},
	{"CRLF.CRLF", "\r\n.\r\n"},
	{"LF LF.LF", "\n\n.\n"},
	{"CRLF.NUL CRLF", "\r\n.\x00\r\n"},
}

// smuggled is a message that tries to end itself early and start another.
func smuggled(seq string) string {
	return "From: a@example.org\r\nSubject: hi\r\n\r\nhello" + seq +
		"MAIL FROM:<admin@example.net>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nFrom: admin@example.net\r\n\r\nforged\r\n"
}

// TestDataWriterNeutralisesSmuggling: every variant goes out with its
// line ends made CRLF and its "." doubled, so that no receiver, strict or
// lax, sees an end of data before the real one; however the content is
// cut into writes.
func TestDataWriterNeutralisesSmuggling(t *testing.T) {
	for _, v := range smugglingVariants {
		t.Run(v.name, func(t *testing.T) {
			in := smuggled(v.seq)
			whole, err := encode(in)
			if err != nil {
				t.Fatal(err)
			}
			checkWire(t, in, whole)
			// Every cut into two and three writes.
			for i := 0; i <= len(in); i++ {
				for j := i; j <= len(in); j += 7 {
					got, err := encode(in[:i], in[i:j], in[j:])
					if err != nil {
						t.Fatal(err)
					}
					if got != whole {
						t.Fatalf("cut at %d and %d: %q, want %q", i, j, got, whole)
					}
				}
			}
		})
	}
}

// TestSendNeutralisesSmuggling sends each variant through Send to a strict
// server and looks at the octets on the wire: one message, whose content
// holds the would-be second one as text, read through a reader that
// returns one octet at a time or half of what is asked, as an
// io.SectionReader over a slow io.ReaderAt may.
func TestSendNeutralisesSmuggling(t *testing.T) {
	s, err := testenv.StartScripted(testenv.ScriptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	readers := map[string]func(io.Reader) io.Reader{"one octet": iotest.OneByteReader, "half": iotest.HalfReader}
	sent := 0
	for _, v := range smugglingVariants {
		for rname, wrap := range readers {
			in := smuggled(v.seq)
			conn, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			c, err := New(ctx, conn, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Hello(ctx, "client.example.org"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Send(ctx, env("b@example.net"), wrap(strings.NewReader(in))); err != nil {
				t.Fatalf("%s, %s: %v", v.name, rname, err)
			}
			c.Quit(ctx)
			sent++
			msgs := s.Messages()
			if len(msgs) != sent {
				t.Fatalf("%s, %s: the server saw %d messages, want %d", v.name, rname, len(msgs), sent)
			}
			m := msgs[len(msgs)-1]
			checkWire(t, in, string(m.Raw)+".\r\n")
			if !strings.Contains(string(m.Data), "\r\nforged\r\n") {
				t.Errorf("%s, %s: content %q lost its end", v.name, rname, m.Data)
			}
		}
	}
	for _, e := range s.Events() {
		if e.Command == "MAIL" && strings.Contains(e.Line, "admin@") {
			t.Errorf("the smuggled MAIL reached the server as a command: %q", e.Line)
		}
	}
}
