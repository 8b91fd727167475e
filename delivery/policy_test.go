package delivery

import (
	"crypto/tls"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"
	"github.com/sealpost/sealpost/internal/testenv"
	"github.com/sealpost/sealpost/sts"
	"github.com/sealpost/sealpost/tlsrpt"
)

func TestLocalPolicyLookup(t *testing.T) {
	p := LocalPolicy{
		Domains: map[string]DomainPolicy{
			"example.com":       {RequireTLS: true},
			".example.com":      {DANEOnly: true},
			".mail.example.com": {RequireAuthenticated: true},
		},
		Default: DomainPolicy{NextHop: "default"},
	}
	tests := []struct {
		domain string
		want   DomainPolicy
	}{
		{"example.com", DomainPolicy{RequireTLS: true}},
		{"a.example.com", DomainPolicy{DANEOnly: true}},
		{"a.b.example.com", DomainPolicy{DANEOnly: true}},
		{"x.mail.example.com", DomainPolicy{RequireAuthenticated: true}},
		{"mail.example.com", DomainPolicy{DANEOnly: true}},
		{"example.org", DomainPolicy{NextHop: "default"}},
		{"com", DomainPolicy{NextHop: "default"}},
	}
	for _, tc := range tests {
		if got := p.lookup(tc.domain); got != tc.want {
			t.Errorf("lookup(%s) = %+v, want %+v", tc.domain, got, tc.want)
		}
	}
	var empty LocalPolicy
	if got := empty.lookup("example.com"); got != (DomainPolicy{}) {
		t.Errorf("empty policy gives %+v", got)
	}
}

func TestOverrideNeedsAReasonAndExpires(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name string
		o    Override
		want bool
	}{
		{"with a reason", Override{IgnoreDANE: true, Reason: "broken TLSA"}, true},
		{"without a reason", Override{IgnoreDANE: true}, false},
		{"nothing to ignore", Override{Reason: "x"}, false},
		{"expired", Override{IgnoreMTASTS: true, Reason: "x", Until: now.Add(-time.Second)}, false},
		{"not yet expired", Override{IgnoreMTASTS: true, Reason: "x", Until: now.Add(time.Hour)}, true},
	}
	for _, tc := range tests {
		if got := tc.o.active(now); got != tc.want {
			t.Errorf("%s: active = %v", tc.name, got)
		}
	}
}

func TestLocalRules(t *testing.T) {
	t.Run("RequireTLS refuses a server without STARTTLS", func(t *testing.T) {
		tw := newTestWorld(t, "insecure:local.example.")
		sink, _ := tw.mx("local.example", 10, "mx.local.example", testenv.SMTPOptions{})
		c := tw.client(func(cfg *Config) { cfg.Policy.Default.RequireTLS = true })
		want(t, deliver(t, c, msg("bob@local.example"))[0], TemporaryFailure, "4.7.10")
		if len(sink.Messages()) != 0 {
			t.Error("delivered in plaintext")
		}
	})
	t.Run("RequireTLS does not retry a failed handshake in plaintext", func(t *testing.T) {
		tw := newTestWorld(t, "insecure:local.example.")
		sink, _ := tw.mx("local.example", 10, "mx.local.example", testenv.SMTPOptions{Certificate: tw.cert("mx.local.example"), DropAt: testenv.StageSTARTTLS})
		c := tw.client(func(cfg *Config) { cfg.Policy.Default.RequireTLS = true })
		want(t, deliver(t, c, msg("bob@local.example"))[0], TemporaryFailure, "4.7.5")
		if sink.Connections() != 1 {
			t.Errorf("%d connections, want 1", sink.Connections())
		}
	})
	t.Run("opportunistic TLS retries a failed handshake in plaintext", func(t *testing.T) {
		tw := newTestWorld(t, "insecure:local.example.")
		sink, _ := tw.mx("local.example", 10, "mx.local.example", testenv.SMTPOptions{Certificate: tw.cert("mx.local.example"), DropAt: testenv.StageSTARTTLS})
		c := tw.client(nil)
		res := deliver(t, c, msg("bob@local.example"))
		want(t, res[0], Delivered, "")
		if res[0].Session.Auth != Plaintext || sink.Connections() != 2 {
			t.Errorf("auth %v over %d connections", res[0].Session.Auth, sink.Connections())
		}
		wantFailure(t, tw.only(), tlsrpt.PolicyTypeNoPolicyFound, tlsrpt.ResultValidationFailure)
	})
	t.Run("RequireAuthenticated checks the WebPKI", func(t *testing.T) {
		tw := newTestWorld(t, "insecure:local.example.", "insecure:good.example.")
		tw.mx("local.example", 10, "mx.local.example", testenv.SMTPOptions{Certificate: tw.cert("other.example")})
		tw.mx("good.example", 10, "mx.good.example", testenv.SMTPOptions{Certificate: tw.cert("mx.good.example")})
		c := tw.client(func(cfg *Config) { cfg.Policy.Default.RequireAuthenticated = true })
		want(t, deliver(t, c, msg("bob@local.example"))[0], TemporaryFailure, "4.7.5")
		res := deliver(t, c, msg("bob@good.example"))
		want(t, res[0], Delivered, "")
		if res[0].Session.Auth != WebPKI || res[0].Session.Requirement.Basis != BasisLocal {
			t.Errorf("session = %+v", res[0].Session)
		}
	})
	t.Run("DANEOnly skips hosts without TLSA records", func(t *testing.T) {
		tw := newTestWorld(t, "local.example.")
		tw.mx("local.example", 10, "mx.local.example", testenv.SMTPOptions{Certificate: tw.cert("mx.local.example")})
		c := tw.client(func(cfg *Config) {
			cfg.Policy.Domains = map[string]DomainPolicy{"local.example": {DANEOnly: true}}
		})
		want(t, deliver(t, c, msg("bob@local.example"))[0], TemporaryFailure, "4.7.5")
		if len(tw.w.Dialer.Dialed()) != 0 {
			t.Error("dialed a host DANE does not cover")
		}
		wantFailure(t, tw.only(), tlsrpt.PolicyTypeTLSA, tlsrpt.ResultDANERequired)
	})
	t.Run("a local rule does not loosen DANE", func(t *testing.T) {
		other := tlsLeaf(t)
		dw := newDANEWorld(t, testenv.SMTPOptions{Certificate: &other})
		c := dw.client(func(cfg *Config) { cfg.Policy.Default.RequireTLS = true })
		want(t, deliver(t, c, msg("bob@secure.example"))[0], TemporaryFailure, "4.7.5")
	})
}

func TestPreloadedPolicy(t *testing.T) {
	policy, err := sts.ParsePolicy("version: STSv1\nmode: enforce\nmx: *.pre.example\nmax_age: 86400\n")
	if err != nil {
		t.Fatal(err)
	}
	setup := func(t *testing.T, host string, cert *tlsCertOpt) (*testWorld, *Client) {
		tw := newTestWorld(t, "insecure:pre.example.", "insecure:elsewhere.example.")
		c := tw.cert(host)
		if cert != nil {
			c = tw.cert(cert.name)
		}
		tw.mx("pre.example", 10, host, testenv.SMTPOptions{Certificate: c})
		return tw, tw.client(func(cfg *Config) {
			cfg.Policy.Domains = map[string]DomainPolicy{"pre.example": {Preloaded: policy}}
		})
	}
	t.Run("matching host with a valid certificate", func(t *testing.T) {
		tw, c := setup(t, "mx.pre.example", nil)
		res := deliver(t, c, msg("bob@pre.example"))
		want(t, res[0], Delivered, "")
		if res[0].Session.Auth != WebPKI || res[0].Session.Requirement.Basis != BasisPreloaded {
			t.Errorf("session = %+v", res[0].Session)
		}
		wantFailure(t, tw.only(), tlsrpt.PolicyTypeNoPolicyFound, "")
	})
	t.Run("host outside the preloaded mx patterns", func(t *testing.T) {
		tw, c := setup(t, "mx.elsewhere.example", nil)
		want(t, deliver(t, c, msg("bob@pre.example"))[0], TemporaryFailure, "4.4.8")
		if len(tw.w.Dialer.Dialed()) != 0 {
			t.Error("dialed a host the policy does not allow")
		}
	})
	t.Run("certificate for another name", func(t *testing.T) {
		tw, c := setup(t, "mx.pre.example", &tlsCertOpt{name: "other.example"})
		want(t, deliver(t, c, msg("bob@pre.example"))[0], TemporaryFailure, "4.7.5")
		wantFailure(t, tw.only(), tlsrpt.PolicyTypeNoPolicyFound, tlsrpt.ResultCertificateHostMismatch)
	})
	// The domain's own word, in any mode, takes precedence over the
	// operator's: the preloaded policy is for a domain that publishes none.
	for _, tc := range []struct {
		mode  string
		basis Basis
	}{
		{"testing", BasisMTASTS},
		{"none", NoPolicy},
	} {
		t.Run("published policy in mode "+tc.mode+" takes precedence", func(t *testing.T) {
			tw, c := setup(t, "mx.pre.example", &tlsCertOpt{name: "other.example"})
			published := "version: STSv1\nmode: " + tc.mode + "\nmx: mx.pre.example\nmax_age: 86400\n"
			if err := tw.w.PublishSTS("pre.example", "1", published); err != nil {
				t.Fatal(err)
			}
			res := deliver(t, c, msg("bob@pre.example"))
			want(t, res[0], Delivered, "")
			if s := res[0].Session; s.Auth != UnauthenticatedTLS || s.Requirement.Basis != tc.basis || s.Requirement.Level != Opportunistic {
				t.Errorf("session = %+v", s)
			}
			ex, err := c.Explain(t.Context(), "pre.example")
			if err != nil {
				t.Fatal(err)
			}
			if text := ex.String(); strings.Contains(text, "preloaded") {
				t.Errorf("explanation names the preloaded policy:\n%s", text)
			}
		})
	}
}

type tlsCertOpt struct{ name string }

func TestREQUIRETLS(t *testing.T) {
	t.Run("DANE host advertising REQUIRETLS", func(t *testing.T) {
		dw := newDANEWorld(t, testenv.SMTPOptions{REQUIRETLS: true})
		c := dw.client(nil)
		m := msg("bob@secure.example")
		m.RequireTLS = true
		want(t, deliver(t, c, m)[0], Delivered, "")
		if got := dw.sink.Messages(); len(got) != 1 || !got[0].MailOptions.RequireTLS {
			t.Errorf("sink got %+v", got)
		}
	})
	t.Run("server without REQUIRETLS is a permanent failure", func(t *testing.T) {
		dw := newDANEWorld(t, testenv.SMTPOptions{})
		c := dw.client(nil)
		m := msg("bob@secure.example")
		m.RequireTLS, m.TLSOptional = true, true // REQUIRETLS wins (RFC 8689 §3)
		want(t, deliver(t, c, m)[0], PermanentFailure, "5.7.30")
		if len(dw.sink.Messages()) != 0 {
			t.Error("delivered")
		}
		wantFailure(t, dw.only(), tlsrpt.PolicyTypeTLSA, "")
	})
	t.Run("insecure MX answer is a permanent failure", func(t *testing.T) {
		tw := newTestWorld(t, "insecure:plain.example.")
		tw.mx("plain.example", 10, "mx.plain.example", testenv.SMTPOptions{Certificate: tw.cert("mx.plain.example"), REQUIRETLS: true})
		c := tw.client(nil)
		m := msg("bob@plain.example")
		m.RequireTLS = true
		want(t, deliver(t, c, m)[0], PermanentFailure, "5.7.30")
		if len(tw.w.Dialer.Dialed()) != 0 {
			t.Error("dialed")
		}
	})
	t.Run("secure MX without DANE needs a WebPKI certificate", func(t *testing.T) {
		tw := newTestWorld(t, "signed.example.")
		tw.mx("signed.example", 10, "mx1.signed.example", testenv.SMTPOptions{Certificate: tw.cert("wrong.example"), REQUIRETLS: true})
		tw.mx("signed.example", 20, "mx2.signed.example", testenv.SMTPOptions{Certificate: tw.cert("mx2.signed.example"), REQUIRETLS: true})
		c := tw.client(nil)
		m := msg("bob@signed.example")
		m.RequireTLS = true
		res := deliver(t, c, m)
		want(t, res[0], Delivered, "")
		if s := res[0].Session; s.MXHost != "mx2.signed.example" || s.Auth != WebPKI || s.Requirement.Basis != BasisREQUIRETLS {
			t.Errorf("session = %+v", s)
		}
	})
}

func TestExplain(t *testing.T) {
	dw := newDANEWorld(t, testenv.SMTPOptions{})
	dw.mx("secure.example", 20, "mx2.secure.example", testenv.SMTPOptions{})
	dw.w.DNS.SetFault("_25._tcp.mx2.secure.example", dns.TypeTLSA, testenv.FaultServfail)
	c := dw.client(nil)
	ex, err := c.Explain(t.Context(), "Secure.Example.")
	if err != nil {
		t.Fatal(err)
	}
	if ex.Domain != "secure.example" || ex.Route == nil || !ex.Route.Secure || len(ex.Hosts) != 2 {
		t.Fatalf("explanation = %+v", ex)
	}
	h := ex.Hosts[0]
	if h.Err != nil || h.Requirement.Basis != BasisDANE || h.Requirement.Level != Authenticated || len(h.Addrs) != 1 || h.Requirement.DANE == nil {
		t.Errorf("first host: %+v", h)
	}
	if ex.Hosts[1].Err == nil || ex.Hosts[1].Requirement != nil {
		t.Errorf("second host: %+v", ex.Hosts[1])
	}
	if len(dw.w.Dialer.Dialed()) != 0 || len(dw.rec.all()) != 0 {
		t.Error("Explain connected or recorded")
	}
	text := ex.String()
	for _, s := range []string{"mx.secure.example", "DNSSEC-secure", "TLSA 3 1 1", "not used", "authenticated TLS required"} {
		if !strings.Contains(text, s) {
			t.Errorf("explanation text lacks %q:\n%s", s, text)
		}
	}
	if h.TLSASource != "DNS look-up now; asked _25._tcp.mx.secure.example" {
		t.Errorf("first explanation: TLSA from %q", h.TLSASource)
	}
	again, _ := c.Explain(t.Context(), "secure.example")
	if src := again.Hosts[0].TLSASource; !strings.HasPrefix(src, "cache, until ") || !strings.HasSuffix(src, "; asked _25._tcp.mx.secure.example") {
		t.Errorf("second explanation: TLSA from %q", src)
	}
	t.Run("no TLSA look-up for a host whose addresses are insecure", func(t *testing.T) {
		// RFC 7672 §2.2.3: dane.Discovery asks no TLSA question then, and
		// the explanation must not claim one.
		if err := dw.w.DNS.Zone("plain.example.", testenv.Insecure); err != nil {
			t.Fatal(err)
		}
		dw.mx("plain.example", 10, "mx.plain.example", testenv.SMTPOptions{})
		ex, err := c.Explain(t.Context(), "plain.example")
		if err != nil {
			t.Fatal(err)
		}
		if dw.w.DNS.Queries("_25._tcp.mx.plain.example.", dns.TypeTLSA) != 0 {
			t.Fatal("a TLSA question was asked; the test proves nothing")
		}
		want := "no TLSA look-up: the address records of mx.plain.example are not DNSSEC-secure"
		if h := ex.Hosts[0]; !strings.Contains(h.TLSASource, want) || strings.Contains(h.TLSASource, "asked") {
			t.Errorf("TLSA source %q", h.TLSASource)
		}
		if text := ex.String(); !strings.Contains(text, want) || strings.Contains(text, "_25._tcp") {
			t.Errorf("explanation text:\n%s", text)
		}
	})
	ex, _ = c.Explain(t.Context(), "nowhere.secure.example")
	if ex.Err == nil || !strings.Contains(ex.String(), "not deliverable") {
		t.Errorf("NXDOMAIN explained as %+v", ex)
	}
	// A name Deliver would refuse is explained as refused, before any
	// look-up, with the rule it breaks; U+212A is read by IDNA's mapping.
	before := dw.w.DNS.TotalQueries()
	for _, bad := range []string{"secure..example", "secure.example\r\nRCPT TO:<x@y>", strings.Repeat("a", 64) + ".example"} {
		ex, _ := c.Explain(t.Context(), bad)
		if de := asError(ex.Err); de == nil || de.Temporary || de.Code != 550 {
			t.Errorf("Explain(%q): %v, want a permanent 550", bad, ex.Err)
		}
	}
	if n := dw.w.DNS.TotalQueries(); n != before {
		t.Errorf("%d DNS questions asked for names that are not names", n-before)
	}
	if ex, _ := c.Explain(t.Context(), "s\u212Aecure.example"); ex.Domain != "skecure.example" {
		t.Errorf("U+212A explained as domain %q, want IDNA's mapping to k", ex.Domain)
	}
}

// ExplainMessage decides the hosts for a message as Deliver would:
// REQUIRETLS rules out hosts of an insecure MX answer (RFC 8689 §4.2.1) and
// "TLS-Required: No" relaxes the domain's own policies (§4.2.2).
func TestExplainMessage(t *testing.T) {
	dw := newDANEWorld(t, testenv.SMTPOptions{})
	if err := dw.w.DNS.Zone("plain.example.", testenv.Insecure); err != nil {
		t.Fatal(err)
	}
	dw.mx("plain.example", 10, "mx.plain.example", testenv.SMTPOptions{})
	c := dw.client(nil)
	explain := func(domain string, m *Message) *Explanation {
		t.Helper()
		ex, err := c.ExplainMessage(t.Context(), domain, m)
		if err != nil {
			t.Fatal(err)
		}
		if len(ex.Hosts) != 1 {
			t.Fatalf("explanation = %+v", ex)
		}
		return ex
	}
	t.Run("REQUIRETLS through a secure MX answer", func(t *testing.T) {
		h := explain("secure.example", &Message{RequireTLS: true}).Hosts[0]
		if h.Err != nil || !h.Requirement.REQUIRETLS || h.Requirement.Level != Authenticated {
			t.Errorf("host = %+v", h)
		}
	})
	t.Run("REQUIRETLS through an insecure MX answer", func(t *testing.T) {
		ex := explain("plain.example", &Message{RequireTLS: true})
		var de *Error
		if h := ex.Hosts[0]; !errors.As(h.Err, &de) || de.Temporary || de.Enhanced != (smtp.EnhancedCode{5, 7, 30}) {
			t.Errorf("host = %+v", h)
		}
		if !strings.Contains(ex.String(), "5.7.30") {
			t.Errorf("explanation text:\n%s", ex)
		}
		if h := explain("plain.example", nil).Hosts[0]; h.Err != nil {
			t.Errorf("without REQUIRETLS: %+v", h)
		}
	})
	t.Run("TLS-Required: No", func(t *testing.T) {
		h := explain("secure.example", &Message{TLSOptional: true}).Hosts[0]
		if h.Err != nil || h.Requirement.Level != Opportunistic || h.Requirement.Basis != BasisDANE {
			t.Errorf("host = %+v", h)
		}
	})
	t.Run("the message's next hop", func(t *testing.T) {
		ex := explain("plain.example", &Message{NextHop: "[mx.secure.example]"})
		if ex.NextHop != "[mx.secure.example]" || ex.PolicyDomain != "mx.secure.example" || ex.Hosts[0].Requirement == nil ||
			ex.Hosts[0].Requirement.Basis != BasisDANE {
			t.Errorf("explanation = %+v", ex)
		}
	})
	if len(dw.w.Dialer.Dialed()) != 0 || len(dw.rec.all()) != 0 {
		t.Error("ExplainMessage connected or recorded")
	}
}

func TestTrace(t *testing.T) {
	tw := newTestWorld(t, "insecure:trace.example.")
	tw.mx("trace.example", 10, "mx.trace.example", testenv.SMTPOptions{Certificate: tw.cert("mx.trace.example")})
	var mu sync.Mutex
	var lines []TraceLine
	c := tw.client(func(cfg *Config) {
		cfg.Trace = func(l TraceLine) {
			mu.Lock()
			lines = append(lines, l)
			mu.Unlock()
		}
	})
	want(t, deliver(t, c, msg("bob@trace.example"))[0], Delivered, "")
	mu.Lock()
	defer mu.Unlock()
	var sent, received int
	var sawStartTLS bool
	for _, l := range lines {
		if l.Host != "mx.trace.example" || !l.IP.IsValid() {
			t.Fatalf("line without its session: %+v", l)
		}
		if l.Sent {
			sent++
			sawStartTLS = sawStartTLS || l.Line == "STARTTLS"
		} else {
			received++
		}
	}
	if sent == 0 || received == 0 || !sawStartTLS {
		t.Errorf("trace: %d sent, %d received, STARTTLS %v", sent, received, sawStartTLS)
	}
}

// TestRequirementBesideANextHop is the review's finding 4: a requirement
// written beside a NextHop applies to the connection to the next hop. It
// was looked up under the next hop's own name, found nothing, and the mail
// went over unauthenticated TLS.
func TestRequirementBesideANextHop(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cert   func(tw *testWorld) *tls.Certificate
		status Status
	}{
		{"a certificate no one vouches for is refused", func(tw *testWorld) *tls.Certificate {
			c := tw.w.CA.MustLeaf(testenv.LeafOptions{SelfSigned: true}, "smart.example")
			return &c
		}, TemporaryFailure},
		{"a certificate for another name is refused", func(tw *testWorld) *tls.Certificate { return tw.cert("other.example") }, TemporaryFailure},
		{"a valid certificate for the next hop is delivered", func(tw *testWorld) *tls.Certificate { return tw.cert("smart.example") }, Delivered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tw := newTestWorld(t, "insecure:smart.example.", "insecure:dest.example.")
			sink, _ := tw.mx("", 0, "smart.example", testenv.SMTPOptions{Certificate: tc.cert(tw)})
			c := tw.client(func(cfg *Config) {
				cfg.Policy.Domains = map[string]DomainPolicy{"dest.example": {NextHop: "[smart.example]", RequireAuthenticated: true}}
			})
			r := deliver(t, c, msg("bob@dest.example"))[0]
			if r.Status != tc.status {
				t.Fatalf("status %v (%v), want %v", r.Status, r.Err, tc.status)
			}
			if r.Session.Requirement.Level != Authenticated || r.Session.Requirement.Basis != BasisLocal {
				t.Errorf("requirement %+v, want authenticated TLS by local policy", r.Session.Requirement)
			}
			if got := len(sink.Messages()); (tc.status == Delivered) != (got == 1) {
				t.Errorf("%d messages at the next hop", got)
			}
		})
	}
}
