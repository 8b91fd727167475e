package smtpclient

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
)

// wantProtocolError checks that err is a protocol error of step op that
// ended the connection.
func wantProtocolError(t *testing.T, c *Conn, err error, op string) {
	t.Helper()
	var pe *ProtocolError
	var ce *ConnError
	if !errors.As(err, &pe) || !errors.As(err, &ce) || !errors.Is(err, ErrConnLost) {
		t.Fatalf("got %v, want a *ProtocolError in a *ConnError", err)
	}
	if pe.Op != op || ce.Op != op {
		t.Errorf("protocol error at %q (connection error at %q), want %q: %v", pe.Op, ce.Op, op, err)
	}
	var te interface{ Temporary() bool }
	if !errors.As(err, &te) || !te.Temporary() {
		t.Errorf("%v is not temporary", err)
	}
	if c != nil && c.Err() == nil {
		t.Error("the connection is still usable after a protocol error")
	}
}

// closes checks that the client sends nothing more and closes.
func closes(p *fakePeer) {
	p.t.Helper()
	if l := p.line(); l != "" {
		p.t.Errorf("client sent %q after the protocol error", l)
	}
}

// pipelinedReplies answers a pipelined MAIL, RCPT, DATA with replies in
// one write; afterContent, when not "", is sent after the content.
func pipelinedReplies(replies, afterContent string) func(p *fakePeer) {
	return func(p *fakePeer) {
		p.line()
		p.line()
		p.line()
		p.send(replies)
		if afterContent != "" {
			if !p.content() {
				return
			}
			p.send(afterContent)
		}
		closes(p)
	}
}

// inTurnReplies answers each command with the next reply, each in one
// write (a reply may hold several); after a reply that begins with 354 the
// content is read first.
func inTurnReplies(replies ...string) func(p *fakePeer) {
	return func(p *fakePeer) {
		for i, r := range replies {
			if i > 0 && strings.HasPrefix(replies[i-1], "354") {
				if !p.content() {
					return
				}
			} else if p.line() == "" {
				p.t.Errorf("client closed before reply %d (%q)", i, r)
				return
			}
			p.send(r)
		}
		closes(p)
	}
}

// TestSendRefusesRepliesTheCommandDoesNotAllow: RFC 5321 §4.3.2 lists the
// replies each command may get; a positive reply that is not among them,
// or a reply that arrived before its command was sent, is a protocol
// error — temporary, the connection closed, nobody accepted — never the
// success it looks like.
func TestSendRefusesRepliesTheCommandDoesNotAllow(t *testing.T) {
	const ok, goAhead = "250 2.0.0 ok\r\n", "354 go ahead\r\n"
	tests := []struct {
		name      string
		pipelined bool
		script    func(p *fakePeer)
		op        string
	}{
		{"250 to DATA, pipelined", true, pipelinedReplies(ok+ok+ok, ""), "DATA"},
		{"250 to DATA, in turn", false, inTurnReplies(ok, ok, ok), "DATA"},
		{"221 to DATA", true, pipelinedReplies(ok+ok+"221 bye\r\n", ""), "DATA"},
		{"334 to DATA", true, pipelinedReplies(ok+ok+"334 VXNlcm5hbWU6\r\n", ""), "DATA"},
		{"every reply twice, pipelined", true, pipelinedReplies(ok+ok+ok+ok+goAhead+goAhead, ""), "DATA"},
		{"every reply twice, in turn", false, inTurnReplies(ok + ok), "MAIL"},
		{"251 to MAIL", true, pipelinedReplies("251 2.1.0 ok\r\n"+ok+goAhead, ""), "MAIL"},
		{"354 to MAIL", false, inTurnReplies(goAhead), "MAIL"},
		{"220 to MAIL", true, pipelinedReplies("220 hi\r\n"+ok+goAhead, ""), "MAIL"},
		{"252 to RCPT (RFC 5321 §3.5.3: a VRFY reply)", true, pipelinedReplies(ok+"252 2.1.5 cannot verify\r\n"+goAhead, ""), "RCPT"},
		{"354 to RCPT", true, pipelinedReplies(ok+goAhead+goAhead, ""), "RCPT"},
		{"354 to RCPT, in turn", false, inTurnReplies(ok, goAhead), "RCPT"},
		{"221 to the end of data", true, pipelinedReplies(ok+ok+goAhead, "221 2.0.0 bye\r\n"), "end of data"},
		{"251 to the end of data", true, pipelinedReplies(ok+ok+goAhead, "251 2.0.0 ok\r\n"), "end of data"},
		{"220 to the end of data, in turn", false, inTurnReplies(ok, ok, goAhead, "220 ready\r\n"), "end of data"},
		{"354 to the end of data", true, pipelinedReplies(ok+ok+goAhead, goAhead), "end of data"},
		{"a reply after the 354, before the content", true, pipelinedReplies(ok+ok+goAhead+ok, ""), "DATA"},
		{"a reply after the 354, in turn", false, inTurnReplies(ok, ok, goAhead+ok), "DATA"},
		{"the final reply twice", true, pipelinedReplies(ok+ok+goAhead, ok+ok), "end of data"},
		{"a reply after the last pipelined reply", true, pipelinedReplies(ok+ok+"554 5.5.1 no\r\n"+ok, ""), "DATA"},
		{"a refusal before the command", false, inTurnReplies(ok + "550 5.1.1 no such user\r\n"), "MAIL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ext []string
			if tt.pipelined {
				ext = []string{"PIPELINING"}
			}
			c := fakeHello(t, Options{}, ext, tt.script)
			res, err := c.Send(context.Background(), env("b@example.net"), strings.NewReader(body))
			wantProtocolError(t, c, err, tt.op)
			if res.Accepted(0) {
				t.Error("recipient accepted")
			}
			if res.Data != nil && res.Data.Code/100 == 2 {
				t.Errorf("res.Data = %v, a success", res.Data)
			}
		})
	}
}

// TestCommandsRefuseRepliesTheyDoNotAllow covers the commands outside the
// mail transaction.
func TestCommandsRefuseRepliesTheyDoNotAllow(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		ext    []string
		script func(p *fakePeer)
		call   func(c *Conn) error
		op     string
	}{
		{"220 to EHLO", nil, inTurnReplies("220 mx ready\r\n"), func(c *Conn) error { return c.Hello(ctx, "client.example.org") }, "EHLO"},
		{"354 to EHLO", nil, inTurnReplies("354 go\r\n"), func(c *Conn) error { return c.Hello(ctx, "client.example.org") }, "EHLO"},
		{"EHLO reply followed by another", nil, inTurnReplies("250 mx\r\n250 mx\r\n"), func(c *Conn) error { return c.Hello(ctx, "client.example.org") }, "EHLO"},
		{"221 to HELO", nil, inTurnReplies("502 no\r\n", "221 bye\r\n"), func(c *Conn) error { return c.Hello(ctx, "client.example.org") }, "HELO"},
		{"250 to STARTTLS", nil, nil, nil, "STARTTLS"}, // filled in below
		{"354 to RSET", []string{"X"}, inTurnReplies("354 go\r\n"), func(c *Conn) error { return c.Reset(ctx) }, "RSET"},
		{"221 to NOOP", []string{"X"}, inTurnReplies("221 bye\r\n"), func(c *Conn) error { return c.Noop(ctx) }, "NOOP"},
		{"NOOP reply twice", []string{"X"}, inTurnReplies("250 ok\r\n250 ok\r\n"), func(c *Conn) error { return c.Noop(ctx) }, "NOOP"},
		{"250 to QUIT", []string{"X"}, inTurnReplies("250 ok\r\n"), func(c *Conn) error { return c.Quit(ctx) }, "QUIT"},
	}
	tests[4].ext = []string{"STARTTLS"}
	tests[4].script = inTurnReplies("250 ok\r\n")
	tests[4].call = func(c *Conn) error { return c.StartTLS(ctx, testPKI(t).clientTLS()) }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c *Conn
			if tt.ext == nil {
				c = fakeConn(t, Options{}, tt.script)
			} else {
				c = fakeHello(t, Options{}, tt.ext, tt.script)
			}
			wantProtocolError(t, c, tt.call(c), tt.op)
		})
	}
}

func TestAuthRefusesRepliesItDoesNotAllow(t *testing.T) {
	for _, reply := range []string{"250 2.0.0 fine\r\n", "354 go\r\n", "235 ok\r\n235 ok\r\n"} {
		c := fakeHello(t, Options{AllowInsecureAuth: true}, []string{"AUTH PLAIN"}, inTurnReplies(reply))
		err := c.Auth(context.Background(), sasl.NewPlainClient("", "u", "p"))
		wantProtocolError(t, c, err, "AUTH")
	}
}

func TestGreetingRefusesADuplicate(t *testing.T) {
	_, err := newFake(t, context.Background(), Options{}, func(p *fakePeer) {
		p.send("220 mx.fake.example\r\n220 mx.fake.example\r\n")
		closes(p)
	})
	wantProtocolError(t, nil, err, "greeting")
}

// TestSendAcceptsTheRepliesTheRFCAllows: the strictness above costs no
// legitimate reply: 251 to RCPT (RFC 5321 §3.4), negative replies of
// codes §4.3.2 does not list for the command (Postfix's 554 5.7.1 to RCPT
// for relaying denied, 504 5.5.2 for an unqualified address) are refusals
// of their class, and nothing follows an accepted message.
func TestSendAcceptsTheRepliesTheRFCAllows(t *testing.T) {
	c := fakeHello(t, Options{}, []string{"PIPELINING"}, func(p *fakePeer) {
		for range 5 {
			p.line()
		}
		p.send("250 ok\r\n251 2.1.5 will forward\r\n554 5.7.1 relay access denied\r\n504 5.5.2 need fully-qualified address\r\n354 go\r\n")
		if !p.content() {
			return
		}
		p.send("250 2.0.0 queued\r\n")
		p.expect("NOOP")
		p.send("250 ok\r\n")
	})
	res, err := c.Send(context.Background(), env("b@example.net", "c@example.net", "d@example.net"), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Accepted(0) || res.Accepted(1) || res.Accepted(2) || !res.Rcpts[1].Permanent() || res.Rcpts[2].Code != 504 {
		t.Errorf("replies %+v", res.Rcpts)
	}
	if err := c.Noop(context.Background()); err != nil {
		t.Fatalf("connection not reusable after a clean transaction: %v", err)
	}
}
