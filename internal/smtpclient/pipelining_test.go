package smtpclient

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the writes on a connection.
type countingConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

func TestSendPipelining(t *testing.T) {
	ctx := context.Background()
	conn := fakeServer(t, func(p *fakePeer) {
		p.send("220 mx.fake.example\r\n")
		p.ehlo("PIPELINING")
		// RFC 2920 §3.1: the whole envelope and DATA come before any reply.
		for _, want := range []string{"MAIL FROM:<a@example.org>", "RCPT TO:<b@example.net>", "RCPT TO:<c@example.net>", "DATA"} {
			p.expect(want)
		}
		p.send("250 ok\r\n250 ok\r\n550-5.1.1 no such\r\n550 5.1.1 user\r\n354 go\r\n")
		if !p.content() {
			return
		}
		p.send("250 2.0.0 queued\r\n")
	})
	cc := &countingConn{Conn: conn}
	c, err := New(ctx, cc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello(ctx, "client.example.org"); err != nil {
		t.Fatal(err)
	}
	before := cc.writes.Load()
	res, err := c.Send(ctx, env("b@example.net", "c@example.net"), strings.NewReader(strings.Repeat("x", 5000)))
	if err != nil {
		t.Fatal(err)
	}
	if n := cc.writes.Load() - before; n != 2 {
		t.Errorf("%d writes for a pipelined transaction, want 2 (envelope, content)", n)
	}
	if r := res.Rcpts[1]; r.Code != 550 || r.Text != "no such\nuser" {
		t.Errorf("multi-line RCPT reply %+v", r)
	}
	if res.Data.Text != "queued" {
		t.Errorf("final reply %+v", res.Data)
	}
}

func TestSendPipelinedDataAcceptedWithoutRecipients(t *testing.T) {
	c := fakeHello(t, Options{}, []string{"PIPELINING"}, func(p *fakePeer) {
		p.line()
		p.line()
		p.line()
		p.send("250 ok\r\n550 no\r\n354 go ahead anyway\r\n")
		// RFC 2920 §3.1: the client ends the empty message at once.
		p.expect(".")
		p.send("554 5.5.1 no valid recipients\r\n")
	})
	res, err := c.Send(context.Background(), env("b@example.net"), strings.NewReader(body))
	if !errors.Is(err, ErrNoRecipients) || res.Data == nil || res.Data.Code != 554 {
		t.Fatalf("Send = %v, res.Data %v", err, res.Data)
	}
}

func TestSendPipelinedMailRefused(t *testing.T) {
	c := fakeHello(t, Options{}, []string{"PIPELINING"}, func(p *fakePeer) {
		p.line()
		p.line()
		p.line()
		p.send("451 4.3.0 try later\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no RCPT\r\n")
		p.expect("NOOP")
		p.send("250 ok\r\n")
	})
	res, err := c.Send(context.Background(), env("b@example.net"), strings.NewReader(body))
	var r *Reply
	if !errors.As(err, &r) || r.Code != 451 || res.Data.Code != 503 {
		t.Fatalf("Send = %v, want the 451 to MAIL", err)
	}
	if err := c.Noop(context.Background()); err != nil {
		t.Fatalf("Noop after every reply was read: %v", err)
	}
}

func TestSendManyRecipientsInGroups(t *testing.T) {
	const n = 250
	c := fakeHello(t, Options{}, []string{"PIPELINING"}, func(p *fakePeer) {
		// Groups of at most 100 commands: read a group, answer it.
		read := 0
		for read < n+2 {
			group := min(maxGroup, n+2-read)
			for range group {
				p.line()
			}
			if !p.quiet(20 * time.Millisecond) {
				t.Error("client wrote more than one group before reading replies")
			}
			for i := range group {
				if read+i == n+1 {
					p.send("354 go\r\n")
				} else {
					p.send("250 ok\r\n")
				}
			}
			read += group
		}
		if !p.content() {
			return
		}
		p.send("250 queued\r\n")
	})
	e := env()
	for range n {
		e.Rcpts = append(e.Rcpts, Rcpt{Addr: "b@example.net"})
	}
	if _, err := c.Send(context.Background(), e, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
}

func TestSendWithoutPipelining(t *testing.T) {
	c := fakeHello(t, Options{}, nil, func(p *fakePeer) {
		steps := []struct{ cmd, reply string }{
			{"MAIL FROM:<a@example.org>", "250 ok"},
			{"RCPT TO:<b@example.net>", "550 no"},
			{"RCPT TO:<c@example.net>", "250 ok"},
			{"DATA", "354 go"},
		}
		for _, s := range steps {
			p.expect(s.cmd)
			// Without PIPELINING the client waits for each reply.
			if !p.quiet(30 * time.Millisecond) {
				t.Errorf("client sent more after %q without waiting for the reply", s.cmd)
			}
			p.send(s.reply + "\r\n")
		}
		if !p.content() {
			return
		}
		p.send("250 queued\r\n")
	})
	res, err := c.Send(context.Background(), env("b@example.net", "c@example.net"), strings.NewReader(body))
	if err != nil || res.Accepted(0) || !res.Accepted(1) {
		t.Fatalf("Send = %v, %+v", err, res)
	}
}

func TestSendWithoutPipeliningSkipsDataWithoutRecipients(t *testing.T) {
	c := fakeHello(t, Options{}, nil, func(p *fakePeer) {
		p.expect("MAIL FROM:<a@example.org>")
		p.send("250 ok\r\n")
		p.expect("RCPT TO:<b@example.net>")
		p.send("550 no\r\n")
		// The next transaction starts by resetting the open one.
		p.expect("RSET")
		p.send("250 ok\r\n")
		p.expect("MAIL FROM:<a@example.org>")
		p.send("250 ok\r\n")
		p.expect("RCPT TO:<c@example.net>")
		p.send("250 ok\r\n")
		p.expect("DATA")
		p.send("354 go\r\n")
		if !p.content() {
			return
		}
		p.send("250 queued\r\n")
	})
	ctx := context.Background()
	if _, err := c.Send(ctx, env("b@example.net"), strings.NewReader(body)); !errors.Is(err, ErrNoRecipients) {
		t.Fatalf("Send = %v, want ErrNoRecipients", err)
	}
	if _, err := c.Send(ctx, env("c@example.net"), strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
}

func TestSendPipelinesRsetAfterAnOpenTransaction(t *testing.T) {
	c := fakeHello(t, Options{}, []string{"PIPELINING"}, func(p *fakePeer) {
		p.line()
		p.line()
		p.line()
		p.send("250 ok\r\n550 no\r\n554 no valid recipients\r\n")
		// MAIL was accepted, so the transaction is open: RSET goes at the
		// head of the next group (RFC 2920 §3.1), not in a round trip
		// of its own.
		for _, want := range []string{"RSET", "MAIL FROM:<a@example.org>", "RCPT TO:<c@example.net>", "DATA"} {
			p.expect(want)
		}
		p.send("250 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n")
		if !p.content() {
			return
		}
		p.send("250 queued\r\n")
	})
	ctx := context.Background()
	if _, err := c.Send(ctx, env("b@example.net"), strings.NewReader(body)); !errors.Is(err, ErrNoRecipients) {
		t.Fatalf("Send = %v, want ErrNoRecipients", err)
	}
	if _, err := c.Send(ctx, env("c@example.net"), strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
}
