package queue_test

import (
	"context"
	"crypto/tls"
	"net/netip"
	"sync"
	"testing"

	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/queue"
)

// TestObserverGetsDeliveryResult: an application meters "delivered over
// DANE-EE" and sees why a host was refused through the queue's API alone,
// both in the Observer and, later, through Inspect.
func TestObserverGetsDeliveryResult(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]delivery.Result{} // by "event addr"
	note := func(event string) func(queue.ID, *queue.Recipient, *delivery.Result) {
		return func(_ queue.ID, r *queue.Recipient, res *delivery.Result) {
			mu.Lock()
			seen[event+" "+r.Addr] = *res
			mu.Unlock()
		}
	}
	h := newHarness(t, func(c *queue.Config) {
		c.Observer.Delivered = note("delivered")
		c.Observer.Deferred = note("deferred")
		c.Observer.Bounced = note("bounced")
	})
	h.d.set("carol@example.net", delivery.TemporaryFailure)
	h.d.set("dave@example.org", delivery.PermanentFailure)
	h.d.onResult(func(res *delivery.Result) {
		s := &res.Session
		s.IP = netip.MustParseAddr("127.0.0.25")
		switch res.Recipient {
		case "bob@example.com": // DANE-EE over TLS 1.3
			s.TLSVersion, s.Auth = tls.VersionTLS13, delivery.DANEEE
			s.Requirement = delivery.Requirement{Host: s.MXHost, Level: delivery.Authenticated, Basis: delivery.BasisDANE}
		case "carol@example.net": // refused by us: no TLSA record matched
			res.Remote, res.Code, res.Enhanced, res.Text = false, 451, [3]int{4, 7, 5}, "no TLSA record matches the certificate"
			s.Auth = delivery.NoSession
			s.Requirement = delivery.Requirement{Host: s.MXHost, Level: delivery.Authenticated, Basis: delivery.BasisDANE}
		case "dave@example.org": // refused by the server, over WebPKI
			s.TLSVersion, s.Auth = tls.VersionTLS12, delivery.WebPKI
			s.Requirement = delivery.Requirement{Host: s.MXHost, Level: delivery.Authenticated, Basis: delivery.BasisMTASTS}
		}
	})
	id := enqueue(t, h.q, &queue.Envelope{Recipients: rcpts("bob@example.com", "carol@example.net", "dave@example.org")})
	waitFor(t, "first round", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 3
	})

	mu.Lock()
	if res, ok := seen["delivered bob@example.com"]; !ok || res.Session.Auth != delivery.DANEEE || res.Session.Requirement.Basis != delivery.BasisDANE {
		t.Errorf("Delivered got %+v (seen %v), want the DANE-EE session", res.Session, ok)
	}
	if res, ok := seen["deferred carol@example.net"]; !ok || res.Status != delivery.TemporaryFailure || res.Session.Requirement.Basis != delivery.BasisDANE {
		t.Errorf("Deferred got %+v (seen %v), want the DANE requirement it failed", res, ok)
	}
	if res, ok := seen["bounced dave@example.org"]; !ok || res.Status != delivery.PermanentFailure || res.Session.Auth != delivery.WebPKI {
		t.Errorf("Bounced got %+v (seen %v), want the WebPKI session", res, ok)
	}
	mu.Unlock()

	waitFor(t, "the round stored", func() bool { return attempts(t, h.q, id, 1) == 1 })
	env, err := h.q.Inspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("127.0.0.25")
	want := []struct {
		session queue.SessionSummary
		line    string
	}{
		{queue.SessionSummary{MXHost: "mx.example.com", IP: ip, TLSVersion: "TLS 1.3", Auth: "DANE-EE", Basis: "DANE"},
			"mx.example.com [127.0.0.25] TLS 1.3, DANE-EE (DANE)"},
		{queue.SessionSummary{MXHost: "mx.example.net", IP: ip, Auth: "no session", Basis: "DANE"},
			"mx.example.net [127.0.0.25] no session (DANE)"},
		{queue.SessionSummary{MXHost: "mx.example.org", IP: ip, TLSVersion: "TLS 1.2", Auth: "WebPKI", Basis: "MTA-STS"},
			"mx.example.org [127.0.0.25] TLS 1.2, WebPKI (MTA-STS)"},
	}
	for i, w := range want {
		r := env.Recipients[i]
		if r.Last.Session != w.session {
			t.Errorf("Inspect: %s session = %+v, want %+v", r.Addr, r.Last.Session, w.session)
		}
		if got := r.Last.Session.String(); got != w.line {
			t.Errorf("%s session line = %q, want %q", r.Addr, got, w.line)
		}
	}
	if r := env.Recipients[1]; r.Last.RemoteMTA != "" || r.Last.Text != "no TLSA record matches the certificate" {
		t.Errorf("carol's diagnostic = %+v, want our own refusal (no Remote-MTA)", r.Last)
	}
}

func TestSessionSummaryOfNoHost(t *testing.T) {
	// A DNS failure: no host was tried, nothing to summarise.
	h := newHarness(t, nil)
	h.d.set("x@example.com", delivery.TemporaryFailure)
	h.d.onResult(func(res *delivery.Result) { res.Session = delivery.Session{}; res.Remote = false })
	id := enqueue(t, h.q, &queue.Envelope{Recipients: rcpts("x@example.com")})
	waitFor(t, "attempt", func() bool { return attempts(t, h.q, id, 0) == 1 })
	env, err := h.q.Inspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if s := env.Recipients[0].Last.Session; s != (queue.SessionSummary{}) || s.String() != "" {
		t.Errorf("session without a host = %+v (%q), want zero", s, s.String())
	}
}
