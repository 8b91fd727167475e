package delivery

import (
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"
	"github.com/sealpost/sealpost/internal/testenv"
	"github.com/sealpost/sealpost/tlsrpt"
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

// stsWithDANEHost is sts.example (unsigned) publishing an MTA-STS policy,
// its MX RRset naming mx.<hostZone>, a host in a signed zone whose "3 1 1"
// TLSA record pins the sink's key. When the policy does not list that
// host, the MX answer is what an on-path attacker forges: the unsigned
// RRset now names a server of his, in a zone of his that he signs.
func stsWithDANEHost(t *testing.T, policy, hostZone string) (*testWorld, *testenv.SMTPServer) {
	tw := newTestWorld(t, "insecure:sts.example.", hostZone+".")
	host := "mx." + hostZone
	cert := tw.w.CA.MustLeaf(testenv.LeafOptions{SelfSigned: true}, host)
	sink, _ := tw.mx("sts.example", 10, host, testenv.SMTPOptions{Certificate: &cert})
	if err := tw.w.PublishTLSA(host, cert); err != nil {
		t.Fatal(err)
	}
	if err := tw.w.PublishSTS("sts.example", "20240101", policy); err != nil {
		t.Fatal(err)
	}
	return tw, sink
}

// DANE authenticates the server a host name leads to, not that the domain
// chose that host: with an insecure MX RRset, the MTA-STS policy's mx
// patterns are all that binds the host to the domain. An attacker who
// forges the unsigned MX answer to name his own DANE-signed host must not
// get past an enforced policy because DANE "takes precedence".
func TestDANEHostOfAnInsecureMXMustMatchTheMTASTSPolicy(t *testing.T) {
	t.Run("enforce: forged MX naming the attacker's DANE host is refused", func(t *testing.T) {
		tw, evil := stsWithDANEHost(t, enforcePolicy, "evil.example")
		c := tw.client(nil)
		want(t, deliver(t, c, msg("bob@sts.example"))[0], TemporaryFailure, "4.4.8")
		if evil.Connections() != 0 {
			t.Error("connected to a host the MTA-STS policy does not list")
		}
		rec := tw.only()
		wantFailure(t, rec, tlsrpt.PolicyTypeSTS, tlsrpt.ResultValidationFailure)
		if rec.Failure.FailureReasonCode != reasonMXNotInPolicy {
			t.Errorf("failure = %+v", rec.Failure)
		}
	})
	t.Run("enforce: a listed DANE host is still authenticated by DANE", func(t *testing.T) {
		policy := "version: STSv1\nmode: enforce\nmx: mx.dane.example\nmax_age: 86400\n"
		tw, sink := stsWithDANEHost(t, policy, "dane.example")
		c := tw.client(nil)
		res := deliver(t, c, msg("bob@sts.example"))
		want(t, res[0], Delivered, "")
		// The self-signed certificate would fail the WebPKI: DANE alone
		// judges it (RFC 8461 §2).
		if s := res[0].Session; s.Auth != DANEEE || s.Requirement.Basis != BasisDANE || !s.Requirement.STSMatch {
			t.Errorf("session = %+v", s)
		}
		if len(sink.Messages()) != 1 {
			t.Error("not delivered")
		}
	})
	t.Run("testing: an unlisted DANE host is used", func(t *testing.T) {
		policy := "version: STSv1\nmode: testing\nmx: mx.sts.example\nmax_age: 86400\n"
		tw, sink := stsWithDANEHost(t, policy, "dane.example")
		c := tw.client(nil)
		want(t, deliver(t, c, msg("bob@sts.example"))[0], Delivered, "")
		if len(sink.Messages()) != 1 {
			t.Error("not delivered")
		}
	})
	t.Run("secure MX: DANE alone decides", func(t *testing.T) {
		// A signed MX RRset cannot be forged: the domain chose the host,
		// and MTA-STS is not applied to a DANE host (RFC 8461 §2).
		tw := newTestWorld(t, "signed.example.")
		cert := tw.w.CA.MustLeaf(testenv.LeafOptions{SelfSigned: true}, "mx.signed.example")
		sink, _ := tw.mx("signed.example", 10, "mx.signed.example", testenv.SMTPOptions{Certificate: &cert})
		if err := tw.w.PublishTLSA("mx.signed.example", cert); err != nil {
			t.Fatal(err)
		}
		if err := tw.w.PublishSTS("signed.example", "1", "version: STSv1\nmode: enforce\nmx: other.signed.example\nmax_age: 86400\n"); err != nil {
			t.Fatal(err)
		}
		c := tw.client(nil)
		want(t, deliver(t, c, msg("bob@signed.example"))[0], Delivered, "")
		if len(sink.Messages()) != 1 {
			t.Error("not delivered")
		}
	})
}

// The operator's local rules survive a "TLS-Required: No" message (only
// the recipient domain's own policies are relaxed, RFC 8689 §4.2.2): a
// domain the operator reaches only through DANE-authenticated hosts must
// not get such a message in plaintext after an attacker strips STARTTLS,
// nor over TLS to an attacker's certificate.
func TestDANEOnlySurvivesTLSRequiredNo(t *testing.T) {
	for _, mode := range []testenv.AttackMode{testenv.StripSTARTTLS, testenv.InterceptTLS} {
		t.Run(mode.String(), func(t *testing.T) {
			dw := newDANEWorld(t, testenv.SMTPOptions{})
			att, err := dw.w.Attack(dw.ip, testenv.AttackerOptions{Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			c := dw.client(func(cfg *Config) {
				cfg.Policy.Domains = map[string]DomainPolicy{"secure.example": {DANEOnly: true}}
			})
			m := msg("bob@secure.example")
			m.TLSOptional = true
			want(t, deliver(t, c, m)[0], TemporaryFailure, "")
			if att.Transactions() != 0 || len(dw.sink.Messages()) != 0 {
				t.Error("the message went through the attacker")
			}
		})
	}
	t.Run("without an attacker it is delivered, authenticated", func(t *testing.T) {
		dw := newDANEWorld(t, testenv.SMTPOptions{})
		c := dw.client(func(cfg *Config) {
			cfg.Policy.Domains = map[string]DomainPolicy{"secure.example": {DANEOnly: true}}
		})
		m := msg("bob@secure.example")
		m.TLSOptional = true
		res := deliver(t, c, m)
		want(t, res[0], Delivered, "")
		if res[0].Session.Auth != DANEEE {
			t.Errorf("session = %+v", res[0].Session)
		}
	})
}

// A 421 from the first host moves the message to the next host of the
// domain only under that host's own requirement: an enforced MTA-STS
// policy holds for every host, so a backup host showing an attacker's
// certificate does not get the message.
func TestA421DoesNotRelaxTheNextHost(t *testing.T) {
	tw := newTestWorld(t, "insecure:sts.example.")
	first, _ := tw.mx("sts.example", 10, "mx.sts.example", testenv.SMTPOptions{Certificate: tw.cert("mx.sts.example"),
		MailReply: func(string, *smtp.MailOptions) *smtp.SMTPError {
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "shutting down"}
		}})
	_, ip := tw.mx("sts.example", 20, "b.backup.sts.example", testenv.SMTPOptions{Certificate: tw.cert("b.backup.sts.example")})
	att, err := tw.w.Attack(ip, testenv.AttackerOptions{Mode: testenv.InterceptTLS})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.w.PublishSTS("sts.example", "1", enforcePolicy); err != nil {
		t.Fatal(err)
	}
	c := tw.client(nil)
	want(t, deliver(t, c, msg("bob@sts.example"))[0], TemporaryFailure, "")
	if first.Connections() == 0 {
		t.Error("the first host was not tried")
	}
	if att.Connections() == 0 || att.Transactions() != 0 {
		t.Errorf("attacker: %d connections, %d transactions; want the backup tried and refused", att.Connections(), att.Transactions())
	}
}

// A cached MTA-STS policy in enforce mode survives an attacker who forges
// the unsigned _mta-sts TXT record (a new id, or none at all) and blocks
// the policy fetch, then strips STARTTLS (RFC 8461 §5.1, §10.2): the
// delivery still refuses the downgraded session.
func TestCachedMTASTSPolicySurvivesAForgedTXTRecord(t *testing.T) {
	forgeries := []struct {
		name  string
		forge func(w *testenv.World)
	}{
		{"new id, fetch blocked", func(w *testenv.World) {
			w.DNS.Remove("_mta-sts.sts.example.", dns.TypeTXT)
			if err := w.DNS.Add(`_mta-sts.sts.example. 300 IN TXT "v=STSv1; id=forged"`); err != nil {
				t.Fatal(err)
			}
			w.Policies.Set("sts.example", testenv.PolicyResponse{Status: 404})
		}},
		{"record removed", func(w *testenv.World) {
			w.DNS.Remove("_mta-sts.sts.example.", dns.TypeTXT)
		}},
	}
	for _, f := range forgeries {
		t.Run(f.name, func(t *testing.T) {
			tw, sink, ip := stsWorld(t, enforcePolicy, testenv.SMTPOptions{})
			c := tw.client(func(cfg *Config) {
				cfg.IdleTimeout = -1
				cfg.Resolver.CacheSize = -1 // every look-up sees the forgery
			})
			want(t, deliver(t, c, msg("bob@sts.example"))[0], Delivered, "")
			txt := tw.w.DNS.Queries("_mta-sts.sts.example.", dns.TypeTXT)
			f.forge(tw.w)
			if _, err := tw.w.Attack(ip, testenv.AttackerOptions{Mode: testenv.StripSTARTTLS}); err != nil {
				t.Fatal(err)
			}
			res := deliver(t, c, msg("bob@sts.example"))
			want(t, res[0], TemporaryFailure, "4.7.10")
			if res[0].Session.Requirement.Basis != BasisMTASTS {
				t.Errorf("requirement = %+v", res[0].Session.Requirement)
			}
			if n := len(sink.Messages()); n != 1 {
				t.Errorf("sink got %d messages, want only the first", n)
			}
			if tw.w.DNS.Queries("_mta-sts.sts.example.", dns.TypeTXT) == txt {
				t.Error("the forged TXT record was never looked up; the test proves nothing")
			}
		})
	}
}

// A domain without MX records whose name is a CNAME (RFC 5321 §5.1: its
// own address records are used) keeps its DANE protection: the TLSA base
// domain is found from the initial name, whose secure CNAME makes it the
// base domain even when the chain ends in an unsigned zone (RFC 7672
// §2.2.2, §2.2.3). Looking TLSA records up from the CNAME target alone
// finds an unsigned host, no DANE, and hands an attacker who strips
// STARTTLS the message in plaintext.
func TestImplicitMXThroughACNAMEKeepsDANE(t *testing.T) {
	setup := func(t *testing.T) (*testWorld, *testenv.SMTPServer, string) {
		tw := newTestWorld(t, "signed.example.", "insecure:plain.example.")
		cert := tw.w.CA.MustLeaf(testenv.LeafOptions{SelfSigned: true}, "host.plain.example")
		sink, ip := tw.mx("", 0, "host.plain.example", testenv.SMTPOptions{Certificate: &cert})
		if err := tw.w.DNS.Add("mail.signed.example. 300 IN CNAME host.plain.example."); err != nil {
			t.Fatal(err)
		}
		if err := tw.w.PublishTLSA("mail.signed.example", cert); err != nil {
			t.Fatal(err)
		}
		return tw, sink, ip
	}
	t.Run("authenticated by the TLSA records of the initial name", func(t *testing.T) {
		tw, _, _ := setup(t)
		c := tw.client(nil)
		res := deliver(t, c, msg("bob@mail.signed.example"))
		want(t, res[0], Delivered, "")
		if s := res[0].Session; s.Auth != DANEEE || s.Requirement.Basis != BasisDANE {
			t.Errorf("session = %+v", s)
		}
	})
	t.Run("STARTTLS stripped", func(t *testing.T) {
		tw, sink, ip := setup(t)
		if _, err := tw.w.Attack(ip, testenv.AttackerOptions{Mode: testenv.StripSTARTTLS}); err != nil {
			t.Fatal(err)
		}
		c := tw.client(nil)
		want(t, deliver(t, c, msg("bob@mail.signed.example"))[0], TemporaryFailure, "4.7.10")
		if len(sink.Messages()) != 0 {
			t.Error("delivered in plaintext")
		}
	})
}

// LocalPolicy.DANEOnly is the operator's demand that a domain's mail be
// protected by DANE. With an insecure MX RRset that demand cannot be met
// (RFC 7672 §2.2.1, §6): an attacker who forges the answer names a host in
// a zone of his own, signed, with TLSA records pinning his own server. The
// host is refused as one without TLSA records is, and recorded as
// "dane-required" (RFC 8460 §4.3.2.1).
func TestDANEOnlyRefusesADANEHostOfAnInsecureMX(t *testing.T) {
	setup := func(t *testing.T) (*testWorld, *testenv.SMTPServer) {
		tw := newTestWorld(t, "insecure:plain.example.", "evil.example.")
		cert := tw.w.CA.MustLeaf(testenv.LeafOptions{SelfSigned: true}, "mx.evil.example")
		sink, _ := tw.mx("plain.example", 10, "mx.evil.example", testenv.SMTPOptions{Certificate: &cert})
		if err := tw.w.PublishTLSA("mx.evil.example", cert); err != nil {
			t.Fatal(err)
		}
		return tw, sink
	}
	t.Run("without DANEOnly the host is DANE-authenticated", func(t *testing.T) {
		// What makes the refusal below meaningful: the host passes DANE.
		tw, _ := setup(t)
		res := deliver(t, tw.client(nil), msg("bob@plain.example"))
		want(t, res[0], Delivered, "")
		if res[0].Session.Auth != DANEEE {
			t.Errorf("session = %+v", res[0].Session)
		}
	})
	t.Run("DANEOnly refuses it", func(t *testing.T) {
		tw, sink := setup(t)
		c := tw.client(func(cfg *Config) {
			cfg.Policy.Domains = map[string]DomainPolicy{"plain.example": {DANEOnly: true}}
		})
		res := deliver(t, c, msg("bob@plain.example"))
		want(t, res[0], TemporaryFailure, "4.7.5")
		if sink.Connections() != 0 || len(tw.w.Dialer.Dialed()) != 0 {
			t.Error("connected to a host named by an insecure MX answer")
		}
		rec := tw.only()
		wantFailure(t, rec, tlsrpt.PolicyTypeTLSA, tlsrpt.ResultDANERequired)
		if rec.Failure.FailureReasonCode != reasonMXInsecure {
			t.Errorf("failure = %+v", rec.Failure)
		}
	})
}
