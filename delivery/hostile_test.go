package delivery

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/smtpclient"
	"github.com/sealpost/sealpost/internal/testenv"
	"github.com/sealpost/sealpost/tlsrpt"
)

// scriptedMX starts a scripted server for host, gives it its own loopback
// address and publishes it as the one MX of domain.
func (tw *testWorld) scriptedMX(domain, host string, opts testenv.ScriptOptions) *testenv.ScriptedServer {
	tw.t.Helper()
	s, err := testenv.StartScripted(opts)
	if err != nil {
		tw.t.Fatal(err)
	}
	tw.t.Cleanup(s.Close)
	ip := tw.w.NextIP()
	if err := tw.w.DNS.Add(host+". 300 IN A "+ip, domain+". 300 IN MX 10 "+host+"."); err != nil {
		tw.t.Fatal(err)
	}
	tw.w.Dialer.Route(ip+":25", s.Addr())
	return s
}

// at answers the n-th event of command (every one when n is 0) with
// reply, closing the connection when close is set.
func at(command string, n int, reply string, close bool) func(testenv.ScriptEvent) *testenv.ScriptStep {
	return func(e testenv.ScriptEvent) *testenv.ScriptStep {
		if e.Command == command && (n == 0 || e.N == n) {
			return &testenv.ScriptStep{Reply: reply, Close: close}
		}
		return nil
	}
}

// twice duplicates every reply.
func twice(e testenv.ScriptEvent) *testenv.ScriptStep {
	return &testenv.ScriptStep{Reply: e.Normal + e.Normal}
}

// protocolStatus is the status of a recipient whose server broke the
// protocol: a temporary failure of our own with 4.4.2 (RFC 3463 "bad
// connection"), the code every failure that ends the connection gets.
const protocolStatus = "4.4.2"

// TestHostileServerNeverDelivers: a server whose replies the commands do
// not allow, or that answers out of turn, leaves the recipient temporarily
// failed (to be retried), never delivered, and its session is dropped,
// never reused. A 421 or a dropped connection at any step is temporary
// too. The delivery after it, to the server now behaving, opens a new
// connection.
func TestHostileServerNeverDelivers(t *testing.T) {
	const (
		protocol = iota // a protocol error: 4.4.2, a *ProtocolError inside
		closing         // a 421 from the server
		dropped         // the connection lost: 4.4.2
	)
	inTurn := []string{"8BITMIME", "ENHANCEDSTATUSCODES"}
	long := "250 " + strings.Repeat("x", 5000) + "\r\n"
	tests := []struct {
		name    string
		ext     []string // nil: PIPELINING too
		script  func(testenv.ScriptEvent) *testenv.ScriptStep
		kind    int
		content bool // the content reached the server
	}{
		{"250 to DATA, pipelined", nil, at("DATA", 0, "250 2.0.0 Ok\r\n", false), protocol, false},
		{"250 to DATA, in turn", inTurn, at("DATA", 0, "250 2.0.0 Ok\r\n", false), protocol, false},
		{"every reply twice, pipelined", nil, twice, protocol, false},
		{"every reply twice, in turn", inTurn, twice, protocol, false},
		{"every reply but the greeting twice", nil, func(e testenv.ScriptEvent) *testenv.ScriptStep {
			if e.Command == testenv.ScriptGreeting {
				return nil
			}
			return twice(e)
		}, protocol, false},
		{"a reply before its command", inTurn, at("MAIL", 0, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n", false), protocol, false},
		{"the 354 followed by a 250", nil, at("DATA", 0, "354 go\r\n250 2.0.0 Ok\r\n", false), protocol, false},
		{"252 to RCPT", nil, at("RCPT", 0, "252 2.1.5 cannot verify\r\n", false), protocol, false},
		{"354 to RCPT", inTurn, at("RCPT", 0, "354 go\r\n", false), protocol, false},
		{"251 to MAIL", nil, at("MAIL", 0, "251 2.1.0 Ok\r\n", false), protocol, false},
		{"221 to the end of data", nil, at(testenv.ScriptEndOfData, 0, "221 2.0.0 Bye\r\n", false), protocol, true},
		{"the final reply twice", nil, at(testenv.ScriptEndOfData, 0, "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n", false), protocol, true},
		{"250 greeting", nil, at(testenv.ScriptGreeting, 0, "250 hi\r\n", false), protocol, false},
		{"EHLO continuation changes the code", nil, at("EHLO", 0, "250-mx\r\n251 PIPELINING\r\n", false), protocol, false},
		{"EHLO continuation without separator", nil, at("EHLO", 0, "250-mx\r\n250PIPELINING\r\n", false), protocol, false},
		{"EHLO reply cut off", nil, at("EHLO", 0, "250-mx\r\n250-PIPELINING\r\n", true), dropped, false},
		{"reply line over 4096 octets", nil, at("RCPT", 0, long, false), protocol, false},
		{"250 to STARTTLS", []string{"STARTTLS"}, at("STARTTLS", 0, "250 2.0.0 Ok\r\n", false), protocol, false},
		{"421 greeting", nil, at(testenv.ScriptGreeting, 0, "421 4.3.2 busy\r\n", true), closing, false},
		{"421 to EHLO", nil, at("EHLO", 0, "421 4.3.2 busy\r\n", true), closing, false},
		{"421 to MAIL", nil, at("MAIL", 0, "421 4.3.2 busy\r\n", true), closing, false},
		{"421 to RCPT", inTurn, at("RCPT", 0, "421 4.3.2 busy\r\n", true), closing, false},
		{"421 to DATA", nil, at("DATA", 0, "421 4.3.2 busy\r\n", true), closing, false},
		{"421 to the end of data", nil, at(testenv.ScriptEndOfData, 0, "421 4.3.2 busy\r\n", true), closing, true},
		{"dropped before the greeting", nil, at(testenv.ScriptGreeting, 0, "", true), dropped, false},
		{"dropped at EHLO", nil, at("EHLO", 0, "", true), dropped, false},
		{"dropped at MAIL", inTurn, at("MAIL", 0, "", true), dropped, false},
		{"dropped at RCPT", nil, at("RCPT", 0, "", true), dropped, false},
		{"dropped at DATA", inTurn, at("DATA", 0, "", true), dropped, false},
		{"dropped at the end of data", nil, at(testenv.ScriptEndOfData, 0, "", true), dropped, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tw := newTestWorld(t, "insecure:hostile.example.")
			var healed atomic.Bool
			s := tw.scriptedMX("hostile.example", "mx.hostile.example", testenv.ScriptOptions{
				Extensions: tt.ext,
				Script: func(e testenv.ScriptEvent) *testenv.ScriptStep {
					if healed.Load() {
						return nil
					}
					return tt.script(e)
				},
			})
			c := tw.client(nil)
			r := deliver(t, c, msg("bob@hostile.example"))[0]
			switch tt.kind {
			case protocol:
				want(t, r, TemporaryFailure, protocolStatus)
				var pe *smtpclient.ProtocolError
				if !errors.As(r.Err, &pe) {
					t.Errorf("error %v holds no *smtpclient.ProtocolError", r.Err)
				}
			case closing:
				want(t, r, TemporaryFailure, "4.3.2")
				if r.Code != 421 || !r.Remote {
					t.Errorf("result %d, remote %v; want the server's 421", r.Code, r.Remote)
				}
			case dropped:
				want(t, r, TemporaryFailure, protocolStatus)
			}
			if got := len(s.Messages()); got != 0 != tt.content {
				t.Errorf("the server got %d messages, want content %v", got, tt.content)
			}

			before := s.Connections()
			healed.Store(true)
			r = deliver(t, c, msg("bob@hostile.example"))[0]
			want(t, r, Delivered, "")
			msgs := s.Messages()
			if last := msgs[len(msgs)-1]; last.Conn <= before {
				t.Errorf("delivered over connection %d of %d: the broken session was reused", last.Conn, before)
			}
		})
	}
}

// TestSTARTTLSOfferedThenRefused: under opportunistic TLS a server that
// advertises STARTTLS and refuses it with 454 gets the message in
// plaintext (RFC 3207 §4 leaves that to the client), reported as
// starttls-not-supported.
func TestSTARTTLSOfferedThenRefused(t *testing.T) {
	tw := newTestWorld(t, "insecure:hostile.example.")
	s := tw.scriptedMX("hostile.example", "mx.hostile.example", testenv.ScriptOptions{Extensions: []string{"STARTTLS", "PIPELINING"}})
	r := deliver(t, tw.client(nil), msg("bob@hostile.example"))[0]
	want(t, r, Delivered, "")
	if r.Session.Auth != Plaintext || len(s.Messages()) != 1 {
		t.Errorf("session %+v, %d messages", r.Session, len(s.Messages()))
	}
}

// TestDeliverNeutralisesSmuggling sends content that tries each SMTP
// smuggling end-of-data lookalike (CVE-2023-51764/5/6) through the public
// API to a strict server: every message arrives as one, with no bare CR or
// LF on the wire and the would-be second message as text inside it.
func TestDeliverNeutralisesSmuggling(t *testing.T) {
	tw := newTestWorld(t, "insecure:hostile.example.")
	s := tw.scriptedMX("hostile.example", "mx.hostile.example", testenv.ScriptOptions{})
	c := tw.client(nil)
	seqs := []string{"\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r.\n", "\n.\r", "\r.\r\n", "\r\n.\r", "\r\n.\r\n"}
	for _, seq := range seqs {
		body := "From: a@sender.example\r\n\r\nhi" + seq + "MAIL FROM:<admin@hostile.example>\r\nRCPT TO:<x@hostile.example>\r\nDATA\r\n\r\nforged\r\n"
		m := msg("bob@hostile.example")
		m.Body, m.Size = strings.NewReader(body), int64(len(body))
		want(t, deliver(t, c, m)[0], Delivered, "")
	}
	msgs := s.Messages()
	if len(msgs) != len(seqs) {
		t.Fatalf("the server got %d messages for %d sent", len(msgs), len(seqs))
	}
	for i, m := range msgs {
		raw := string(m.Raw)
		if strings.Count(raw, "\r") != strings.Count(raw, "\n") || strings.Count(raw, "\r\n") != strings.Count(raw, "\n") {
			t.Errorf("%q: bare CR or LF on the wire: %q", seqs[i], raw)
		}
		if !strings.Contains(raw, "\r\n..\r\nMAIL FROM:<admin@") || !strings.HasSuffix(string(m.Data), "\r\nforged\r\n") {
			t.Errorf("%q: content %q", seqs[i], raw)
		}
	}
	for _, e := range s.Events() {
		if e.Command == "MAIL" && strings.Contains(e.Line, "admin@") {
			t.Errorf("the smuggled MAIL reached the server as a command: %q", e.Line)
		}
	}
}

// TestBodyShorterThanSizeIsNotDelivered: a Body that ends before Size
// (a file truncated under the queue, a wrong Size) is not sent as if it
// were the whole message: the transaction is aborted and the recipient
// stays to be retried.
func TestBodyShorterThanSizeIsNotDelivered(t *testing.T) {
	tw := newTestWorld(t, "insecure:hostile.example.")
	s := tw.scriptedMX("hostile.example", "mx.hostile.example", testenv.ScriptOptions{})
	m := msg("bob@hostile.example")
	m.Size += 100
	r := deliver(t, tw.client(nil), m)[0]
	want(t, r, TemporaryFailure, "4.3.0")
	if n := len(s.Messages()); n != 0 {
		t.Errorf("the server got %d messages, want none", n)
	}
}

// TestSTARTTLSInjectionIsReported: a reply to STARTTLS with octets after
// it (an on-path attacker injecting a plaintext reply meant to be read as
// sent under TLS, CVE-2011-0411's kind) under an enforced MTA-STS policy
// leaves the recipient deferred, delivers nothing, and is recorded for
// TLS-RPT: it is the attack the domain most wants to hear of.
func TestSTARTTLSInjectionIsReported(t *testing.T) {
	tw := newTestWorld(t, "insecure:sts.example.")
	s := tw.scriptedMX("sts.example", "mx.sts.example", testenv.ScriptOptions{
		Certificate: tw.cert("mx.sts.example"),
		Script:      at("STARTTLS", 0, "220 go ahead\r\n250 injected\r\n", false),
	})
	if err := tw.w.PublishSTS("sts.example", "20240101", enforcePolicy); err != nil {
		t.Fatal(err)
	}
	r := deliver(t, tw.client(nil), msg("bob@sts.example"))[0]
	if r.Status != TemporaryFailure {
		t.Errorf("status %v (%v), want a temporary failure", r.Status, r.Err)
	}
	if len(s.Messages()) != 0 {
		t.Error("the message was delivered")
	}
	f := tw.only()
	wantFailure(t, f, tlsrpt.PolicyTypeSTS, tlsrpt.ResultValidationFailure)
	if f.Failure.FailureReasonCode != "starttls-protocol-error" {
		t.Errorf("failure-reason-code %q, want starttls-reply-injection", f.Failure.FailureReasonCode)
	}
}

// TestCloseWaitsForSessionsBeingEnded: Close returns only once the
// sessions already being ended in the background (QUIT sent, the reply
// awaited) are closed, so that a program that closes its Client and exits
// does not cut them off; they were untracked goroutines.
func TestCloseWaitsForSessionsBeingEnded(t *testing.T) {
	tw := newTestWorld(t, "insecure:slowquit.example.")
	var quitAnswered atomic.Bool
	tw.scriptedMX("slowquit.example", "mx.slowquit.example", testenv.ScriptOptions{Script: func(e testenv.ScriptEvent) *testenv.ScriptStep {
		if e.Command == "QUIT" {
			time.Sleep(300 * time.Millisecond)
			quitAnswered.Store(true)
		}
		return nil
	}})
	// No reuse: the session is ended as soon as the message is sent.
	c := tw.client(func(cfg *Config) { cfg.IdleTimeout = -1 })
	want(t, deliver(t, c, msg("bob@slowquit.example"))[0], Delivered, "")
	c.Close()
	if !quitAnswered.Load() {
		t.Error("Close returned while the session's QUIT was still unanswered")
	}
}
