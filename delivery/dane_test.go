package delivery

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/testenv"
	"github.com/sealpost/sealpost/sts"
	"github.com/sealpost/sealpost/tlsrpt"
)

// daneWorld has secure.example (signed) with one MX host, mx.secure.example,
// whose certificate is pinned by a "3 1 1" TLSA record.
type daneWorld struct {
	*testWorld
	sink *testenv.SMTPServer
	ip   string
	cert tls.Certificate
}

func newDANEWorld(t *testing.T, opts testenv.SMTPOptions) *daneWorld {
	tw := newTestWorld(t, "secure.example.")
	// The certificate names another host and is not from the test CA's
	// point of view relevant: DANE-EE checks neither (RFC 7672 §3.1.1).
	cert := tw.w.CA.MustLeaf(testenv.LeafOptions{SelfSigned: true}, "unrelated.invalid")
	if opts.Certificate == nil {
		opts.Certificate = &cert
	}
	sink, ip := tw.mx("secure.example", 10, "mx.secure.example", opts)
	if err := tw.w.PublishTLSA("mx.secure.example", cert); err != nil {
		t.Fatal(err)
	}
	return &daneWorld{testWorld: tw, sink: sink, ip: ip, cert: cert}
}

// only returns the one session recorded, failing otherwise.
func (tw *testWorld) only() tlsrpt.Session {
	tw.t.Helper()
	recs := tw.rec.all()
	if len(recs) != 1 {
		tw.t.Fatalf("%d TLS-RPT sessions recorded, want 1: %+v", len(recs), recs)
	}
	return recs[0]
}

func wantFailure(t *testing.T, s tlsrpt.Session, typ tlsrpt.PolicyType, rt tlsrpt.ResultType) {
	t.Helper()
	if s.Policy.Type != typ {
		t.Errorf("policy type %s, want %s", s.Policy.Type, typ)
	}
	if rt == "" {
		if s.Failure != nil {
			t.Errorf("failure %+v recorded for a successful session", s.Failure)
		}
		return
	}
	if s.Failure == nil || s.Failure.ResultType != rt {
		t.Fatalf("failure %+v, want result type %s", s.Failure, rt)
	}
	if s.Failure.ReceivingMXHostname == "" {
		t.Errorf("failure without receiving-mx-hostname: %+v", s.Failure)
	}
}

func TestDANE(t *testing.T) {
	t.Run("DANE-EE match authenticates the server", func(t *testing.T) {
		dw := newDANEWorld(t, testenv.SMTPOptions{})
		c := dw.client(nil)
		res := deliver(t, c, msg("bob@secure.example"))
		want(t, res[0], Delivered, "")
		s := res[0].Session
		if s.Auth != DANEEE || s.Requirement.Basis != BasisDANE || s.Requirement.Level != Authenticated {
			t.Errorf("session = %+v", s)
		}
		if m := dw.sink.Messages(); len(m) != 1 || m[0].TLS.ServerName != "mx.secure.example" {
			t.Errorf("SNI: %+v", m)
		}
		rec := dw.only()
		wantFailure(t, rec, tlsrpt.PolicyTypeTLSA, "")
		if len(rec.Policy.Strings) != 1 || rec.Policy.Strings[0][:6] != "3 1 1 " || !slices.Equal(rec.Policy.MXHosts, []string{"mx.secure.example"}) || rec.Policy.Domain != "secure.example" {
			t.Errorf("policy = %+v", rec.Policy)
		}
	})
	t.Run("TLSA mismatch is refused", func(t *testing.T) {
		other := tlsLeaf(t)
		dw := newDANEWorld(t, testenv.SMTPOptions{Certificate: &other})
		c := dw.client(nil)
		res := deliver(t, c, msg("bob@secure.example"))
		want(t, res[0], TemporaryFailure, "4.7.5")
		if len(dw.sink.Messages()) != 0 {
			t.Error("delivered")
		}
		wantFailure(t, dw.only(), tlsrpt.PolicyTypeTLSA, tlsrpt.ResultValidationFailure)
	})
	t.Run("STARTTLS stripped is refused", func(t *testing.T) {
		dw := newDANEWorld(t, testenv.SMTPOptions{})
		att, err := dw.w.Attack(dw.ip, testenv.AttackerOptions{Mode: testenv.StripSTARTTLS})
		if err != nil {
			t.Fatal(err)
		}
		c := dw.client(nil)
		res := deliver(t, c, msg("bob@secure.example"))
		want(t, res[0], TemporaryFailure, "4.7.10")
		if att.Transactions() != 0 || len(dw.sink.Messages()) != 0 {
			t.Error("the message went through the attacker")
		}
		wantFailure(t, dw.only(), tlsrpt.PolicyTypeTLSA, tlsrpt.ResultSTARTTLSNotSupported)
	})
	t.Run("intercepted TLS is refused", func(t *testing.T) {
		dw := newDANEWorld(t, testenv.SMTPOptions{})
		att, err := dw.w.Attack(dw.ip, testenv.AttackerOptions{Mode: testenv.InterceptTLS})
		if err != nil {
			t.Fatal(err)
		}
		c := dw.client(nil)
		res := deliver(t, c, msg("bob@secure.example"))
		want(t, res[0], TemporaryFailure, "4.7.5")
		if att.Transactions() != 0 {
			t.Error("the message went through the attacker")
		}
		wantFailure(t, dw.only(), tlsrpt.PolicyTypeTLSA, tlsrpt.ResultValidationFailure)
	})
	t.Run("TLSA look-up SERVFAIL makes the host unusable", func(t *testing.T) {
		dw := newDANEWorld(t, testenv.SMTPOptions{})
		dw.w.DNS.SetFault("_25._tcp.mx.secure.example", dns.TypeTLSA, testenv.FaultServfail)
		c := dw.client(nil)
		res := deliver(t, c, msg("bob@secure.example"))
		want(t, res[0], TemporaryFailure, "4.4.3")
		if len(dw.w.Dialer.Dialed()) != 0 {
			t.Error("the host was contacted")
		}
		rec := dw.only()
		wantFailure(t, rec, tlsrpt.PolicyTypeTLSA, tlsrpt.ResultDNSSECInvalid)
	})
	t.Run("bogus TLSA answer makes the host unusable", func(t *testing.T) {
		dw := newDANEWorld(t, testenv.SMTPOptions{})
		dw.w.DNS.SetFault("_25._tcp.mx.secure.example", dns.TypeTLSA, testenv.FaultBogus)
		c := dw.client(nil)
		res := deliver(t, c, msg("bob@secure.example"))
		want(t, res[0], TemporaryFailure, "4.4.3")
		wantFailure(t, dw.only(), tlsrpt.PolicyTypeTLSA, tlsrpt.ResultDNSSECInvalid)
	})
	t.Run("bogus MX answer is a temporary failure", func(t *testing.T) {
		dw := newDANEWorld(t, testenv.SMTPOptions{})
		dw.w.DNS.SetSecurity("secure.example.", testenv.Bogus)
		c := dw.client(nil)
		res := deliver(t, c, msg("bob@secure.example"))
		want(t, res[0], TemporaryFailure, "4.4.3")
		if len(dw.w.Dialer.Dialed()) != 0 || len(dw.rec.all()) != 0 {
			t.Error("a host was contacted, or a session recorded")
		}
	})
	t.Run("no usable TLSA record: TLS required, any certificate", func(t *testing.T) {
		tw := newTestWorld(t, "secure.example.")
		tw.mx("secure.example", 10, "mx.secure.example", testenv.SMTPOptions{Certificate: tw.cert("unrelated.invalid")})
		if err := tw.w.DNS.Add("_25._tcp.mx.secure.example. 300 IN TLSA 1 1 1 " + hex64('a')); err != nil {
			t.Fatal(err)
		}
		c := tw.client(nil)
		res := deliver(t, c, msg("bob@secure.example"))
		want(t, res[0], Delivered, "")
		if s := res[0].Session; s.Auth != UnauthenticatedTLS || s.Requirement.Basis != BasisDANEUnusable || s.Requirement.Level != Encrypted {
			t.Errorf("session = %+v", s)
		}
		// RFC 8460 §4.3.3: the domain must hear that none of its TLSA
		// records could be used, though the mail went over TLS.
		wantFailure(t, tw.only(), tlsrpt.PolicyTypeTLSA, tlsrpt.ResultTLSAInvalid)
	})
	t.Run("no usable TLSA record and no STARTTLS is refused", func(t *testing.T) {
		tw := newTestWorld(t, "secure.example.")
		tw.mx("secure.example", 10, "mx.secure.example", testenv.SMTPOptions{})
		if err := tw.w.DNS.Add("_25._tcp.mx.secure.example. 300 IN TLSA 0 0 1 " + hex64('b')); err != nil {
			t.Fatal(err)
		}
		c := tw.client(nil)
		want(t, deliver(t, c, msg("bob@secure.example"))[0], TemporaryFailure, "4.7.10")
		wantFailure(t, tw.only(), tlsrpt.PolicyTypeTLSA, tlsrpt.ResultSTARTTLSNotSupported)
	})
	t.Run("TLS-Required: No delivers despite a mismatch, and reports it", func(t *testing.T) {
		other := tlsLeaf(t)
		dw := newDANEWorld(t, testenv.SMTPOptions{Certificate: &other})
		c := dw.client(nil)
		m := msg("bob@secure.example")
		m.TLSOptional = true
		res := deliver(t, c, m)
		want(t, res[0], Delivered, "")
		if res[0].Session.Auth != UnauthenticatedTLS || res[0].Session.TLSVersion == 0 {
			t.Errorf("session = %+v", res[0].Session)
		}
		wantFailure(t, dw.only(), tlsrpt.PolicyTypeTLSA, tlsrpt.ResultValidationFailure)
		var ve *dane.VerifyError
		if !errors.As(res[0].Session.CheckErr, &ve) || ve.ResultType() != string(tlsrpt.ResultValidationFailure) {
			t.Errorf("CheckErr = %v, want a *dane.VerifyError", res[0].Session.CheckErr)
		}
	})
	t.Run("TLS-RPT report mail is delivered despite a mismatch and not recorded", func(t *testing.T) {
		other := tlsLeaf(t)
		dw := newDANEWorld(t, testenv.SMTPOptions{Certificate: &other})
		c := dw.client(nil)
		m := msg("bob@secure.example")
		m.TLSReport = true
		want(t, deliver(t, c, m)[0], Delivered, "")
		if n := len(dw.rec.all()); n != 0 {
			t.Errorf("%d sessions recorded", n)
		}
	})
	t.Run("operator override with a reason loosens DANE", func(t *testing.T) {
		other := tlsLeaf(t)
		dw := newDANEWorld(t, testenv.SMTPOptions{Certificate: &other})
		c := dw.client(func(cfg *Config) {
			cfg.Policy.Domains = map[string]DomainPolicy{"secure.example": {Override: Override{IgnoreDANE: true, Reason: "ticket 42: stale TLSA after key roll"}}}
		})
		want(t, deliver(t, c, msg("bob@secure.example"))[0], Delivered, "")
		// Without a reason the override would never apply: NewClient
		// refuses it rather than let the operator believe it does.
		noReason := Config{Policy: LocalPolicy{Domains: map[string]DomainPolicy{"secure.example": {Override: Override{IgnoreDANE: true}}}}}
		var ce *ConfigError
		if _, err := NewClient(noReason); !errors.As(err, &ce) {
			t.Errorf("NewClient with a reason-less override: %v, want a *ConfigError", err)
		}
	})
}

// tlsLeaf returns a self-signed certificate no TLSA record pins.
func tlsLeaf(t *testing.T) tls.Certificate {
	t.Helper()
	ca, err := testenv.NewCA("other")
	if err != nil {
		t.Fatal(err)
	}
	return ca.MustLeaf(testenv.LeafOptions{SelfSigned: true}, "mx.secure.example")
}

func hex64(c byte) string {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

// An Override that ignores a domain's TLSA records drops DANE only: the
// domain's MTA-STS policy (or the operator's preloaded one) then holds its
// hosts as it holds hosts without TLSA records. Without such a policy the
// ignored records are still checked and reported, unenforced.
func TestIgnoreDANEKeepsMTASTS(t *testing.T) {
	const policy = "version: STSv1\nmode: enforce\nmx: mx.secure.example\nmax_age: 86400\n"
	preloaded, err := sts.ParsePolicy(policy)
	if err != nil {
		t.Fatal(err)
	}
	ignore := Override{IgnoreDANE: true, Reason: "ticket 42: stale TLSA after key roll"}
	// setup publishes TLSA records that pin no certificate the server has
	// (the broken records the override is for) and, with publish, an
	// enforced MTA-STS policy listing the host.
	setup := func(t *testing.T, webPKI, publish bool) (*testWorld, *testenv.SMTPServer) {
		tw := newTestWorld(t, "secure.example.")
		cert := tw.cert("mx.secure.example")
		if !webPKI {
			other := tlsLeaf(t)
			cert = &other
		}
		sink, _ := tw.mx("secure.example", 10, "mx.secure.example", testenv.SMTPOptions{Certificate: cert})
		if err := tw.w.PublishTLSA("mx.secure.example", tlsLeaf(t)); err != nil {
			t.Fatal(err)
		}
		if publish {
			if err := tw.w.PublishSTS("secure.example", "1", policy); err != nil {
				t.Fatal(err)
			}
		}
		return tw, sink
	}
	for _, tc := range []struct {
		name    string
		publish bool
		local   DomainPolicy
		basis   Basis
	}{
		{"published policy", true, DomainPolicy{Override: ignore}, BasisMTASTS},
		{"preloaded policy", false, DomainPolicy{Override: ignore, Preloaded: preloaded}, BasisPreloaded},
	} {
		t.Run(tc.name+": a WebPKI certificate authenticates the server", func(t *testing.T) {
			tw, _ := setup(t, true, tc.publish)
			c := tw.client(func(cfg *Config) { cfg.Policy.Domains = map[string]DomainPolicy{"secure.example": tc.local} })
			res := deliver(t, c, msg("bob@secure.example"))
			want(t, res[0], Delivered, "")
			if s := res[0].Session; s.Auth != WebPKI || s.Requirement.Basis != tc.basis || s.Requirement.Level != Authenticated {
				t.Errorf("session = %+v", s)
			}
		})
		t.Run(tc.name+": a certificate the WebPKI does not trust is refused", func(t *testing.T) {
			tw, sink := setup(t, false, tc.publish)
			c := tw.client(func(cfg *Config) { cfg.Policy.Domains = map[string]DomainPolicy{"secure.example": tc.local} })
			want(t, deliver(t, c, msg("bob@secure.example"))[0], TemporaryFailure, "4.7.5")
			if len(sink.Messages()) != 0 {
				t.Error("delivered to a server nothing authenticated")
			}
		})
	}
	t.Run("no MTA-STS policy: the records are checked and reported", func(t *testing.T) {
		tw, _ := setup(t, false, false)
		c := tw.client(func(cfg *Config) {
			cfg.Policy.Domains = map[string]DomainPolicy{"secure.example": {Override: ignore}}
		})
		res := deliver(t, c, msg("bob@secure.example"))
		want(t, res[0], Delivered, "")
		if s := res[0].Session; s.Auth != UnauthenticatedTLS || s.Requirement.Basis != BasisDANE {
			t.Errorf("session = %+v", s)
		}
		wantFailure(t, tw.only(), tlsrpt.PolicyTypeTLSA, tlsrpt.ResultValidationFailure)
	})
}

// A next hop on a port other than 25 is held to the TLSA records of that
// port: the owner name carries it (RFC 6698 §3), and the records at
// _25._tcp are about another service of the host.
func TestNextHopPortTLSA(t *testing.T) {
	// setup starts the smart host relay.signed.example, reached on 587,
	// with a self-signed certificate; pin587 publishes a record pinning it
	// at _587._tcp; pin25 one pinning another key at _25._tcp.
	setup := func(t *testing.T, pin587, pin25 bool) (*testWorld, *testenv.SMTPServer) {
		tw := newTestWorld(t, "signed.example.")
		cert := tw.w.CA.MustLeaf(testenv.LeafOptions{SelfSigned: true}, "relay.signed.example")
		sink, ip := tw.mx("", 0, "relay.signed.example", testenv.SMTPOptions{Certificate: &cert})
		to, _ := tw.w.Dialer.Target(ip + ":25")
		tw.w.Dialer.Route(ip+":587", to)
		if pin587 {
			sum := sha256.Sum256(cert.Leaf.RawSubjectPublicKeyInfo)
			if err := tw.w.DNS.Add("_587._tcp.relay.signed.example. 300 IN TLSA 3 1 1 " + hex.EncodeToString(sum[:])); err != nil {
				t.Fatal(err)
			}
		}
		if pin25 {
			if err := tw.w.PublishTLSA("relay.signed.example", tlsLeaf(t)); err != nil {
				t.Fatal(err)
			}
		}
		return tw, sink
	}
	send := func(t *testing.T, tw *testWorld) Result {
		m := msg("bob@far.example")
		m.NextHop = "[relay.signed.example]:587"
		return deliver(t, tw.client(nil), m)[0]
	}
	t.Run("records at _587._tcp authenticate the server", func(t *testing.T) {
		tw, sink := setup(t, true, true)
		res := send(t, tw)
		want(t, res, Delivered, "")
		if s := res.Session; s.Port != 587 || s.Auth != DANEEE || s.Requirement.Basis != BasisDANE ||
			!strings.Contains(s.Requirement.Reason, "_587._tcp.relay.signed.example") {
			t.Errorf("session = %+v", s)
		}
		if len(sink.Messages()) != 1 {
			t.Error("not delivered")
		}
	})
	t.Run("records at _25._tcp do not apply to port 587", func(t *testing.T) {
		tw, _ := setup(t, false, true)
		res := send(t, tw)
		want(t, res, Delivered, "")
		if s := res.Session; s.Requirement.Basis != NoPolicy || s.Requirement.DANE == nil || s.Requirement.DANE.Outcome != dane.NotApplicable {
			t.Errorf("session = %+v", s)
		}
		if n := tw.w.DNS.Queries("_587._tcp.relay.signed.example.", dns.TypeTLSA); n == 0 {
			t.Error("_587._tcp was not asked")
		}
	})
}
