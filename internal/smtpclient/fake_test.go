package smtpclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/testenv"
)

// fakePeer is the server side of a scripted SMTP dialogue: a test writes
// exactly the bytes a broken or hostile server would, and checks each line
// the client sends.
type fakePeer struct {
	t        testing.TB
	conn     net.Conn
	br       *bufio.Reader
	deadline time.Time // for the whole dialogue
}

// send writes raw bytes (replies with their CRLF) in one write.
func (p *fakePeer) send(s string) {
	p.t.Helper()
	if _, err := p.conn.Write([]byte(s)); err != nil {
		p.t.Errorf("fake server: write: %v", err)
	}
}

// line reads one line from the client, without the CRLF; "" at EOF.
func (p *fakePeer) line() string {
	p.t.Helper()
	l, err := p.br.ReadString('\n')
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(l, "\r\n")
}

// expect reads one line and checks it.
func (p *fakePeer) expect(want string) bool {
	p.t.Helper()
	if got := p.line(); got != want {
		p.t.Errorf("fake server: client sent %q, want %q", got, want)
		return false
	}
	return true
}

// content reads message content up to the final "." line and reports
// whether it arrived.
func (p *fakePeer) content() bool {
	p.t.Helper()
	for {
		l, err := p.br.ReadString('\n')
		if err != nil {
			p.t.Errorf("fake server: connection ended inside the message content: %v", err)
			return false
		}
		if l == ".\r\n" {
			return true
		}
	}
}

// drain reads and drops everything until the client closes.
func (p *fakePeer) drain() { io.Copy(io.Discard, p.br) }

// quiet reports whether the client sends nothing within d: it is waiting
// for a reply.
func (p *fakePeer) quiet(d time.Duration) bool {
	p.t.Helper()
	if p.br.Buffered() > 0 {
		return false
	}
	p.conn.SetReadDeadline(time.Now().Add(d))
	defer p.conn.SetReadDeadline(p.deadline)
	_, err := p.br.Peek(1)
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ehlo answers the client's EHLO with the given extension lines.
func (p *fakePeer) ehlo(ext ...string) {
	p.t.Helper()
	l := p.line()
	if !strings.HasPrefix(l, "EHLO ") {
		p.t.Errorf("fake server: got %q, want EHLO", l)
	}
	var b strings.Builder
	lines := append([]string{"mx.fake.example greets you"}, ext...)
	for i, e := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		b.WriteString("250" + sep + e + "\r\n")
	}
	p.send(b.String())
}

// startTLS runs the server side of a TLS handshake.
func (p *fakePeer) startTLS(cert tls.Certificate) {
	p.t.Helper()
	tc := tls.Server(p.conn, &tls.Config{Certificates: []tls.Certificate{cert}})
	if err := tc.Handshake(); err != nil {
		p.t.Errorf("fake server: TLS handshake: %v", err)
		return
	}
	p.conn, p.br = tc, bufio.NewReader(tc)
}

// fakeServer runs script against one connection on 127.0.0.1 and returns
// the client side of it. The test waits for the script at its end.
func fakeServer(t testing.TB, script func(p *fakePeer)) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			t.Errorf("fake server: accept: %v", err)
			return
		}
		defer c.Close()
		deadline := time.Now().Add(5 * time.Second)
		c.SetDeadline(deadline)
		script(&fakePeer{t: t, conn: c, br: bufio.NewReader(c), deadline: deadline})
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		wg.Wait()
	})
	return conn
}

// fakeConn starts a fake server whose script begins after a 220 greeting
// and returns a Conn on it.
func fakeConn(t testing.TB, opts Options, script func(p *fakePeer)) *Conn {
	t.Helper()
	conn := fakeServer(t, func(p *fakePeer) {
		p.send("220 mx.fake.example ESMTP\r\n")
		script(p)
	})
	c, err := New(context.Background(), conn, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// fakeHello is fakeConn followed by EHLO, answered with ext.
func fakeHello(t testing.TB, opts Options, ext []string, script func(p *fakePeer)) *Conn {
	t.Helper()
	c := fakeConn(t, opts, func(p *fakePeer) {
		p.ehlo(ext...)
		script(p)
	})
	if err := c.Hello(context.Background(), "client.example.org"); err != nil {
		t.Fatalf("Hello: %v", err)
	}
	return c
}

// pki is a test CA with a certificate for mx.example.net.
type pki struct {
	ca   *testenv.CA
	cert tls.Certificate
}

var (
	pkiOnce sync.Once
	pkiVal  pki
	pkiErr  error
)

func testPKI(t testing.TB) pki {
	t.Helper()
	pkiOnce.Do(func() {
		if pkiVal.ca, pkiErr = testenv.NewCA("smtpclient test CA"); pkiErr != nil {
			return
		}
		pkiVal.cert, pkiErr = pkiVal.ca.Leaf(testenv.LeafOptions{}, "mx.example.net")
	})
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return pkiVal
}

// clientTLS is the client's configuration for the test certificate.
func (p pki) clientTLS() *tls.Config {
	return &tls.Config{ServerName: "mx.example.net", RootCAs: p.ca.Pool()}
}

// startSink starts a testenv SMTP sink.
func startSink(t testing.TB, opts testenv.SMTPOptions) *testenv.SMTPServer {
	t.Helper()
	s, err := testenv.StartSMTP(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// dialSink connects to a sink and says EHLO; with cfg it also runs
// STARTTLS and EHLO again.
func dialSink(t testing.TB, s *testenv.SMTPServer, opts Options, cfg *tls.Config) *Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(ctx, conn, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello(ctx, "client.example.org"); err != nil {
		t.Fatalf("Hello: %v", err)
	}
	if cfg != nil {
		if err := c.StartTLS(ctx, cfg); err != nil {
			t.Fatalf("StartTLS: %v", err)
		}
		if err := c.Hello(ctx, "client.example.org"); err != nil {
			t.Fatalf("Hello after STARTTLS: %v", err)
		}
	}
	return c
}
