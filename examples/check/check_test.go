package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/testenv"
)

// domainSetup describes a domain built in the loopback world. The zero
// value of every field is the well-configured choice, so that a test case
// names only its misconfiguration.
type domainSetup struct {
	Domain   string                       // default "good.example"
	Zone     testenv.Security             // the domain's zone: Secure by default
	Hosts    []hostSetup                  // default: mx1 and mx2 under the domain
	Policy   string                       // policy text; default enforce covering the hosts
	NoSTS    bool                         // publish neither record nor policy
	TLSRPT   string                       // _smtp._tls record; default a valid one
	NoTLSRPT bool                         // publish no _smtp._tls record
	SPF      string                       // TXT at mta-sts.<domain>; default "v=spf1 -all"
	NoSPF    bool                         // publish no TXT at mta-sts.<domain>
	Extra    []string                     // more records for the domain's zone
	Policies *testenv.PolicyResponse      // overrides the policy server's answer
	After    func(t *testing.T, w *world) // runs once the domain is built
}

// hostSetup describes one MX host.
type hostSetup struct {
	Name       string              // relative to the domain: "mx1"
	Preference uint16              // default 10 * position
	NoSTARTTLS bool                // the sink offers no STARTTLS
	Leaf       testenv.LeafOptions // how its certificate deviates from a valid one
	CertName   string              // name in the certificate; default the host's name
	TLSA       string              // TLSA rdata; default "3 1 1" for its key; "-" for none
	Refuse     bool                // connections to it are refused
	Blackhole  bool                // connections to it hang
	TLS        [2]uint16           // minimum and maximum TLS version of the sink
}

type world struct {
	*testenv.World
	env Env
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w, err := testenv.NewWorld()
	for try := 0; try < 3 && errors.Is(err, syscall.EADDRINUSE); try++ {
		// testenv's DNS server takes a random UDP port and then the same
		// port over TCP, which another process may hold: pick again.
		w, err = testenv.NewWorld()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	// The root zone answers the resolver health check (dane.CheckHealth
	// asks for the root SOA) and denies names no other zone holds.
	if err := w.DNS.Zone(".", testenv.Secure); err != nil {
		t.Fatal(err)
	}
	return &world{World: w, env: Env{
		Resolver: &dane.Resolver{Servers: []dane.Server{{Addr: w.DNS.Addr}}, Timeout: time.Second},
		Dial:     w.Dialer.DialContext,
		RootCAs:  w.CA.Pool(),
		Timeout:  2 * time.Second,
		HeloName: "check.test",
	}}
}

// build publishes the domain described by s.
func (w *world) build(t *testing.T, s domainSetup) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	d := s.Domain
	if d == "" {
		d = "good.example"
	}
	hosts := s.Hosts
	if hosts == nil {
		hosts = []hostSetup{{Name: "mx1"}, {Name: "mx2"}}
	}
	must(w.DNS.Zone(d, s.Zone, s.Extra...))
	var names []string
	for i, h := range hosts {
		name := h.Name + "." + d
		names = append(names, name)
		pref := h.Preference
		if pref == 0 {
			pref = uint16(10 * (i + 1))
		}
		must(w.DNS.Add(fmt.Sprintf("%s. 300 IN MX %d %s.", d, pref, name)))
		opts := testenv.SMTPOptions{MinTLSVersion: h.TLS[0], MaxTLSVersion: h.TLS[1]}
		certName := h.CertName
		if certName == "" {
			certName = name
		}
		cert := w.CA.MustLeaf(h.Leaf, certName)
		if !h.NoSTARTTLS {
			opts.Certificate = &cert
		}
		_, ip, err := w.MX(name, opts)
		must(err)
		if h.Refuse {
			w.Dialer.Refuse(ip + ":25")
		}
		if h.Blackhole {
			w.Dialer.Blackhole(ip + ":25")
		}
		switch h.TLSA {
		case "":
			must(w.PublishTLSA(name, cert))
		case "-":
		default:
			must(w.DNS.Add(fmt.Sprintf("_25._tcp.%s. 300 IN TLSA %s", name, h.TLSA)))
		}
	}
	if !s.NoSTS {
		policy := s.Policy
		if policy == "" {
			policy = "version: STSv1\nmode: enforce\nmax_age: 604800\n"
			for _, n := range names {
				policy += "mx: " + n + "\n"
			}
		}
		must(w.PublishSTS(d, "20240101", policy))
		must(w.DNS.Add(fmt.Sprintf("mta-sts.%s. 300 IN A 127.0.0.1", d)))
		if s.Policies != nil {
			r := *s.Policies
			if r.Body == "" {
				r.Body = policy
			}
			w.Policies.Set(d, r)
		}
		if !s.NoSPF {
			spf := s.SPF
			if spf == "" {
				spf = "v=spf1 -all"
			}
			must(w.DNS.Add(fmt.Sprintf(`mta-sts.%s. 300 IN TXT "%s"`, d, spf)))
		}
	}
	if !s.NoTLSRPT {
		rec := s.TLSRPT
		if rec == "" {
			rec = "v=TLSRPTv1; rua=mailto:tlsrpt@" + d
		}
		must(w.DNS.Add(fmt.Sprintf(`_smtp._tls.%s. 300 IN TXT "%s"`, d, rec)))
	}
	if s.After != nil {
		s.After(t, w)
	}
}

func (w *world) check(t *testing.T, domain string) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	env := w.env
	return Check(ctx, &env, domain)
}

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

func TestMisconfigurations(t *testing.T) {
	const d = "good.example"
	enforceMX1 := "version: STSv1\nmode: enforce\nmax_age: 604800\nmx: mx1.good.example\n"
	tests := []struct {
		name  string
		setup func(t *testing.T, w *world) domainSetup
		want  []want
	}{
		{
			name: "policy does not cover an MX host",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{Policy: enforceMX1}
			},
			want: []want{{AreaSTS, "mx2.good.example", Error, "not covered by the policy's mx patterns"}},
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
			want: []want{
				{AreaDANE, "_25._tcp.mx1.good.example", Error, "not DNSSEC-signed"},
				{AreaDANE, "_25._tcp.mx2.good.example", Error, "not DNSSEC-signed"},
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
			name: "expired MX certificate under DANE alone",
			setup: func(*testing.T, *world) domainSetup {
				return domainSetup{NoSTS: true, Hosts: []hostSetup{{Name: "mx1", Leaf: testenv.LeafOptions{Expired: true}}, {Name: "mx2"}}}
			},
			// RFC 7672 §3.1.1: DANE-EE ignores the dates.
			want: []want{{AreaSTS, "_mta-sts.good.example", OK, "no MTA-STS record"}, {AreaHosts, "mx1.good.example", OK, "certificate expired"}},
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.build(t, tt.setup(t, w))
			expect(t, w.check(t, d), tt.want...)
		})
	}
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
	expect(t, w.check(t, "good.example"), want{AreaSTS, "mta-sts.good.example", Error, "redirects are not followed"})
	if n := w.Policies.Fetches("good.example"); n != 1 {
		t.Errorf("policy fetched %d times, want 1", n)
	}
}
