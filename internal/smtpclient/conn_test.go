package smtpclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/sealpost/sealpost/internal/testenv"
)

// newFake runs New against a fake server that runs script from the start.
func newFake(t *testing.T, ctx context.Context, opts Options, script func(p *fakePeer)) (*Conn, error) {
	t.Helper()
	return New(ctx, fakeServer(t, script), opts)
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
}

func TestGreeting(t *testing.T) {
	ctx := context.Background()
	t.Run("multi-line 220 greeting", func(t *testing.T) {
		c, err := newFake(t, ctx, Options{}, func(p *fakePeer) {
			p.send("220-mx.fake.example ESMTP\r\n220 no UCE\r\n")
			p.expect("QUIT")
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Greeting(); got != "mx.fake.example ESMTP\nno UCE" {
			t.Errorf("Greeting() = %q", got)
		}
		c.writeLine("QUIT", "")
		c.flush("QUIT", time.Second)
	})
	t.Run("421 greeting ends the session and matches ErrConnLost", func(t *testing.T) {
		_, err := newFake(t, ctx, Options{}, func(p *fakePeer) {
			p.send("421 4.3.2 too busy\r\n")
			if l := p.line(); l != "" {
				t.Errorf("client sent %q after a 421 greeting", l)
			}
		})
		var r *Reply
		if !errors.As(err, &r) || r.Code != 421 || r.Enhanced != [3]int{4, 3, 2} || !errors.Is(err, ErrConnLost) {
			t.Fatalf("New = %v, want the 421 reply", err)
		}
	})
	t.Run("554 greeting is answered with QUIT (RFC 5321 §3.1)", func(t *testing.T) {
		_, err := newFake(t, ctx, Options{}, func(p *fakePeer) {
			p.send("554 5.7.1 no service for you\r\n")
			if p.expect("QUIT") {
				p.send("221 bye\r\n")
			}
		})
		var r *Reply
		if !errors.As(err, &r) || r.Code != 554 || !r.Permanent() {
			t.Fatalf("New = %v, want the 554 reply", err)
		}
	})
	t.Run("greeting other than 220 is a protocol error", func(t *testing.T) {
		_, err := newFake(t, ctx, Options{}, func(p *fakePeer) { p.send("250 hello\r\n") })
		var pe *ProtocolError
		if !errors.As(err, &pe) || !errors.Is(err, ErrConnLost) {
			t.Fatalf("New = %v, want a *ProtocolError matching ErrConnLost", err)
		}
	})
	t.Run("malformed greeting", func(t *testing.T) {
		_, err := newFake(t, ctx, Options{}, func(p *fakePeer) { p.send("SSH-2.0-OpenSSH_9.6\r\n") })
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Op != "greeting" {
			t.Fatalf("New = %v, want a *ProtocolError for the greeting", err)
		}
	})
	t.Run("connection closed before the greeting", func(t *testing.T) {
		_, err := newFake(t, ctx, Options{}, func(p *fakePeer) {})
		var ce *ConnError
		if !errors.As(err, &ce) || ce.Op != "greeting" || !errors.Is(err, ErrConnLost) {
			t.Fatalf("New = %v, want a *ConnError for the greeting", err)
		}
	})
}

func TestGreetingTimeouts(t *testing.T) {
	ctx := context.Background()
	t.Run("greeting timeout (RFC 5321 §4.5.3.2.1)", func(t *testing.T) {
		_, err := newFake(t, ctx, Options{Timeouts: Timeouts{Greeting: 30 * time.Millisecond}}, func(p *fakePeer) { p.line() })
		if !errors.Is(err, ErrConnLost) || !isTimeout(err) {
			t.Fatalf("New = %v, want a timeout", err)
		}
	})
	t.Run("context deadline bounds the greeting", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
		defer cancel()
		_, err := newFake(t, ctx, Options{}, func(p *fakePeer) { p.line() })
		if !errors.Is(err, ErrConnLost) || !isTimeout(err) {
			t.Fatalf("New = %v, want a timeout", err)
		}
	})
	t.Run("cancellation unblocks the greeting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(20*time.Millisecond, cancel)
		_, err := newFake(t, ctx, Options{}, func(p *fakePeer) { p.line() })
		if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrConnLost) {
			t.Fatalf("New = %v, want context.Canceled", err)
		}
	})
	t.Run("cancelled context sends nothing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := newFake(t, ctx, Options{}, func(p *fakePeer) {})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("New = %v, want context.Canceled", err)
		}
	})
}

func TestGreetingFromSink(t *testing.T) {
	for _, code := range []int{421, 554} {
		s := startSink(t, testenv.SMTPOptions{GreetingReply: &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 3, 2}, Message: "go away"}})
		conn, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(context.Background(), conn, Options{})
		var r *Reply
		if !errors.As(err, &r) || r.Code != code || r.Text != "go away" {
			t.Errorf("greeting %d: New = %v", code, err)
		}
	}
}

func TestHello(t *testing.T) {
	ctx := context.Background()
	t.Run("EHLO reply gives the server's name and extensions", func(t *testing.T) {
		c := fakeHello(t, Options{}, []string{"PIPELINING", "SIZE 35882577", "auth PLAIN LOGIN", "8BITMIME"}, func(p *fakePeer) {})
		if got := c.ServerName(); got != "mx.fake.example" {
			t.Errorf("ServerName() = %q", got)
		}
		if ok, _ := c.Extension("pipelining"); !ok {
			t.Error("PIPELINING not found")
		}
		if ok, p := c.Extension("AUTH"); !ok || p != "PLAIN LOGIN" {
			t.Errorf("AUTH = %v %q", ok, p)
		}
		if ok, _ := c.Extension("STARTTLS"); ok {
			t.Error("STARTTLS found but not advertised")
		}
		if max, ok := c.MaxSize(); !ok || max != 35882577 {
			t.Errorf("MaxSize() = %d, %v", max, ok)
		}
	})
	for _, code := range []string{"500 5.5.1 command unrecognized", "502 5.5.2 not implemented"} {
		t.Run("HELO fallback after "+code[:3], func(t *testing.T) {
			c := fakeConn(t, Options{}, func(p *fakePeer) {
				p.expect("EHLO client.example.org")
				p.send(code + "\r\n")
				p.expect("HELO client.example.org")
				p.send("250 old.fake.example\r\n")
			})
			if err := c.Hello(ctx, "client.example.org"); err != nil {
				t.Fatal(err)
			}
			if c.ServerName() != "old.fake.example" {
				t.Errorf("ServerName() = %q", c.ServerName())
			}
			if ok, _ := c.Extension("PIPELINING"); ok {
				t.Error("extensions after HELO")
			}
			if _, ok := c.MaxSize(); ok {
				t.Error("SIZE after HELO")
			}
		})
	}
	t.Run("no HELO fallback after a 550 to EHLO", func(t *testing.T) {
		c := fakeConn(t, Options{}, func(p *fakePeer) {
			p.expect("EHLO client.example.org")
			p.send("550 5.7.1 go away\r\n")
			if l := p.line(); l != "" {
				t.Errorf("client sent %q after EHLO was refused", l)
			}
		})
		var r *Reply
		if err := c.Hello(ctx, "client.example.org"); !errors.As(err, &r) || r.Code != 550 {
			t.Fatalf("Hello = %v, want the 550", err)
		}
		if c.Err() != nil {
			t.Errorf("Err() = %v after a 550; the connection is still usable", c.Err())
		}
		c.Close()
	})
}

func TestHelloRefused(t *testing.T) {
	ctx := context.Background()
	t.Run("HELO refused too", func(t *testing.T) {
		c := fakeConn(t, Options{}, func(p *fakePeer) {
			p.line()
			p.send("502 no\r\n")
			p.line()
			p.send("501 5.5.4 bad name\r\n")
		})
		var r *Reply
		if err := c.Hello(ctx, "client.example.org"); !errors.As(err, &r) || r.Code != 501 {
			t.Fatalf("Hello = %v, want the 501", err)
		}
	})
	t.Run("421 to EHLO ends the connection", func(t *testing.T) {
		c := fakeConn(t, Options{}, func(p *fakePeer) {
			p.line()
			p.send("421 4.7.0 try later\r\n")
		})
		err := c.Hello(ctx, "client.example.org")
		if !errors.Is(err, ErrConnLost) {
			t.Fatalf("Hello = %v, want ErrConnLost", err)
		}
		if err2 := c.Noop(ctx); err2 != err {
			t.Errorf("Noop after 421 = %v, want the same error %v", err2, err)
		}
	})
	t.Run("bad name is refused before sending", func(t *testing.T) {
		c := fakeConn(t, Options{}, func(p *fakePeer) {
			p.expect("EHLO client.example.org")
			p.send("250 ok\r\n")
		})
		var ce *CommandError
		if err := c.Hello(ctx, "x\r\nMAIL FROM:<>"); !errors.As(err, &ce) {
			t.Fatalf("Hello = %v, want a *CommandError", err)
		}
		if err := c.Hello(ctx, "client.example.org"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unexpected positive reply to EHLO", func(t *testing.T) {
		c := fakeConn(t, Options{}, func(p *fakePeer) {
			p.line()
			p.send("354 go ahead\r\n")
		})
		var pe *ProtocolError
		if err := c.Hello(ctx, "client.example.org"); !errors.As(err, &pe) || !errors.Is(err, ErrConnLost) {
			t.Fatalf("Hello = %v, want a *ProtocolError", err)
		}
	})
}

func TestStartTLS(t *testing.T) {
	ctx := context.Background()
	k := testPKI(t)
	t.Run("extensions are forgotten and said again (RFC 3207 §4.2)", func(t *testing.T) {
		s := startSink(t, testenv.SMTPOptions{Certificate: &k.cert, REQUIRETLS: true})
		c := dialSink(t, s, Options{}, nil)
		if ok, _ := c.Extension("STARTTLS"); !ok {
			t.Fatal("sink does not advertise STARTTLS")
		}
		if err := c.StartTLS(ctx, k.clientTLS()); err != nil {
			t.Fatal(err)
		}
		if ok, _ := c.Extension("PIPELINING"); ok || c.ServerName() != "" {
			t.Error("extensions or name survived STARTTLS")
		}
		st, ok := c.TLSState()
		if !ok || st.Version != tls.VersionTLS13 || st.ServerName != "mx.example.net" {
			t.Errorf("TLSState() = %v, %v", st.Version, ok)
		}
		if _, err := c.Send(ctx, Envelope{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net"}}}, strings.NewReader("x\r\n")); !errors.Is(err, ErrBadSequence) {
			t.Fatalf("Send before the second EHLO = %v, want ErrBadSequence", err)
		}
		if err := c.Hello(ctx, "client.example.org"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := c.Extension("REQUIRETLS"); !ok {
			t.Error("REQUIRETLS, advertised only under TLS, not seen")
		}
		if ok, _ := c.Extension("STARTTLS"); ok {
			t.Error("STARTTLS advertised again under TLS")
		}
		if err := c.StartTLS(ctx, k.clientTLS()); !errors.Is(err, ErrBadSequence) {
			t.Errorf("second StartTLS = %v, want ErrBadSequence", err)
		}
		if _, err := c.Send(ctx, Envelope{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net"}}}, strings.NewReader("x\r\n")); err != nil {
			t.Fatal(err)
		}
		msgs := s.Messages()
		if len(msgs) != 1 || msgs[0].TLS == nil || msgs[0].Helo != "client.example.org" {
			t.Fatalf("sink got %+v, want one message over TLS from client.example.org", msgs)
		}
	})
	t.Run("STARTTLS not advertised", func(t *testing.T) {
		s := startSink(t, testenv.SMTPOptions{})
		c := dialSink(t, s, Options{}, nil)
		var ce *CapabilityError
		if err := c.StartTLS(ctx, k.clientTLS()); !errors.As(err, &ce) || ce.Extension != "STARTTLS" {
			t.Fatalf("StartTLS = %v, want a *CapabilityError", err)
		}
		if err := c.Noop(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("StartTLS before EHLO", func(t *testing.T) {
		c := fakeConn(t, Options{}, func(p *fakePeer) {})
		if err := c.StartTLS(ctx, k.clientTLS()); !errors.Is(err, ErrBadSequence) {
			t.Fatalf("StartTLS = %v, want ErrBadSequence", err)
		}
	})
	t.Run("refused STARTTLS leaves plaintext usable", func(t *testing.T) {
		c := fakeHello(t, Options{}, []string{"STARTTLS"}, func(p *fakePeer) {
			p.expect("STARTTLS")
			p.send("454 4.7.0 TLS not available\r\n")
			p.expect("NOOP")
			p.send("250 ok\r\n")
		})
		var r *Reply
		if err := c.StartTLS(ctx, k.clientTLS()); !errors.As(err, &r) || !r.Temporary() {
			t.Fatalf("StartTLS = %v, want the 454", err)
		}
		if err := c.Noop(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestStartTLSRefusesInjectedReplies(t *testing.T) {
	ctx := context.Background()
	k := testPKI(t)
	t.Run("replies injected after the 220 are refused (RFC 3207 §5)", func(t *testing.T) {
		c := fakeHello(t, Options{}, []string{"STARTTLS"}, func(p *fakePeer) {
			p.expect("STARTTLS")
			p.send("220 2.0.0 go ahead\r\n250-mx.fake.example\r\n250 PIPELINING\r\n")
			p.line()
		})
		err := c.StartTLS(ctx, k.clientTLS())
		var pe *ProtocolError
		var te *TLSError
		if !errors.As(err, &pe) || !errors.Is(err, ErrConnLost) || errors.As(err, &te) {
			t.Fatalf("StartTLS = %v, want a *ProtocolError matching ErrConnLost", err)
		}
		if !strings.Contains(pe.Got, "PIPELINING") {
			t.Errorf("ProtocolError.Got = %q, want the injected text", pe.Got)
		}
		if _, ok := c.TLSState(); ok {
			t.Error("TLS state after the refused injection")
		}
	})
}

func TestStartTLSHandshakeFailures(t *testing.T) {
	ctx := context.Background()
	k := testPKI(t)
	handshakeFailures := []struct {
		name  string
		opts  testenv.SMTPOptions
		cfg   *tls.Config
		check func(error) bool
	}{
		{"certificate from an unknown CA", testenv.SMTPOptions{Certificate: &k.cert},
			&tls.Config{ServerName: "mx.example.net", RootCAs: x509.NewCertPool()},
			func(err error) bool { var ua x509.UnknownAuthorityError; return errors.As(err, &ua) }},
		{"certificate for another name", testenv.SMTPOptions{Certificate: &k.cert},
			&tls.Config{ServerName: "mx.other.example", RootCAs: k.ca.Pool()},
			func(err error) bool { var he x509.HostnameError; return errors.As(err, &he) }},
		{"server only speaks TLS 1.2, client wants 1.3", testenv.SMTPOptions{Certificate: &k.cert, MaxTLSVersion: tls.VersionTLS12},
			&tls.Config{ServerName: "mx.example.net", RootCAs: k.ca.Pool(), MinVersion: tls.VersionTLS13},
			func(err error) bool { return err != nil }},
		{"server drops the connection at the ClientHello", testenv.SMTPOptions{Certificate: &k.cert, DropAt: testenv.StageSTARTTLS},
			k.clientTLS(), func(err error) bool { return err != nil }},
	}
	for _, tt := range handshakeFailures {
		t.Run("handshake failure: "+tt.name, func(t *testing.T) {
			s := startSink(t, tt.opts)
			c := dialSink(t, s, Options{}, nil)
			err := c.StartTLS(ctx, tt.cfg)
			var te *TLSError
			if !errors.As(err, &te) || !tt.check(te.Err) {
				t.Fatalf("StartTLS = %v, want a *TLSError", err)
			}
			if errors.Is(err, ErrConnLost) {
				t.Error("handshake failure matches ErrConnLost; the caller must be able to tell them apart")
			}
			if c.Err() == nil {
				t.Error("connection still usable after a failed handshake")
			}
		})
	}
	t.Run("handshake timeout", func(t *testing.T) {
		c := fakeHello(t, Options{Timeouts: Timeouts{TLSHandshake: 50 * time.Millisecond}}, []string{"STARTTLS"}, func(p *fakePeer) {
			p.expect("STARTTLS")
			p.send("220 go ahead\r\n")
			p.drain()
		})
		err := c.StartTLS(ctx, k.clientTLS())
		var te *TLSError
		if !errors.As(err, &te) || !isTimeout(err) {
			t.Fatalf("StartTLS = %v, want a *TLSError with a timeout", err)
		}
	})
}

func TestResetNoopQuit(t *testing.T) {
	ctx := context.Background()
	s := startSink(t, testenv.SMTPOptions{})
	c := dialSink(t, s, Options{}, nil)
	if err := c.Noop(ctx); err != nil {
		t.Fatalf("Noop: %v", err)
	}
	if err := c.Reset(ctx); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if err := c.Quit(ctx); err != nil {
		t.Fatalf("Quit: %v", err)
	}
	if err := c.Err(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Err() after Quit = %v", err)
	}
	if err := c.Noop(ctx); err == nil {
		t.Error("Noop after Quit succeeded")
	}
}

func TestCloseUnblocksACall(t *testing.T) {
	c := fakeHello(t, Options{}, nil, func(p *fakePeer) {
		p.expect("NOOP")
		p.line() // no reply; wait for the client to go
	})
	time.AfterFunc(20*time.Millisecond, func() { c.Close() })
	if err := c.Noop(context.Background()); !errors.Is(err, ErrConnLost) {
		t.Fatalf("Noop = %v, want ErrConnLost", err)
	}
	if c.Close() != nil {
		t.Error("second Close reported an error")
	}
}

func TestTrace(t *testing.T) {
	var lines []string
	opts := Options{Trace: func(d Direction, l string) { lines = append(lines, d.String()+": "+l) }}
	c := fakeHello(t, opts, []string{"PIPELINING"}, func(p *fakePeer) {
		p.line()
		p.line()
		p.line()
		p.send("250 2.1.0 ok\r\n250-2.1.5 ok\r\n250 2.1.5 really\r\n354 go\r\n")
		if !p.content() {
			return
		}
		p.send("250 2.0.0 queued as 1234\r\n")
	})
	env := Envelope{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net"}}}
	if _, err := c.Send(context.Background(), env, strings.NewReader("Subject: x\r\n\r\nsecret body\r\n")); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"S: 220 mx.fake.example ESMTP",
		"C: EHLO client.example.org",
		"S: 250-mx.fake.example greets you",
		"S: 250 PIPELINING",
		"C: MAIL FROM:<a@example.org>",
		"C: RCPT TO:<b@example.net>",
		"C: DATA",
		"S: 250 2.1.0 ok",
		"S: 250-2.1.5 ok",
		"S: 250 2.1.5 really",
		"S: 354 go",
		"C: [message content: 27 octets]",
		"C: .",
		"S: 250 2.0.0 queued as 1234",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("trace:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}
