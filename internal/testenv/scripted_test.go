package testenv

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func startScripted(t *testing.T, opts ScriptOptions) *ScriptedServer {
	t.Helper()
	s, err := StartScripted(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// rawPeer is the client side of a scripted server, seeing every octet.
type rawPeer struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dialScripted(t *testing.T, s *ScriptedServer) *rawPeer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	return &rawPeer{t: t, conn: conn, br: bufio.NewReader(conn)}
}

func (p *rawPeer) send(s string) {
	p.t.Helper()
	if _, err := io.WriteString(p.conn, s); err != nil {
		p.t.Fatal(err)
	}
}

// read returns exactly n octets.
func (p *rawPeer) read(n int) string {
	p.t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(p.br, b); err != nil {
		p.t.Fatalf("reading %d octets: %v (got %q)", n, err, b)
	}
	return string(b)
}

// expect reads len(want) octets and compares them.
func (p *rawPeer) expect(want string) {
	p.t.Helper()
	if got := p.read(len(want)); got != want {
		p.t.Fatalf("server sent %q, want %q", got, want)
	}
}

// closed reports whether the server closed the connection, with nothing
// more sent.
func (p *rawPeer) closed() bool {
	_, err := p.br.ReadByte()
	return errors.Is(err, io.EOF)
}

func TestScriptedNormalDialogueCarriesAMessage(t *testing.T) {
	ca := newCAForTest(t)
	cert := ca.MustLeaf(LeafOptions{}, "mx.example.com")
	s := startScripted(t, ScriptOptions{Hostname: "mx.example.com", Certificate: &cert})
	conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c, err := greet(t, conn, &tls.Config{ServerName: "mx.example.com", RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("PIPELINING"); !ok {
		t.Error("PIPELINING not advertised")
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS advertised again under TLS")
	}
	if step, err := send(c, nil, nil, "b@example.net", "c@example.net"); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Conn != 1 || m.Mail != "MAIL FROM:<a@example.org> BODY=8BITMIME" || !slices.Equal(m.Rcpts, []string{"RCPT TO:<b@example.net>", "RCPT TO:<c@example.net>"}) {
		t.Errorf("envelope = %+v", m)
	}
	if string(m.Data) != testBody {
		t.Errorf("content = %q", m.Data)
	}
	var cmds []string
	for _, e := range s.Events() {
		cmds = append(cmds, e.Command)
		if e.TLS != (e.Command != ScriptGreeting && e.Command != "STARTTLS" && !(e.Command == "EHLO" && e.N == 1)) {
			t.Errorf("event %+v: TLS %v", e, e.TLS)
		}
	}
	want := []string{ScriptGreeting, "EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "RCPT", "DATA", ScriptEndOfData, "QUIT"}
	if !slices.Equal(cmds, want) {
		t.Errorf("events %q, want %q", cmds, want)
	}
}

func TestScriptedStepReplacesTheReply(t *testing.T) {
	tests := []struct {
		name   string
		script func(ScriptEvent) *ScriptStep
		talk   func(p *rawPeer)
	}{
		{"421 greeting and close", func(e ScriptEvent) *ScriptStep {
			if e.Command == ScriptGreeting {
				return &ScriptStep{Reply: "421 4.3.2 busy\r\n", Close: true}
			}
			return nil
		}, func(p *rawPeer) {
			p.expect("421 4.3.2 busy\r\n")
			if !p.closed() {
				p.t.Error("connection still open after a closing step")
			}
		}},
		{"duplicated reply", func(e ScriptEvent) *ScriptStep {
			if e.Command == "NOOP" {
				return &ScriptStep{Reply: e.Normal + e.Normal}
			}
			return nil
		}, func(p *rawPeer) {
			p.expect("220 scripted.invalid ESMTP scripted\r\n")
			p.send("NOOP\r\n")
			p.expect("250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n")
		}},
		{"250 to DATA reads no content", func(e ScriptEvent) *ScriptStep {
			if e.Command == "DATA" {
				return &ScriptStep{Reply: "250 2.0.0 sure\r\n"}
			}
			return nil
		}, func(p *rawPeer) {
			p.read(len("220 scripted.invalid ESMTP scripted\r\n"))
			p.send("DATA\r\nNOOP\r\n")
			// NOOP is read as a command, not as content.
			p.expect("250 2.0.0 sure\r\n250 2.0.0 Ok\r\n")
		}},
		{"disconnect without a reply", func(e ScriptEvent) *ScriptStep {
			if e.Command == "RCPT" && e.N == 2 {
				return &ScriptStep{Close: true}
			}
			return nil
		}, func(p *rawPeer) {
			p.read(len("220 scripted.invalid ESMTP scripted\r\n"))
			p.send("RCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\n")
			p.expect("250 2.1.5 Ok\r\n")
			if !p.closed() {
				p.t.Error("connection still open at the second RCPT")
			}
		}},
		{"STARTTLS offered and refused", nil, func(p *rawPeer) {
			p.read(len("220 scripted.invalid ESMTP scripted\r\n"))
			p.send("EHLO c\r\nSTARTTLS\r\n")
			p.expect("250-scripted.invalid\r\n250 STARTTLS\r\n454 4.7.0 TLS not available\r\n")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := ScriptOptions{Script: tt.script}
			if tt.name == "STARTTLS offered and refused" {
				opts.Extensions = []string{"STARTTLS"}
			}
			tt.talk(dialScripted(t, startScripted(t, opts)))
		})
	}
}

// TestScriptedContentEndsOnlyAtCRLFDotCRLF: the server is the strict
// receiver RFC 5321 §4.1.1.4 describes, so that a client's stray line
// ends stay in the content where a test sees them.
func TestScriptedContentEndsOnlyAtCRLFDotCRLF(t *testing.T) {
	s := startScripted(t, ScriptOptions{})
	p := dialScripted(t, s)
	p.read(len("220 scripted.invalid ESMTP scripted\r\n"))
	p.send("MAIL FROM:<a@x>\r\nDATA\r\n")
	p.expect("250 2.1.0 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
	content := "a\n.\nb\r.\rc\n.\r\n..d\r\n" + strings.Repeat("x", maxScriptLine+10) + "\r\n"
	p.send(content + ".\r\n")
	p.expect("250 2.0.0 Ok: queued as S1\r\n")
	msgs := s.Messages()
	if len(msgs) != 1 || string(msgs[0].Raw) != content || msgs[0].Mail != "MAIL FROM:<a@x>" {
		t.Fatalf("messages = %d, raw %.60q", len(msgs), msgs[0].Raw)
	}
	if want := strings.Replace(content, "\r\n..d", "\r\n.d", 1); string(msgs[0].Data) != want {
		t.Errorf("unstuffed %.60q, want %.60q", msgs[0].Data, want)
	}
}

func TestScriptedEmptyMessage(t *testing.T) {
	s := startScripted(t, ScriptOptions{})
	p := dialScripted(t, s)
	p.read(len("220 scripted.invalid ESMTP scripted\r\n"))
	p.send("DATA\r\n.\r\n")
	p.expect("354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as S1\r\n")
	if msgs := s.Messages(); len(msgs) != 1 || len(msgs[0].Raw) != 0 {
		t.Fatalf("messages = %+v, want one empty message", msgs)
	}
}

func TestScriptedCloseEndsSessions(t *testing.T) {
	s, err := StartScripted(ScriptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := dialScripted(t, s)
	p.read(len("220 scripted.invalid ESMTP scripted\r\n"))
	s.Close() // must not wait for the idle client
	s.Close()
	if _, err := p.br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("client connection still open after Close: %v", err)
	}
	if s.Connections() != 1 {
		t.Errorf("Connections() = %d, want 1", s.Connections())
	}
}
