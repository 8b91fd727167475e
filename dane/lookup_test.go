package dane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sealpost/sealpost/internal/testenv"
)

// lookupWorld is the DNS of the look-up tests, and the certificate its
// TLSA records bind.
type lookupWorld struct {
	dns  *testenv.DNSServer
	cert tls.Certificate // leaf for mx.example.com, under the test intermediate
}

func tlsaText(r TLSARecord) string {
	return fmt.Sprintf("%d %d %d %x", r.Usage, r.Selector, r.MatchingType, r.Data)
}

func newLookupWorld(t *testing.T) *lookupWorld {
	t.Helper()
	p := testPKI(t)
	cert := p.root.MustLeaf(testenv.LeafOptions{Issuer: p.inter}, "mx.example.com", "mx.provider.net")
	ee := tlsaText(recordFor(DANEEE, SelectorSPKI, MatchSHA256, cert.Leaf))
	ta := tlsaText(recordFor(DANETA, SelectorSPKI, MatchSHA256, p.inter.Cert))
	s, err := testenv.StartDNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	zone := func(origin string, sec testenv.Security, records ...string) {
		t.Helper()
		if err := s.Zone(origin, sec, records...); err != nil {
			t.Fatal(err)
		}
	}
	zone("example.com.", testenv.Secure,
		"mx 300 IN A 127.0.0.2",
		"mx 300 IN AAAA ::1",
		"_25._tcp.mx 300 IN TLSA "+ee,
		"_25._tcp.mx 300 IN TLSA "+ta,
		"pkix 300 IN A 127.0.0.2",
		"_25._tcp.pkix 300 IN TLSA 1 1 1 "+strings.Repeat("aa", 32),
		"_25._tcp.pkix 300 IN TLSA 0 0 1 "+strings.Repeat("bb", 32),
		"short 300 IN A 127.0.0.2",
		"_25._tcp.short 300 IN TLSA 3 1 1 "+strings.Repeat("cc", 31),
		"none 300 IN A 127.0.0.2",
		"servfail 300 IN A 127.0.0.2",
		"_25._tcp.servfail 300 IN TLSA "+ee,
		"timeout 300 IN A 127.0.0.2",
		"bogustlsa 300 IN A 127.0.0.2",
		"addrfail 300 IN A 127.0.0.2",
		"alias 300 IN CNAME mx.provider.net.",
		"_25._tcp.alias 300 IN TLSA 3 1 1 "+strings.Repeat("dd", 32),
		"alias2 300 IN CNAME plain.provider.net.",
		"_25._tcp.alias2 300 IN TLSA "+ee,
		"alias3 300 IN CNAME failing.provider.net.",
		"_25._tcp.alias3 300 IN TLSA "+ee,
		"toinsecure 300 IN CNAME mx.unsigned.net.",
		"_25._tcp.toinsecure 300 IN TLSA "+ee,
		"tlsacname 300 IN A 127.0.0.2",
		"_25._tcp.tlsacname 300 IN CNAME _dane.provider.net.",
		"tlsacname2 300 IN A 127.0.0.2",
		"_25._tcp.tlsacname2 300 IN CNAME _dane.unsigned.net.",
		"submission 300 IN A 127.0.0.2",
		"_587._tcp.submission 300 IN TLSA "+ee,
	)
	zone("provider.net.", testenv.Secure,
		"mx 300 IN A 127.0.0.3",
		"_25._tcp.mx 300 IN TLSA "+ee,
		"plain 300 IN A 127.0.0.3",
		"failing 300 IN A 127.0.0.3",
		"_dane 300 IN TLSA "+ee,
	)
	zone("unsigned.net.", testenv.Insecure,
		"mx 300 IN A 127.0.0.4",
		"_25._tcp.mx 300 IN TLSA "+ee,
		"_dane 300 IN TLSA "+ee,
		"lazyprovider 300 IN A 127.0.0.4",
		"unsigned.net. 300 IN MX 10 lazyprovider.unsigned.net.",
		"toprovider 300 IN CNAME mx.provider.net.",
	)
	zone("bogus.org.", testenv.Bogus, "mx 300 IN A 127.0.0.5")
	s.SetFault("_25._tcp.servfail.example.com", dns.TypeTLSA, testenv.FaultServfail)
	s.SetFault("_25._tcp.timeout.example.com", dns.TypeTLSA, testenv.FaultTimeout)
	s.SetFault("_25._tcp.bogustlsa.example.com", dns.TypeTLSA, testenv.FaultBogus)
	s.SetFault("addrfail.example.com", dns.TypeA, testenv.FaultServfail)
	s.SetFault("_25._tcp.failing.provider.net", dns.TypeTLSA, testenv.FaultServfail)
	// Large providers answer TLSA questions for unsigned zones with
	// SERVFAIL or NOTIMP.
	s.SetFault("_25._tcp.mx.unsigned.net", dns.TypeTLSA, testenv.FaultServfail)
	s.SetFault("_25._tcp.lazyprovider.unsigned.net", dns.TypeTLSA, testenv.FaultNotImp)
	return &lookupWorld{dns: s, cert: cert}
}

func (w *lookupWorld) resolver() *Resolver {
	return &Resolver{Servers: []Server{{Addr: w.dns.Addr}}, Timeout: 50 * time.Millisecond, Attempts: 1}
}

func TestDiscoveryLookup(t *testing.T) {
	w := newLookupWorld(t)
	d := &Discovery{Resolver: w.resolver()}

	type want struct {
		outcome Outcome
		base    string
		records int
		err     error  // with errors.Is; nil when a Requirement is expected
		never   string // a TLSA name that must never be asked
	}
	for _, tc := range []struct {
		name     string
		host     string
		mxSecure bool
		want     want
	}{
		{"secure usable records require authentication", "mx.example.com.", true,
			want{outcome: AuthenticationRequired, base: "mx.example.com", records: 2}},
		{"host name is normalised", "MX.Example.COM", true,
			want{outcome: AuthenticationRequired, base: "mx.example.com", records: 2}},
		{"secure records, only 1 x x and 0 x x: TLS without authentication", "pkix.example.com", true,
			want{outcome: TLSRequired, base: "pkix.example.com", records: 2}},
		{"secure record with a 31-byte SHA-256 digest: TLS without authentication", "short.example.com", true,
			want{outcome: TLSRequired, base: "short.example.com", records: 1}},
		{"secure denial: DANE does not apply", "none.example.com", true,
			want{outcome: NotApplicable}},
		{"TLSA SERVFAIL in a signed zone: host not usable now", "servfail.example.com", true,
			want{err: ErrTemporary}},
		{"TLSA timeout in a signed zone: host not usable now", "timeout.example.com", true,
			want{err: ErrTemporary}},
		{"bogus TLSA: host not usable now", "bogustlsa.example.com", true,
			want{err: ErrBogus}},
		{"address SERVFAIL: host not usable now", "addrfail.example.com", true,
			want{err: ErrTemporary, never: "_25._tcp.addrfail.example.com"}},
		{"bogus address records: host not usable now", "mx.bogus.org", true,
			want{err: ErrBogus, never: "_25._tcp.mx.bogus.org"}},
		{"no such host: DANE does not apply", "nothing.example.com", true,
			want{outcome: NotApplicable, never: "_25._tcp.nothing.example.com"}},
		{"unsigned host with TLSA records: DANE does not apply", "mx.unsigned.net", true,
			want{outcome: NotApplicable, never: "_25._tcp.mx.unsigned.net"}},
		{"unsigned domain whose provider SERVFAILs TLSA is not stalled", "mx.unsigned.net", false,
			want{outcome: NotApplicable, never: "_25._tcp.mx.unsigned.net"}},
		{"unsigned domain whose provider answers NOTIMP for TLSA is not stalled", "lazyprovider.unsigned.net", false,
			want{outcome: NotApplicable, never: "_25._tcp.lazyprovider.unsigned.net"}},
		{"insecure MX RRset naming a secure DANE host: records honoured (§2.2.1)", "mx.example.com", false,
			want{outcome: AuthenticationRequired, base: "mx.example.com", records: 2}},
		{"secure CNAME chain: expanded name first (§2.2.3)", "alias.example.com", true,
			want{outcome: AuthenticationRequired, base: "mx.provider.net", records: 1}},
		{"secure CNAME chain, no TLSA at the expanded name: original name second", "alias2.example.com", true,
			want{outcome: AuthenticationRequired, base: "alias2.example.com", records: 1}},
		{"secure CNAME chain, TLSA SERVFAIL at the expanded name: no fall-back to the original", "alias3.example.com", true,
			want{err: ErrTemporary}},
		{"CNAME into an unsigned zone: only the original name", "toinsecure.example.com", true,
			want{outcome: AuthenticationRequired, base: "toinsecure.example.com", records: 1, never: "_25._tcp.mx.unsigned.net"}},
		{"CNAME from an unsigned zone into a signed one: DANE does not apply", "toprovider.unsigned.net", true,
			want{outcome: NotApplicable, never: "_25._tcp.toprovider.unsigned.net"}},
		{"TLSA via a secure CNAME chain", "tlsacname.example.com", true,
			want{outcome: AuthenticationRequired, base: "tlsacname.example.com", records: 1}},
		{"TLSA via a CNAME into an unsigned zone: not secure, DANE does not apply", "tlsacname2.example.com", true,
			want{outcome: NotApplicable}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req, err := d.Lookup(ctx, tc.host, tc.mxSecure)
			if tc.want.never != "" {
				if n := w.dns.Queries(tc.want.never, dns.TypeTLSA); n != 0 {
					t.Errorf("%s TLSA was asked %d times", tc.want.never, n)
				}
			}
			if tc.want.err != nil {
				if req != nil || err == nil {
					t.Fatalf("Lookup = %+v, %v; want an error", req, err)
				}
				var re *RequirementError
				if !errors.As(err, &re) {
					t.Fatalf("error %T is not a *RequirementError: %v", err, err)
				}
				if !errors.Is(err, tc.want.err) {
					t.Errorf("error %v is not %v", err, tc.want.err)
				}
				if !re.Temporary() || re.ResultType() != ResultDNSSECInvalid {
					t.Errorf("Temporary() = %v, ResultType() = %q", re.Temporary(), re.ResultType())
				}
				return
			}
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if req.Outcome != tc.want.outcome || req.BaseDomain != tc.want.base || len(req.Records) != tc.want.records {
				t.Fatalf("Lookup = %v base %q with %d records, want %v base %q with %d",
					req.Outcome, req.BaseDomain, len(req.Records), tc.want.outcome, tc.want.base, tc.want.records)
			}
			if want := strings.ToLower(strings.TrimSuffix(tc.host, ".")); req.Host != want {
				t.Errorf("Host = %q, want %q", req.Host, want)
			}
			if req.MXSecure != tc.mxSecure {
				t.Errorf("MXSecure = %v", req.MXSecure)
			}
			if req.Outcome != NotApplicable && (req.TTL == 0 || req.TTL > 300) {
				t.Errorf("TTL = %d, want the answers' 300 or less", req.TTL)
			}
			if req.Port != 25 {
				t.Errorf("Port = %d, want 25", req.Port)
			}
			if tc.want.never != "" && slices.Contains(req.TLSANames, tc.want.never) {
				t.Errorf("TLSANames = %q lists %s, which was never asked", req.TLSANames, tc.want.never)
			}
			if req.Outcome != NotApplicable && (len(req.TLSANames) == 0 || req.TLSANames[len(req.TLSANames)-1] != "_25._tcp."+req.BaseDomain) {
				t.Errorf("TLSANames = %q, want them to end with the records' owner", req.TLSANames)
			}
		})
	}
}

// The TLSA owner name carries the port (RFC 6698 §3): the records of a
// server on 587 are at _587._tcp, and those at _25._tcp say nothing of it.
func TestDiscoveryLookupPort(t *testing.T) {
	for _, tc := range []struct {
		name    string
		host    string
		port    uint16
		outcome Outcome
		asked   []string // TLSA names asked
		never   string   // a TLSA name not asked
	}{
		{"records for port 587", "submission.example.com", 587, AuthenticationRequired,
			[]string{"_587._tcp.submission.example.com"}, "_25._tcp.submission.example.com"},
		{"no records for port 25 where only 587 has some", "submission.example.com", 25, NotApplicable,
			[]string{"_25._tcp.submission.example.com"}, "_587._tcp.submission.example.com"},
		{"records for port 25 do not cover 587", "mx.example.com", 587, NotApplicable,
			[]string{"_587._tcp.mx.example.com"}, "_25._tcp.mx.example.com"},
		{"secure CNAME chain: both base domains with the port", "alias.example.com", 587, NotApplicable,
			[]string{"_587._tcp.mx.provider.net", "_587._tcp.alias.example.com"}, "_25._tcp.alias.example.com"},
		{"port 0 means 25", "mx.example.com", 0, AuthenticationRequired,
			[]string{"_25._tcp.mx.example.com"}, "_0._tcp.mx.example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newLookupWorld(t)
			d := &Discovery{Resolver: w.resolver()}
			req, err := d.LookupPort(context.Background(), tc.host, tc.port, true)
			if err != nil {
				t.Fatal(err)
			}
			if req.Outcome != tc.outcome || !slices.Equal(req.TLSANames, tc.asked) {
				t.Errorf("LookupPort = %v after asking %q; want %v after %q", req.Outcome, req.TLSANames, tc.outcome, tc.asked)
			}
			for _, name := range tc.asked {
				if w.dns.Queries(name, dns.TypeTLSA) == 0 {
					t.Errorf("%s was not asked", name)
				}
			}
			if n := w.dns.Queries(tc.never, dns.TypeTLSA); n != 0 {
				t.Errorf("%s was asked %d times", tc.never, n)
			}
			wantPort := tc.port
			if wantPort == 0 {
				wantPort = 25
			}
			if req.Port != wantPort {
				t.Errorf("Port = %d, want %d", req.Port, wantPort)
			}
		})
	}
}

// TLSANames say whether a TLSA question was asked at all: for a host
// whose address records are not secure, or that has none, none is.
func TestDiscoveryTLSANames(t *testing.T) {
	w := newLookupWorld(t)
	d := &Discovery{Resolver: w.resolver()}
	for _, tc := range []struct {
		host  string
		asked []string
	}{
		{"mx.example.com", []string{"_25._tcp.mx.example.com"}},
		{"none.example.com", []string{"_25._tcp.none.example.com"}},
		{"alias2.example.com", []string{"_25._tcp.plain.provider.net", "_25._tcp.alias2.example.com"}},
		{"mx.unsigned.net", nil},
		{"nothing.example.com", nil},
	} {
		req, err := d.Lookup(context.Background(), tc.host, true)
		if err != nil {
			t.Fatalf("%s: %v", tc.host, err)
		}
		if !slices.Equal(req.TLSANames, tc.asked) {
			t.Errorf("%s: TLSANames = %q, want %q", tc.host, req.TLSANames, tc.asked)
		}
	}
}

func TestDiscoveryInsecureMXIgnore(t *testing.T) {
	w := newLookupWorld(t)
	d := &Discovery{Resolver: w.resolver(), InsecureMX: InsecureMXIgnore}
	ctx := context.Background()
	req, err := d.Lookup(ctx, "mx.example.com", false)
	if err != nil || req.Outcome != NotApplicable {
		t.Fatalf("insecure MX, ignore policy: Lookup = %+v, %v; want NotApplicable", req, err)
	}
	if n := w.dns.Queries("mx.example.com", dns.TypeA) + w.dns.Queries("_25._tcp.mx.example.com", dns.TypeTLSA); n != 0 {
		t.Errorf("%d questions asked for a host DANE cannot apply to", n)
	}
	req, err = d.Lookup(ctx, "mx.example.com", true)
	if err != nil || req.Outcome != AuthenticationRequired {
		t.Fatalf("secure MX, ignore policy: Lookup = %+v, %v; want AuthenticationRequired", req, err)
	}
}

func TestDiscoveryWithoutResolver(t *testing.T) {
	_, err := (&Discovery{}).Lookup(context.Background(), "mx.example.com", true)
	var re *RequirementError
	if !errors.As(err, &re) || !re.Temporary() {
		t.Fatalf("err = %v, want a temporary *RequirementError", err)
	}
}

// TestDiscoveryHandshake goes from DNS to a verified TLS handshake: the
// requirement found for a CNAME'd host authenticates a server whose
// certificate names the expanded host, with SNI set to it.
func TestDiscoveryHandshake(t *testing.T) {
	w := newLookupWorld(t)
	d := &Discovery{Resolver: w.resolver()}
	for _, host := range []string{"mx.example.com", "alias.example.com"} {
		t.Run(host, func(t *testing.T) {
			req, err := d.Lookup(context.Background(), host, true)
			if err != nil {
				t.Fatal(err)
			}
			conn, sni := serve(t, w.cert)
			var m *Match
			client := tls.Client(conn, req.TLSConfig(nil, time.Now, func(got *Match) { m = got }))
			if err := client.Handshake(); err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer client.Close()
			if got := <-sni; got != req.BaseDomain {
				t.Errorf("SNI = %q, want %q", got, req.BaseDomain)
			}
			if m == nil || m.Record.Usage != DANEEE {
				t.Errorf("match = %+v, want the DANE-EE record", m)
			}
		})
	}
}
