package interop

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/delivery"
)

// TestResolverValidates: Unbound, as the library's health check sees it,
// answers, validates and passes RRSIGs on loopback, so DANE can be used.
func TestResolverValidates(t *testing.T) {
	resolver, _ := servers(t)
	r := &dane.Resolver{Servers: []dane.Server{{Addr: resolver}}, Timeout: 2 * time.Second}
	rep, err := r.CheckHealth(context.Background(), "secure.test")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.DANEUsable() {
		t.Fatalf("health check: %+v, problems %q", rep, rep.Problems())
	}
}

// TestDANEDelivered: a host of a signed zone whose TLSA record pins its
// key is delivered to, authenticated by DANE-EE (RFC 7672 §3.1.1).
func TestDANEDelivered(t *testing.T) {
	w := newWorld(t)
	domain, host := w.name("", "secure.test")[1:], w.name("mx", "secure.test")
	sink := w.mx("secure.test", domain, host, "127.0.1.1", "pin")
	res := w.send(w.client(), "bob@"+domain)
	if res.Status != delivery.Delivered || res.Session.Auth != delivery.DANEEE {
		t.Fatalf("result %+v (session auth %v), want delivered under DANE-EE", res, res.Session.Auth)
	}
	if n := len(sink.Messages()); n != 1 {
		t.Errorf("the MX host received %d messages", n)
	}
}

// TestDANEMismatchDefers: a TLSA record that matches no key the host
// presents makes the host unusable: the mail is deferred, never sent
// unauthenticated, never bounced.
func TestDANEMismatchDefers(t *testing.T) {
	w := newWorld(t)
	domain, host := w.name("", "secure.test")[1:], w.name("mx", "secure.test")
	sink := w.mx("secure.test", domain, host, "127.0.1.2", "3 1 1 "+strings.Repeat("ab", 32))
	res := w.send(w.client(), "bob@"+domain)
	if res.Status != delivery.TemporaryFailure {
		t.Fatalf("result %+v, want a temporary failure", res)
	}
	if n := len(sink.Messages()); n != 0 {
		t.Errorf("the MX host received %d messages despite the failed DANE check", n)
	}
}

// TestBogusDefers: answers from a zone whose signatures do not validate
// (Unbound's SERVFAIL with an RFC 8914 DNSSEC code) defer the mail; a
// bogus zone is never read as unsigned, nor the failure as permanent.
func TestBogusDefers(t *testing.T) {
	w := newWorld(t)
	domain, host := w.name("", "bogus.test")[1:], w.name("mx", "bogus.test")
	sink := w.mx("bogus.test", domain, host, "127.0.1.3", "pin")
	res := w.send(w.client(), "bob@"+domain)
	if res.Status != delivery.TemporaryFailure {
		t.Fatalf("result %+v, want a temporary failure", res)
	}
	if n := len(sink.Messages()); n != 0 {
		t.Errorf("the MX host of a bogus zone received %d messages", n)
	}
}

// TestUnsignedTLSAIgnored: TLSA records in an unsigned zone do not apply
// (RFC 7672 §2.2): the mail goes out over opportunistic TLS even though
// the record matches nothing.
func TestUnsignedTLSAIgnored(t *testing.T) {
	w := newWorld(t)
	domain, host := w.name("", "insecure.test")[1:], w.name("mx", "insecure.test")
	sink := w.mx("insecure.test", domain, host, "127.0.1.4", "3 1 1 "+strings.Repeat("cd", 32))
	res := w.send(w.client(), "bob@"+domain)
	if res.Status != delivery.Delivered || res.Session.Auth != delivery.UnauthenticatedTLS {
		t.Fatalf("result %+v (session auth %v), want delivered over unauthenticated TLS", res, res.Session.Auth)
	}
	if n := len(sink.Messages()); n != 1 {
		t.Errorf("the MX host received %d messages", n)
	}
}

// TestTLSAChangedAtRunTime: a TLSA record replaced while the client runs
// (an RFC 2136 update Knot signs at once) is enforced once the old one's
// TTL has passed (deliveries go on meanwhile, under the cached record):
// then every delivery is deferred; restored, they succeed again.
func TestTLSAChangedAtRunTime(t *testing.T) {
	w := newWorld(t)
	domain, host := w.name("", "secure.test")[1:], w.name("mx", "secure.test")
	sink := w.mx("secure.test", domain, host, "127.0.1.5", "pin")
	c := w.client()
	if res := w.send(c, "bob@"+domain); res.Status != delivery.Delivered {
		t.Fatalf("before the change: %+v", res)
	}
	w.update("secure.test", "_25._tcp."+host+". 2 IN TLSA 3 1 1 "+strings.Repeat("ef", 32))
	eventually(t, "the changed TLSA record is enforced", func() error {
		if res := w.send(c, "bob@"+domain); res.Status != delivery.TemporaryFailure {
			return fmt.Errorf("result %s (%s)", res.Status, res.Text)
		}
		return nil
	})
	// Deliveries went on while the old record was cached, as they may;
	// once the new one is seen, none does.
	before := len(sink.Messages())
	if res := w.send(c, "bob@"+domain); res.Status != delivery.TemporaryFailure || len(sink.Messages()) != before {
		t.Fatalf("after the change was seen: %+v, %d messages (%d before)", res, len(sink.Messages()), before)
	}
	w.update("secure.test", "_25._tcp."+host+". 2 IN TLSA "+w.pins[host])
	eventually(t, "the restored TLSA record is enforced", func() error {
		if res := w.send(c, "bob@"+domain); res.Status != delivery.Delivered {
			return fmt.Errorf("result %s (%s)", res.Status, res.Text)
		}
		return nil
	})
}
