package delivery

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/testenv"
)

// TestDANESurvivesAFailingValidatingResolver is the review's finding
// end to end: with the everyday resolver list (a validating resolver,
// then one that is not trusted), an attacker who makes the validating
// resolver fail a question DANE depends on, answers the untrusted
// resolver's copy of it and strips STARTTLS must not get the message.
// Before the fix the untrusted resolver's "no TLSA" read as insecure, DANE
// did not apply, and the message went in the clear.
func TestDANESurvivesAFailingValidatingResolver(t *testing.T) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"secure.example", dns.TypeMX},
		{"mx.secure.example", dns.TypeA},
		{"_25._tcp.mx.secure.example", dns.TypeTLSA},
	} {
		for _, fault := range []testenv.Fault{testenv.FaultServfail, testenv.FaultRefused, testenv.FaultTimeout} {
			t.Run(dns.TypeToString[q.qtype]+"/"+fault.String(), func(t *testing.T) {
				dw := newDANEWorld(t, testenv.SMTPOptions{})
				dw.w.DNS.SetFault(q.name, q.qtype, fault)
				// The untrusted resolver: the same names, unsigned, no TLSA.
				other, err := testenv.StartDNS()
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(other.Close)
				if err := other.Zone("secure.example.", testenv.Insecure,
					"secure.example. 300 IN MX 10 mx.secure.example.",
					"mx.secure.example. 300 IN A "+dw.ip); err != nil {
					t.Fatal(err)
				}
				att, err := dw.w.Attack(dw.ip, testenv.AttackerOptions{Mode: testenv.StripSTARTTLS})
				if err != nil {
					t.Fatal(err)
				}
				c := dw.client(func(cfg *Config) {
					cfg.Resolver = &dane.Resolver{Servers: []dane.Server{
						{Addr: dw.w.DNS.Addr},
						{Addr: other.Addr, Trust: dane.TrustNever},
					}, Timeout: 200 * time.Millisecond, Attempts: 1, FailureTTL: -1}
				})
				res := deliver(t, c, msg("bob@secure.example"))
				if res[0].Status != TemporaryFailure {
					t.Errorf("status %v (%v), want a temporary failure", res[0].Status, res[0].Err)
				}
				if att.Transactions() != 0 || len(dw.sink.Messages()) != 0 {
					t.Error("the message went through the attacker")
				}
				if n := other.TotalQueries(); n != 0 {
					t.Errorf("the untrusted resolver was asked %d questions", n)
				}
				for _, s := range dw.rec.all() {
					if s.Failure != nil && s.Failure.ResultType == "no-policy-found" || s.Policy.Type == "no-policy-found" {
						t.Errorf("TLS-RPT recorded %+v: the domain has a policy", s)
					}
				}
			})
		}
	}
}

// TestNewClientWarnsOfIgnoredResolvers: NewClient says, once and plainly,
// which configured resolvers are never asked.
func TestNewClientWarnsOfIgnoredResolvers(t *testing.T) {
	var buf bytes.Buffer
	_, err := NewClient(Config{
		Hostname: "sender.example",
		Resolver: &dane.Resolver{Servers: []dane.Server{{Addr: "127.0.0.53"}, {Addr: "192.0.2.1"}}},
		Logger:   slog.New(slog.NewTextHandler(&buf, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "192.0.2.1:53") || strings.Count(out, "level=WARN") != 1 {
		t.Errorf("log = %q, want one warning naming 192.0.2.1:53", out)
	}
}

// TestUnsendableAddressesAreRefusedFirst: a recipient that cannot be
// written into RCPT TO fails at once with 5.1.3, before any DNS question
// or connection, while the good recipient beside it is delivered; a
// sender that cannot be written into MAIL FROM makes Deliver fail.
func TestUnsendableAddressesAreRefusedFirst(t *testing.T) {
	for _, bad := range []string{"<bob>@bad.example", "bob smith@bad.example", "bob@bad.example\r\nRCPT TO:<x@y>", "bob@bad.example>", "bob\n@bad.example"} {
		t.Run(strings.ToValidUTF8(bad, "?"), func(t *testing.T) {
			dw := newDANEWorld(t, testenv.SMTPOptions{})
			c := dw.client(nil)
			res := deliver(t, c, msg(bad, "bob@secure.example"))
			want(t, res[0], PermanentFailure, "5.1.3")
			want(t, res[1], Delivered, "")
			if n := dw.w.DNS.Queries("bad.example", dns.TypeMX); n != 0 {
				t.Errorf("%d MX questions for the bad address's domain", n)
			}
		})
	}
	dw := newDANEWorld(t, testenv.SMTPOptions{})
	m := msg("bob@secure.example")
	m.From = "a@sender.example>\r\nRCPT TO:<x@y"
	if _, err := dw.client(nil).Deliver(context.Background(), m); err == nil || !strings.Contains(err.Error(), "sender address") {
		t.Errorf("Deliver = %v, want the sender address refused", err)
	}
	if n := len(dw.w.Dialer.Dialed()); n != 0 {
		t.Errorf("%d connections for a message with a bad sender", n)
	}
}
