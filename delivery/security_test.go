package delivery

import (
	"testing"

	"github.com/sealpost/sealpost/internal/testenv"
)

// Tests of attacks and mix-ups found in a security review of the sending
// path: each case is a way a message could have left with less protection
// than its requirement demands.

// A REQUIRETLS message sent over a session pooled by an ordinary message
// of the same domain (same host, level, check and policy, so the same pool
// key) must still carry MAIL FROM ... REQUIRETLS: otherwise the next hop
// is never told to keep the message on TLS (RFC 8689 §4.2.1), and the
// server's REQUIRETLS support is never checked. The reverse must not
// happen either: an ordinary message does not inherit REQUIRETLS.
func TestREQUIRETLSOnAReusedSession(t *testing.T) {
	dw := newDANEWorld(t, testenv.SMTPOptions{REQUIRETLS: true})
	c := dw.client(nil)
	plain := msg("bob@secure.example")
	want(t, deliver(t, c, plain)[0], Delivered, "")
	strict := msg("bob@secure.example")
	strict.RequireTLS = true
	res := deliver(t, c, strict)
	want(t, res[0], Delivered, "")
	if !res[0].Session.Reused {
		t.Fatal("the second message did not reuse the session; the test proves nothing")
	}
	if !res[0].Session.Requirement.REQUIRETLS {
		t.Errorf("session requirement of the REQUIRETLS message = %+v", res[0].Session.Requirement)
	}
	want(t, deliver(t, c, msg("bob@secure.example"))[0], Delivered, "")
	got := dw.sink.Messages()
	if len(got) != 3 {
		t.Fatalf("sink got %d messages", len(got))
	}
	for i, wantRT := range []bool{false, true, false} {
		if got[i].MailOptions.RequireTLS != wantRT {
			t.Errorf("message %d: MAIL FROM REQUIRETLS = %v, want %v", i, got[i].MailOptions.RequireTLS, wantRT)
		}
	}
}

// The same with a server that does not advertise REQUIRETLS: a REQUIRETLS
// message must fail permanently (5.7.30) rather than go out without it
// over the session an ordinary message left in the pool.
func TestREQUIRETLSOnAReusedSessionWithoutSupport(t *testing.T) {
	dw := newDANEWorld(t, testenv.SMTPOptions{})
	c := dw.client(nil)
	want(t, deliver(t, c, msg("bob@secure.example"))[0], Delivered, "")
	strict := msg("bob@secure.example")
	strict.RequireTLS = true
	want(t, deliver(t, c, strict)[0], PermanentFailure, "5.7.30")
	if n := len(dw.sink.Messages()); n != 1 {
		t.Errorf("sink got %d messages, want only the ordinary one", n)
	}
}
