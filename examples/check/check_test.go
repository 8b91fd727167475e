package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sealpost/sealpost/internal/testenv"
)

// want is a finding a test expects: its area, subject and severity, and
// words its message must contain.
type want struct {
	area, subject string
	sev           Severity
	text          string
}

func (f want) matches(got Finding) bool {
	return got.Area == f.area && got.Subject == f.subject && got.Severity == f.sev && strings.Contains(got.Message, f.text)
}

// expect fails unless every wanted finding is in the report and every
// warning and error of the report is wanted.
func expect(t *testing.T, rep *Report, wants ...want) {
	t.Helper()
	used := make([]bool, len(rep.Findings))
	for _, w := range wants {
		found := false
		for i, f := range rep.Findings {
			if w.matches(f) {
				found, used[i] = true, true
			}
		}
		if !found {
			t.Errorf("missing finding: %s %s %s %q", w.area, w.subject, w.sev, w.text)
		}
	}
	for i, f := range rep.Findings {
		if !used[i] && f.Severity != OK {
			t.Errorf("unexpected finding: %s %s %s %q (fix %q)", f.Area, f.Subject, f.Severity, f.Message, f.Fix)
		}
	}
	if t.Failed() || testing.Verbose() {
		var b strings.Builder
		writeText(&b, rep, false)
		t.Logf("report:\n%s", b.String())
	}
}

func TestWellConfiguredDomain(t *testing.T) {
	w := newWorld(t)
	w.build(t, domainSetup{})
	rep := w.check(t, "good.example")
	expect(t, rep,
		want{AreaMX, "good.example", OK, "10 mx1.good.example, 20 mx2.good.example (DNSSEC-signed)"},
		want{AreaSTS, "_mta-sts.good.example", OK, "policy id 20240101"},
		want{AreaSTS, "mta-sts.good.example", OK, "mode enforce, max_age 604800 (7 days)"},
		want{AreaHosts, "mx1.good.example", OK, "STARTTLS with TLS 1.3; certificate valid for mx1.good.example"},
		want{AreaHosts, "mx2.good.example", OK, "STARTTLS with TLS 1.3"},
		want{AreaDANE, "_25._tcp.mx1.good.example", OK, "1 TLSA record (1 usable)"},
		want{AreaDANE, "mx1.good.example", OK, "certificate matches TLSA 3 1 1"},
		want{AreaDANE, "mx2.good.example", OK, "certificate matches TLSA 3 1 1"},
		want{AreaTLSRPT, "_smtp._tls.good.example", OK, "reports go to mailto:tlsrpt@good.example"},
		want{AreaSPF, "mta-sts.good.example", OK, `"v=spf1 -all"`},
	)
	if got := rep.Worst(); got != OK {
		t.Errorf("Worst = %v, want ok", got)
	}
}

// otherKeyTLSA is a "3 1 1" record for a key no host uses.
func otherKeyTLSA(t *testing.T, w *world) string {
	c := w.CA.MustLeaf(testenv.LeafOptions{}, "other.example")
	sum := sha256.Sum256(c.Leaf.RawSubjectPublicKeyInfo)
	return "3 1 1 " + hex.EncodeToString(sum[:])
}

// checkCase is one misconfiguration: how to build it and what the check
// must say about it (and nothing else worse than ok).
type checkCase struct {
	name  string
	setup func(t *testing.T, w *world) domainSetup
	want  []want
}

// runCases builds each case's good.example and checks it.
func runCases(t *testing.T, cases []checkCase) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.build(t, tt.setup(t, w))
			expect(t, w.check(t, "good.example"), tt.want...)
		})
	}
}

// TestMTASTS: the _mta-sts record, the policy, its host and the mx
// patterns (RFC 8461 §3, §4.1).
func TestMTASTS(t *testing.T) {
	enforceMX1 := "version: STSv1\nmode: enforce\nmax_age: 604800\nmx: mx1.good.example\n"
	runCases(t, []checkCase{
		{
			name: "policy does not cover an MX host",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Policy: enforceMX1}
			},
			want: []want{{AreaSTS, "mx2.good.example", Error, "not covered by the policy's mx patterns"}},
		},
		{
			name: "a comment line and text after an mx pattern: read, and the owner warned",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Policy: "# our policy\nversion: STSv1\nmode: enforce\nmax_age: 604800\nmx: mx1.good.example # primary\nmx: mx2.good.example\n"}
			},
			want: []want{
				{AreaSTS, "mta-sts.good.example", Warning, "policy line 1: a comment"},
				{AreaSTS, "mta-sts.good.example", Warning, `policy line 5: text "# primary" after the mx pattern mx1.good.example`},
			},
		},
		{
			name: "policy in testing mode not covering an MX host",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Policy: "version: STSv1\nmode: testing\nmax_age: 604800\nmx: mx1.good.example\n"}
			},
			want: []want{
				{AreaSTS, "mta-sts.good.example", Warning, "mode testing"},
				{AreaSTS, "mx2.good.example", Warning, "not covered"},
			},
		},
		{
			name: "wildcard pattern covers the hosts",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Policy: "version: STSv1\nmode: enforce\nmax_age: 604800\nmx: *.good.example\n"}
			},
		},
		{
			name: "max_age under a day",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Policy: "version: STSv1\nmode: enforce\nmax_age: 3600\nmx: *.good.example\n"}
			},
			want: []want{{AreaSTS, "mta-sts.good.example", Warning, "max_age 3600 is under a day"}},
		},
		{
			name: "mode none",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Policy: "version: STSv1\nmode: none\nmax_age: 86400\n"}
			},
			want: []want{{AreaSTS, "mta-sts.good.example", Warning, "mode none"}},
		},
		{
			name: "invalid mx values next to a valid one",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Policy: "version: STSv1\nmode: enforce\nmax_age: 604800\nmx: *.good.example\nmx: 192.0.2.1\nmx: mx_3.good.example\n"}
			},
			want: []want{
				{AreaSTS, "mta-sts.good.example", Warning, `mx value "192.0.2.1" is an address`},
				{AreaSTS, "mta-sts.good.example", Warning, `mx value "mx_3.good.example" is not a host name`},
			},
		},
		{
			name: "several STS records",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Extra: []string{`_mta-sts 300 IN TXT "v=STSv1; id=2"`}}
			},
			want: []want{{AreaSTS, "_mta-sts.good.example", Error, "2 TXT records of _mta-sts.good.example. start with v=STSv1"}},
		},
		{
			name: "STS record with a bad id",
			setup: func(t *testing.T, w *world) domainSetup {
				return domainSetup{NoSTS: true, Extra: []string{`_mta-sts 300 IN TXT "v=STSv1; id=not-alnum"`}}
			},
			want: []want{{AreaSTS, "_mta-sts.good.example", Error, "invalid record"}},
		},
		{
			name: "no MTA-STS at all",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{NoSTS: true}
			},
			want: []want{{AreaSTS, "_mta-sts.good.example", OK, "no MTA-STS record"}},
		},
		{
			name: "expired certificate on the policy host",
			setup: func(t *testing.T, w *world) domainSetup {
				c := w.CA.MustLeaf(testenv.LeafOptions{Expired: true}, "mta-sts.good.example")
				return domainSetup{Policies: &testenv.PolicyResponse{Certificate: &c}}
			},
			want: []want{{AreaSTS, "mta-sts.good.example", Error, "the policy host's certificate expired on"}},
		},
		{
			name: "policy host certificate for another name",
			setup: func(t *testing.T, w *world) domainSetup {
				c := w.CA.MustLeaf(testenv.LeafOptions{}, "www.good.example")
				return domainSetup{Policies: &testenv.PolicyResponse{Certificate: &c}}
			},
			want: []want{{AreaSTS, "mta-sts.good.example", Error, "does not name mta-sts.good.example (it names www.good.example)"}},
		},
		{
			name: "self-signed certificate on the policy host",
			setup: func(t *testing.T, w *world) domainSetup {
				c := w.CA.MustLeaf(testenv.LeafOptions{SelfSigned: true}, "mta-sts.good.example")
				return domainSetup{Policies: &testenv.PolicyResponse{Certificate: &c}}
			},
			want: []want{{AreaSTS, "mta-sts.good.example", Error, "not valid under the WebPKI"}},
		},
		{
			name: "policy host certificate expiring soon",
			setup: func(t *testing.T, w *world) domainSetup {
				c := w.CA.MustLeaf(testenv.LeafOptions{NotAfter: time.Now().Add(36 * time.Hour)}, "mta-sts.good.example")
				return domainSetup{Policies: &testenv.PolicyResponse{Certificate: &c}}
			},
			want: []want{{AreaSTS, "mta-sts.good.example", Warning, "certificate expires in 1 day"}},
		},
		{
			name: "policy not found",
			setup: func(t *testing.T, w *world) domainSetup {
				return domainSetup{Policies: &testenv.PolicyResponse{Status: 404, Body: "not here"}}
			},
			want: []want{{AreaSTS, "mta-sts.good.example", Error, "policy fetch failed: GET https://mta-sts.good.example/.well-known/mta-sts.txt: HTTP 404"}},
		},
		{
			name: "policy behind a redirect",
			setup: func(t *testing.T, w *world) domainSetup {
				return domainSetup{Policies: &testenv.PolicyResponse{Location: "https://www.good.example/mta-sts.txt"}}
			},
			want: []want{{AreaSTS, "mta-sts.good.example", Error, "redirects are not followed"}},
		},
		{
			name: "policy served as text/html",
			setup: func(t *testing.T, w *world) domainSetup {
				return domainSetup{Policies: &testenv.PolicyResponse{ContentType: "text/html"}}
			},
			want: []want{{AreaSTS, "mta-sts.good.example", Error, "want text/plain"}},
		},
		{
			name: "max_age over a year is invalid",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Policy: "version: STSv1\nmode: enforce\nmax_age: 31557601\nmx: *.good.example\n"}
			},
			want: []want{{AreaSTS, "mta-sts.good.example", Error, "invalid policy: policy line 3: max_age 31557601 is more than 31557600 seconds"}},
		},
		{
			name: "policy without mx under mode enforce",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Policy: "version: STSv1\nmode: enforce\nmax_age: 604800\nnmx: *.good.example\n"}
			},
			want: []want{{AreaSTS, "mta-sts.good.example", Error, "needs at least one valid mx pattern"}},
		},
		{
			name: "policy served but no TXT record",
			setup: func(t *testing.T, w *world) domainSetup {
				return domainSetup{After: func(t *testing.T, w *world) { w.DNS.Remove("_mta-sts.good.example", 0) }}
			},
			want: []want{{AreaSTS, "_mta-sts.good.example", Error, "there is no _mta-sts TXT record"}},
		},
	})
}

// TestDANE: TLSA records against what the MX hosts present (RFC 7672).
func TestDANE(t *testing.T) {
	runCases(t, []checkCase{
		{
			name: "TLSA record does not match the presented key",
			setup: func(t *testing.T, w *world) domainSetup {
				return domainSetup{Hosts: []hostSetup{{Name: "mx1", TLSA: otherKeyTLSA(t, w)}, {Name: "mx2"}}}
			},
			want: []want{{AreaDANE, "mx1.good.example", Error, "DANE authentication fails"}},
		},
		{
			name: "TLSA records in an insecure zone",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Zone: testenv.Insecure, NoSTS: true}
			},
			// A warning, not an error: the records are ignored, so mail is
			// delivered as if they were not there.
			want: []want{
				{AreaDANE, "_25._tcp.mx1.good.example", Warning, "not DNSSEC-signed"},
				{AreaDANE, "_25._tcp.mx2.good.example", Warning, "not DNSSEC-signed"},
			},
		},
		{
			name: "only PKIX usages: TLS required, no authentication",
			setup: func(t *testing.T, w *world) domainSetup {
				rec := "1" + strings.TrimPrefix(otherKeyTLSA(t, w), "3")
				return domainSetup{Hosts: []hostSetup{{Name: "mx1", TLSA: rec}, {Name: "mx2"}}}
			},
			want: []want{
				{AreaDANE, "_25._tcp.mx1.good.example", Error, "no usable TLSA record"},
				{AreaDANE, "_25._tcp.mx1.good.example", Warning, "is not usable for SMTP"},
			},
		},
		{
			name: "TLSA look-up fails",
			setup: func(t *testing.T, w *world) domainSetup {
				w.DNS.SetFault("_25._tcp.mx1.good.example", dns.TypeTLSA, testenv.FaultServfail)
				return domainSetup{}
			},
			want: []want{{AreaDANE, "mx1.good.example", Error, "cannot tell whether DANE applies"}},
		},
		{
			name: "expired MX certificate under DANE alone",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{NoSTS: true, Hosts: []hostSetup{{Name: "mx1", Leaf: testenv.LeafOptions{Expired: true}}, {Name: "mx2"}}}
			},
			// RFC 7672 §3.1.1: DANE-EE ignores the dates.
			want: []want{{AreaSTS, "_mta-sts.good.example", OK, "no MTA-STS record"}, {AreaHosts, "mx1.good.example", OK, "certificate expired"}},
		},
	})
}

// TestMXHosts: STARTTLS and the certificates of the MX hosts (RFC 8461
// §4.2, RFC 3207).
func TestMXHosts(t *testing.T) {
	runCases(t, []checkCase{
		{
			name: "no STARTTLS on an MX host",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Hosts: []hostSetup{{Name: "mx1"}, {Name: "mx2", NoSTARTTLS: true}}}
			},
			want: []want{{AreaHosts, "mx2.good.example", Error, "does not offer STARTTLS"}},
		},
		{
			name: "MX certificate for the wrong name under an enforced policy",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Hosts: []hostSetup{{Name: "mx1", CertName: "other.example"}, {Name: "mx2"}}}
			},
			want: []want{{AreaHosts, "mx1.good.example", Error, "not valid for mx1.good.example (it names other.example)"}},
		},
		{
			name: "self-signed MX certificate without DANE or MTA-STS",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{NoSTS: true, Hosts: []hostSetup{{Name: "mx1", TLSA: "-", Leaf: testenv.LeafOptions{SelfSigned: true}}}}
			},
			want: []want{{AreaHosts, "mx1.good.example", Warning, "certificate is not trusted"}},
		},
		{
			name: "MX certificate expiring soon",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Hosts: []hostSetup{{Name: "mx1", Leaf: testenv.LeafOptions{NotAfter: time.Now().Add(3*24*time.Hour + time.Hour)}}, {Name: "mx2"}}}
			},
			want: []want{{AreaHosts, "mx1.good.example", Warning, "certificate expires in 3 days"}},
		},
		{
			name: "MX host offers only TLS 1.1 under an enforced policy",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Hosts: []hostSetup{{Name: "mx1", TLS: [2]uint16{tls.VersionTLS10, tls.VersionTLS11}}, {Name: "mx2"}}}
			},
			want: []want{{AreaHosts, "mx1.good.example", Error, "negotiates TLS 1.1, older than the TLS 1.2 MTA-STS requires"}},
		},
		{
			name: "MX host that never answers",
			setup: func(t *testing.T, w *world) domainSetup {
				w.env.Timeout = 300 * time.Millisecond
				return domainSetup{Hosts: []hostSetup{{Name: "mx1"}, {Name: "mx2", Blackhole: true}}}
			},
			want: []want{{AreaHosts, "mx2.good.example", Error, "cannot connect to port 25"}},
		},
		{
			name: "one MX host refuses connections",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Hosts: []hostSetup{{Name: "mx1"}, {Name: "mx2", Refuse: true}}}
			},
			want: []want{{AreaHosts, "mx2.good.example", Error, "cannot connect to port 25"}},
		},
		{
			name: "every MX host unreachable: port 25 blocked here",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Hosts: []hostSetup{{Name: "mx1", Refuse: true}, {Name: "mx2", Refuse: true}}}
			},
			want: []want{{AreaHosts, "", Warning, "could not connect to any MX host"}},
		},
	})
}

// TestMXRecords: the MX RRset itself (RFC 5321 §5.1, RFC 7505, RFC 2181
// §10.3).
func TestMXRecords(t *testing.T) {
	runCases(t, []checkCase{
		{
			name: "MX host is a CNAME",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{
					Hosts: []hostSetup{{Name: "mx1"}},
					Extra: []string{"@ 300 IN MX 20 alias.good.example.", "alias 300 IN CNAME mx1.good.example."},
					// The policy covers the alias; its certificate does
					// not name it.
					Policy: "version: STSv1\nmode: testing\nmax_age: 604800\nmx: *.good.example\n",
				}
			},
			want: []want{
				{AreaMX, "alias.good.example", Warning, "CNAME for mx1.good.example"},
				{AreaSTS, "mta-sts.good.example", Warning, "mode testing"},
				{AreaHosts, "alias.good.example", Warning, "not valid for alias.good.example"},
			},
		},
		{
			name: "null MX beside other MX records",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Extra: []string{"@ 300 IN MX 0 ."}}
			},
			want: []want{{AreaMX, "good.example", Error, "null MX (MX 0 .) published beside other MX records"}},
		},
		{
			name: "MX record naming an address",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Extra: []string{"@ 300 IN MX 30 192.0.2.1."}}
			},
			want: []want{{AreaMX, "good.example", Error, "names the address 192.0.2.1"}},
		},
	})
}

// TestTLSRPT: the _smtp._tls record (RFC 8460 §3).
func TestTLSRPT(t *testing.T) {
	runCases(t, []checkCase{
		{
			name: "bad TLS-RPT record",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{TLSRPT: "v=TLSRPTv1; rua=ftp://reports.good.example/"}
			},
			want: []want{{AreaTLSRPT, "_smtp._tls.good.example", Error, "invalid record"}},
		},
		{
			name: "several TLS-RPT records",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Extra: []string{`_smtp._tls 300 IN TXT "v=TLSRPTv1; rua=mailto:other@good.example"`}}
			},
			want: []want{{AreaTLSRPT, "_smtp._tls.good.example", Error, "several TXT records"}},
		},
		{
			name: "no TLS-RPT record",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{NoTLSRPT: true}
			},
			want: []want{{AreaTLSRPT, "_smtp._tls.good.example", Warning, "no TLS-RPT record"}},
		},
		{
			name: "TLS-RPT reports to a domain that does not exist",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{TLSRPT: "v=TLSRPTv1; rua=mailto:reports@nowhere.example"}
			},
			want: []want{{AreaTLSRPT, "_smtp._tls.good.example", Error, "nowhere.example does not exist"}},
		},
	})
}

// TestSPF: the SPF record of the policy host (see doc.go).
func TestSPF(t *testing.T) {
	runCases(t, []checkCase{
		{
			name: "no SPF record on the policy host",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{NoSPF: true}
			},
			want: []want{{AreaSPF, "mta-sts.good.example", Warning, "no SPF record"}},
		},
		{
			name: "two SPF records on the policy host",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Extra: []string{`mta-sts 300 IN TXT "v=spf1 a -all"`}}
			},
			want: []want{{AreaSPF, "mta-sts.good.example", Error, "2 SPF records"}},
		},
	})
}

func TestNullMX(t *testing.T) {
	w := newWorld(t)
	if err := w.DNS.Zone("nomail.example", testenv.Secure, "@ 300 IN MX 0 ."); err != nil {
		t.Fatal(err)
	}
	rep := w.check(t, "nomail.example")
	expect(t, rep, want{AreaMX, "nomail.example", OK, "null MX (RFC 7505)"})
	if len(rep.Findings) != 2 { // resolver and null MX: nothing else to check
		t.Errorf("got %d findings, want 2: %+v", len(rep.Findings), rep.Findings)
	}
}

func TestNoMXNoAddress(t *testing.T) {
	w := newWorld(t)
	if err := w.DNS.Zone("empty.example", testenv.Secure); err != nil {
		t.Fatal(err)
	}
	expect(t, w.check(t, "empty.example"), want{AreaMX, "empty.example", Warning, "no MX records and no address"})
}

func TestDomainDoesNotExist(t *testing.T) {
	w := newWorld(t)
	expect(t, w.check(t, "missing.example"), want{AreaMX, "missing.example", Error, "does not exist"})
}

func TestBogusDomain(t *testing.T) {
	w := newWorld(t)
	w.build(t, domainSetup{Zone: testenv.Bogus})
	expect(t, w.check(t, "good.example"), want{AreaMX, "good.example", Error, "DNSSEC validation fails"})
}

func TestResolverNotValidating(t *testing.T) {
	w := newWorld(t)
	w.build(t, domainSetup{})
	w.DNS.SetValidating(false)
	rep := w.check(t, "good.example")
	expect(t, rep,
		want{AreaResolver, "", Warning, "does not validate DNSSEC"},
		want{AreaDANE, "", Warning, "not checked"},
	)
}

// TestDANEThroughUnsignedMX: a signed provider's host with TLSA records,
// named by the MX records of an unsigned domain. The records are checked
// (RFC 7672 §2.2.1 allows senders to use them), with a warning that many
// senders do not.
func TestDANEThroughUnsignedMX(t *testing.T) {
	w := newWorld(t)
	w.build(t, domainSetup{Domain: "provider.example", NoSTS: true, Hosts: []hostSetup{{Name: "mx"}}})
	w.build(t, domainSetup{Domain: "customer.example", Zone: testenv.Insecure, NoSTS: true, Hosts: []hostSetup{},
		Extra: []string{"@ 300 IN MX 10 mx.provider.example."}})
	expect(t, w.check(t, "customer.example"),
		want{AreaMX, "customer.example", OK, "10 mx.provider.example (not DNSSEC-signed)"},
		want{AreaDANE, "mx.provider.example", Warning, "MX records are not DNSSEC-signed"},
		want{AreaDANE, "mx.provider.example", OK, "certificate matches TLSA 3 1 1"},
	)
}

// TestInjectedHTTPClient: a caller's HTTP client, which follows redirects,
// is used for the fetch, and still never follows one (RFC 8461 §3.3).
func TestInjectedHTTPClient(t *testing.T) {
	w := newWorld(t)
	w.build(t, domainSetup{Policies: &testenv.PolicyResponse{Location: "https://mta-sts.good.example/elsewhere"}})
	w.env.HTTPClient = w.Dialer.HTTPClient(w.CA.Pool())
	// An injected client finds hosts its own way: this one by name.
	w.Dialer.Route("mta-sts.good.example:443", w.Policies.Addr())
	expect(t, w.check(t, "good.example"), want{AreaSTS, "mta-sts.good.example", Error, "redirects are not followed"})
	if n := w.Policies.Fetches("good.example"); n != 1 {
		t.Errorf("policy fetched %d times, want 1", n)
	}
}

func TestResolverNotAnswering(t *testing.T) {
	w := newWorld(t)
	w.DNS.SetFault("", 0, testenv.FaultRefused)
	rep := w.check(t, "good.example")
	expect(t, rep, want{AreaResolver, w.DNS.Addr, Error, "does not answer"})
	if len(rep.Findings) != 1 {
		t.Errorf("got %d findings, want only the resolver's", len(rep.Findings))
	}
}

// TestNoIPv6Here: a machine without IPv6 cannot judge an MX host's IPv6
// address; that is a warning about the vantage point, not an error of the
// domain, and the IPv4 address is still checked.
func TestNoIPv6Here(t *testing.T) {
	w := newWorld(t)
	w.build(t, domainSetup{Hosts: []hostSetup{{Name: "mx1"}}})
	must(t, w.DNS.Add("mx1.good.example. 300 IN AAAA 2001:db8::25"))
	w.env.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if strings.HasPrefix(addr, "[") {
			return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}
		}
		return w.Dialer.DialContext(ctx, network, addr)
	}
	expect(t, w.check(t, "good.example"),
		want{AreaHosts, "mx1.good.example [2001:db8::25]", Warning, "cannot reach IPv6 addresses"},
		want{AreaHosts, "mx1.good.example [" + w.ips["mx1.good.example"] + "]", OK, "STARTTLS with TLS 1.3"},
	)
}
