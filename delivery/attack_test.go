package delivery

import (
	"crypto/tls"
	"testing"

	"github.com/miekg/dns"
	"github.com/sealpost/sealpost/internal/testenv"
	"github.com/sealpost/sealpost/tlsrpt"
)

// TestAttackMatrix runs issue 6's attack matrix end to end: each case
// builds its world, delivers one message, and checks both the recipient's
// outcome and what TLS-RPT recorded. Cases that need a peek at more detail
// have their own tests (TestDANE, TestMTASTS, TestREQUIRETLS).
func TestAttackMatrix(t *testing.T) {
	type expect struct {
		status   Status
		enhanced string
		// policy and result are the TLS-RPT record of the one session
		// expected; policy "" expects none.
		policy tlsrpt.PolicyType
		result tlsrpt.ResultType
	}
	testingPolicy := "version: STSv1\nmode: testing\nmx: mx.sts.example\nmax_age: 86400\n"
	tests := []struct {
		name string
		// setup builds the world and returns the recipient.
		setup func(t *testing.T) (*testWorld, *Message)
		want  expect
	}{
		{"STARTTLS stripped under DANE", func(t *testing.T) (*testWorld, *Message) {
			dw := newDANEWorld(t, testenv.SMTPOptions{})
			if _, err := dw.w.Attack(dw.ip, testenv.AttackerOptions{Mode: testenv.StripSTARTTLS}); err != nil {
				t.Fatal(err)
			}
			return dw.testWorld, msg("bob@secure.example")
		}, expect{TemporaryFailure, "4.7.10", tlsrpt.PolicyTypeTLSA, tlsrpt.ResultSTARTTLSNotSupported}},
		{"STARTTLS stripped under MTA-STS", func(t *testing.T) (*testWorld, *Message) {
			tw, _, ip := stsWorld(t, enforcePolicy, testenv.SMTPOptions{})
			if _, err := tw.w.Attack(ip, testenv.AttackerOptions{Mode: testenv.StripSTARTTLS}); err != nil {
				t.Fatal(err)
			}
			return tw, msg("bob@sts.example")
		}, expect{TemporaryFailure, "4.7.10", tlsrpt.PolicyTypeSTS, tlsrpt.ResultSTARTTLSNotSupported}},
		{"certificate for another name", func(t *testing.T) (*testWorld, *Message) {
			tw := newTestWorld(t)
			cert := tw.w.CA.MustLeaf(testenv.LeafOptions{}, "attacker.example")
			stsWorldWithCA(t, tw, enforcePolicy, testenv.SMTPOptions{Certificate: &cert})
			return tw, msg("bob@sts.example")
		}, expect{TemporaryFailure, "4.7.5", tlsrpt.PolicyTypeSTS, tlsrpt.ResultCertificateHostMismatch}},
		{"expired certificate", func(t *testing.T) (*testWorld, *Message) {
			tw := newTestWorld(t)
			cert := tw.w.CA.MustLeaf(testenv.LeafOptions{Expired: true}, "mx.sts.example")
			stsWorldWithCA(t, tw, enforcePolicy, testenv.SMTPOptions{Certificate: &cert})
			return tw, msg("bob@sts.example")
		}, expect{TemporaryFailure, "4.7.5", tlsrpt.PolicyTypeSTS, tlsrpt.ResultCertificateExpired}},
		{"self-signed certificate", func(t *testing.T) (*testWorld, *Message) {
			tw := newTestWorld(t)
			cert := tw.w.CA.MustLeaf(testenv.LeafOptions{SelfSigned: true}, "mx.sts.example")
			stsWorldWithCA(t, tw, enforcePolicy, testenv.SMTPOptions{Certificate: &cert})
			return tw, msg("bob@sts.example")
		}, expect{TemporaryFailure, "4.7.5", tlsrpt.PolicyTypeSTS, tlsrpt.ResultCertificateNotTrusted}},
		{"TLSA mismatch", func(t *testing.T) (*testWorld, *Message) {
			other := tlsLeaf(t)
			return newDANEWorld(t, testenv.SMTPOptions{Certificate: &other}).testWorld, msg("bob@secure.example")
		}, expect{TemporaryFailure, "4.7.5", tlsrpt.PolicyTypeTLSA, tlsrpt.ResultValidationFailure}},
		{"bogus DNSSEC on the TLSA records", func(t *testing.T) (*testWorld, *Message) {
			dw := newDANEWorld(t, testenv.SMTPOptions{})
			dw.w.DNS.SetFault("_25._tcp.mx.secure.example", dns.TypeTLSA, testenv.FaultBogus)
			return dw.testWorld, msg("bob@secure.example")
		}, expect{TemporaryFailure, "4.4.3", tlsrpt.PolicyTypeTLSA, tlsrpt.ResultDNSSECInvalid}},
		{"bogus DNSSEC on the MX records", func(t *testing.T) (*testWorld, *Message) {
			dw := newDANEWorld(t, testenv.SMTPOptions{})
			dw.w.DNS.SetSecurity("secure.example.", testenv.Bogus)
			return dw.testWorld, msg("bob@secure.example")
		}, expect{TemporaryFailure, "4.4.3", "", ""}},
		{"TLSA look-up SERVFAIL", func(t *testing.T) (*testWorld, *Message) {
			dw := newDANEWorld(t, testenv.SMTPOptions{})
			dw.w.DNS.SetFault("_25._tcp.mx.secure.example", dns.TypeTLSA, testenv.FaultServfail)
			return dw.testWorld, msg("bob@secure.example")
		}, expect{TemporaryFailure, "4.4.3", tlsrpt.PolicyTypeTLSA, tlsrpt.ResultDNSSECInvalid}},
		{"MX not in the MTA-STS policy", func(t *testing.T) (*testWorld, *Message) {
			tw, _, _ := stsWorld(t, "version: STSv1\nmode: enforce\nmx: elsewhere.example\nmax_age: 86400\n", testenv.SMTPOptions{})
			return tw, msg("bob@sts.example")
		}, expect{TemporaryFailure, "4.4.8", tlsrpt.PolicyTypeSTS, tlsrpt.ResultValidationFailure}},
		{"TLS 1.1 only under MTA-STS", func(t *testing.T) (*testWorld, *Message) {
			tw, _, _ := stsWorld(t, enforcePolicy, testenv.SMTPOptions{MinTLSVersion: tls.VersionTLS10, MaxTLSVersion: tls.VersionTLS11})
			return tw, msg("bob@sts.example")
		}, expect{TemporaryFailure, "4.7.5", tlsrpt.PolicyTypeSTS, tlsrpt.ResultValidationFailure}},
		{"MTA-STS testing with a bad certificate: delivered, reported", func(t *testing.T) (*testWorld, *Message) {
			tw := newTestWorld(t)
			cert := tw.w.CA.MustLeaf(testenv.LeafOptions{}, "attacker.example")
			stsWorldWithCA(t, tw, testingPolicy, testenv.SMTPOptions{Certificate: &cert})
			return tw, msg("bob@sts.example")
		}, expect{Delivered, "", tlsrpt.PolicyTypeSTS, tlsrpt.ResultCertificateHostMismatch}},
		{"no policy at all: delivered opportunistically", func(t *testing.T) (*testWorld, *Message) {
			tw := newTestWorld(t, "insecure:plain.example.")
			tw.mx("plain.example", 10, "mx.plain.example", testenv.SMTPOptions{Certificate: tw.cert("whatever.invalid")})
			return tw, msg("bob@plain.example")
		}, expect{Delivered, "", tlsrpt.PolicyTypeNoPolicyFound, ""}},
		{"REQUIRETLS to a server without it", func(t *testing.T) (*testWorld, *Message) {
			m := msg("bob@secure.example")
			m.RequireTLS = true
			return newDANEWorld(t, testenv.SMTPOptions{}).testWorld, m
		}, expect{PermanentFailure, "5.7.30", tlsrpt.PolicyTypeTLSA, ""}},
		{"null MX", func(t *testing.T) (*testWorld, *Message) {
			tw := newTestWorld(t, "nullmx.example.")
			if err := tw.w.DNS.Add("nullmx.example. 300 IN MX 0 ."); err != nil {
				t.Fatal(err)
			}
			return tw, msg("bob@nullmx.example")
		}, expect{PermanentFailure, "5.1.10", "", ""}},
		{"one dead MX and one good one", func(t *testing.T) (*testWorld, *Message) {
			tw := newTestWorld(t, "insecure:two.example.")
			_, dead := tw.mx("two.example", 10, "mx1.two.example", testenv.SMTPOptions{})
			tw.w.Dialer.Refuse(dead + ":25")
			tw.mx("two.example", 20, "mx2.two.example", testenv.SMTPOptions{Certificate: tw.cert("mx2.two.example")})
			return tw, msg("bob@two.example")
		}, expect{Delivered, "", tlsrpt.PolicyTypeNoPolicyFound, ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tw, m := tc.setup(t)
			c := tw.client(nil)
			res := deliver(t, c, m)
			want(t, res[0], tc.want.status, tc.want.enhanced)
			if tc.want.policy == "" {
				if recs := tw.rec.all(); len(recs) != 0 {
					t.Errorf("sessions recorded: %+v", recs)
				}
				return
			}
			wantFailure(t, tw.only(), tc.want.policy, tc.want.result)
		})
	}
}
