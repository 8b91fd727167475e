package dane_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/testenv"
)

// world starts a DNS server with a few zones that cover the cases below.
func world(t *testing.T) *testenv.DNSServer {
	t.Helper()
	s, err := testenv.StartDNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	must(t, s.Zone("secure.example.", testenv.Secure,
		"secure.example. 300 IN MX 10 mx.secure.example.",
		"mx 300 IN A 127.0.0.2",
		"mx 300 IN AAAA ::1",
		"alias 300 IN CNAME mx.secure.example.",
		"tometa 300 IN CNAME mx.insecure.example.",
		"todead 300 IN CNAME nothing.secure.example.",
		"loop1 300 IN CNAME loop2.secure.example.",
		"loop2 300 IN CNAME loop1.secure.example.",
		"v4only 300 IN A 127.0.0.3",
		"_mta-sts 300 IN TXT \"v=STSv1; \" \"id=20240101\"",
		"sub.deep 300 IN A 127.0.0.4",
	))
	must(t, s.Zone("insecure.example.", testenv.Insecure,
		"insecure.example. 300 IN MX 10 mx.insecure.example.",
		"mx 300 IN A 127.0.0.5",
		"toback 300 IN CNAME mx.secure.example.",
	))
	must(t, s.Zone("bogus.example.", testenv.Bogus,
		"bogus.example. 300 IN MX 10 mx.bogus.example.",
		"mx 300 IN A 127.0.0.6",
	))
	return s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newResolver(servers ...string) *dane.Resolver {
	r := &dane.Resolver{Timeout: 200 * time.Millisecond, Attempts: 1}
	for _, s := range servers {
		r.Servers = append(r.Servers, dane.Server{Addr: s})
	}
	return r
}

func TestLookup(t *testing.T) {
	s := world(t)
	tests := []struct {
		name      string
		qname     string
		qtype     uint16
		wantKind  error // nil: records expected
		secure    bool
		canonical string
		records   int
	}{
		{"secure MX", "secure.example", dns.TypeMX, nil, true, "secure.example.", 1},
		{"names are case-insensitive", "SECURE.Example.", dns.TypeMX, nil, true, "secure.example.", 1},
		{"insecure MX", "insecure.example", dns.TypeMX, nil, false, "insecure.example.", 1},
		{"secure NXDOMAIN", "nope.secure.example", dns.TypeMX, dane.ErrNXDomain, true, "nope.secure.example.", 0},
		{"insecure NXDOMAIN", "nope.insecure.example", dns.TypeMX, dane.ErrNXDomain, false, "nope.insecure.example.", 0},
		{"secure no data", "mx.secure.example", dns.TypeTLSA, dane.ErrNoData, true, "mx.secure.example.", 0},
		{"empty non-terminal is no data, not NXDOMAIN", "deep.secure.example", dns.TypeA, dane.ErrNoData, true, "deep.secure.example.", 0},
		{"bogus zone", "bogus.example", dns.TypeMX, dane.ErrBogus, false, "", 0},
		{"secure CNAME chain", "alias.secure.example", dns.TypeA, nil, true, "mx.secure.example.", 1},
		{"CNAME into an insecure zone is insecure", "tometa.secure.example", dns.TypeA, nil, false, "mx.insecure.example.", 1},
		{"CNAME from an insecure zone is insecure", "toback.insecure.example", dns.TypeA, nil, false, "mx.secure.example.", 1},
		{"CNAME to a missing name is NXDOMAIN of the target", "todead.secure.example", dns.TypeA, dane.ErrNXDomain, true, "nothing.secure.example.", 0},
		{"CNAME loop is a temporary failure", "loop1.secure.example", dns.TypeA, dane.ErrTemporary, false, "", 0},
		{"name outside every zone", "example.org", dns.TypeMX, dane.ErrNXDomain, false, "example.org.", 0},
		{"invalid name", "exa mple.com", dns.TypeMX, dane.ErrNXDomain, false, "", 0},
		{"UTF-8 name must be an A-label", "bücher.example", dns.TypeMX, dane.ErrNXDomain, false, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newResolver(s.Addr)
			ans, err := r.Lookup(context.Background(), tc.qname, tc.qtype)
			if tc.wantKind == nil {
				if err != nil {
					t.Fatalf("Lookup: %v", err)
				}
			} else if !errors.Is(err, tc.wantKind) {
				t.Fatalf("Lookup error = %v, want %v", err, tc.wantKind)
			}
			var de *dane.DNSError
			if err != nil && !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DNSError", err)
			}
			if tc.canonical == "" {
				if ans != nil {
					t.Errorf("got an answer %+v with a failure", ans)
				}
				return
			}
			if ans == nil {
				t.Fatal("no answer")
			}
			if ans.Secure != tc.secure {
				t.Errorf("Secure = %v, want %v", ans.Secure, tc.secure)
			}
			if de != nil && de.Secure != tc.secure {
				t.Errorf("DNSError.Secure = %v, want %v", de.Secure, tc.secure)
			}
			if ans.Canonical != tc.canonical {
				t.Errorf("Canonical = %q, want %q", ans.Canonical, tc.canonical)
			}
			if len(ans.Records) != tc.records {
				t.Errorf("got %d records, want %d", len(ans.Records), tc.records)
			}
		})
	}
}

func TestLookupChainRemembersBothNames(t *testing.T) {
	s := world(t)
	ans, err := newResolver(s.Addr).Lookup(context.Background(), "alias.secure.example", dns.TypeA)
	must(t, err)
	if ans.Name != "alias.secure.example." || ans.Canonical != "mx.secure.example." ||
		len(ans.Chain) != 1 || ans.Chain[0] != "mx.secure.example." {
		t.Errorf("answer names = %q -> %v -> %q", ans.Name, ans.Chain, ans.Canonical)
	}
}

func TestLookupTXTJoinsStrings(t *testing.T) {
	s := world(t)
	txt, err := newResolver(s.Addr).LookupTXT(context.Background(), "_mta-sts.secure.example")
	must(t, err)
	if len(txt) != 1 || txt[0] != "v=STSv1; id=20240101" {
		t.Errorf("TXT = %q", txt)
	}
	_, err = newResolver(s.Addr).LookupTXT(context.Background(), "_mta-sts.insecure.example")
	var nf interface{ NotFound() bool }
	if !errors.As(err, &nf) || !nf.NotFound() {
		t.Errorf("missing TXT: err = %v, want one that is NotFound", err)
	}
}

func TestFailureClasses(t *testing.T) {
	tests := []struct {
		fault testenv.Fault
		want  error
	}{
		{testenv.FaultServfail, dane.ErrTemporary},
		{testenv.FaultRefused, dane.ErrTemporary},
		{testenv.FaultNotImp, dane.ErrTemporary},
		{testenv.FaultTimeout, dane.ErrTemporary},
		{testenv.FaultBogus, dane.ErrBogus},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.want, "/", tc.fault), func(t *testing.T) {
			s := world(t)
			s.SetFault("_25._tcp.mx.secure.example", dns.TypeTLSA, tc.fault)
			r := newResolver(s.Addr)
			r.Timeout = 50 * time.Millisecond
			ans, err := r.Lookup(context.Background(), "_25._tcp.mx.secure.example", dns.TypeTLSA)
			if !errors.Is(err, tc.want) || ans != nil {
				t.Fatalf("Lookup = %v, %v; want nil, %v", ans, err, tc.want)
			}
			var de *dane.DNSError
			if !errors.As(err, &de) || !de.Temporary() || de.NotFound() {
				t.Errorf("error %v: want Temporary and not NotFound", err)
			}
			// The fault is on TLSA only: the same name's other types work.
			if _, err := r.Lookup(context.Background(), "mx.secure.example", dns.TypeA); err != nil {
				t.Errorf("A look-up beside the fault: %v", err)
			}
		})
	}
}

func TestFailoverToNextResolver(t *testing.T) {
	for _, fault := range []testenv.Fault{testenv.FaultRefused, testenv.FaultServfail, testenv.FaultTimeout} {
		t.Run(fmt.Sprint(fault), func(t *testing.T) {
			broken, good := world(t), world(t)
			broken.SetFault("", 0, fault)
			r := newResolver(broken.Addr, good.Addr)
			r.Timeout = 50 * time.Millisecond
			ans, err := r.Lookup(context.Background(), "secure.example", dns.TypeMX)
			if err != nil || !ans.Secure {
				t.Fatalf("Lookup = %+v, %v; want the second resolver's secure answer", ans, err)
			}
			if broken.Queries("secure.example", dns.TypeMX) != 1 || good.Queries("secure.example", dns.TypeMX) != 1 {
				t.Errorf("queries: broken %d, good %d; want 1 each",
					broken.Queries("secure.example", dns.TypeMX), good.Queries("secure.example", dns.TypeMX))
			}
		})
	}
}

func TestBogusIsNotShoppedAround(t *testing.T) {
	first, second := world(t), world(t)
	first.SetFault("secure.example", dns.TypeMX, testenv.FaultBogus)
	_, err := newResolver(first.Addr, second.Addr).Lookup(context.Background(), "secure.example", dns.TypeMX)
	if !errors.Is(err, dane.ErrBogus) {
		t.Fatalf("err = %v, want ErrBogus", err)
	}
	if n := second.Queries("secure.example", dns.TypeMX); n != 0 {
		t.Errorf("second resolver asked %d times after a bogus verdict", n)
	}
}

func TestTruncatedAnswerRetriedOverTCP(t *testing.T) {
	s := world(t)
	s.SetFault("secure.example", dns.TypeMX, testenv.FaultTruncate)
	ans, err := newResolver(s.Addr).Lookup(context.Background(), "secure.example", dns.TypeMX)
	if err != nil || len(ans.MX()) != 1 {
		t.Fatalf("Lookup = %+v, %v", ans, err)
	}
	if n := s.Queries("secure.example", dns.TypeMX); n != 2 {
		t.Errorf("queries = %d, want 2 (UDP then TCP)", n)
	}
}

func TestLargeAnswerArrivesOverTCP(t *testing.T) {
	s := world(t)
	var recs []string
	for i := 0; i < 60; i++ {
		recs = append(recs, fmt.Sprintf("big.secure.example. 300 IN TXT \"%s\"", strings.Repeat(string(rune('a'+i%26)), 60)))
	}
	must(t, s.Add(recs...))
	ans, err := newResolver(s.Addr).Lookup(context.Background(), "big.secure.example", dns.TypeTXT)
	if err != nil || len(ans.Records) != 60 {
		t.Fatalf("Lookup: %d records, %v; want 60", len(recordsOrNil(ans)), err)
	}
}

func recordsOrNil(a *dane.Answer) []dns.RR {
	if a == nil {
		return nil
	}
	return a.Records
}

func TestUntrustedResolverIsNeverSecure(t *testing.T) {
	s := world(t)
	r := &dane.Resolver{Servers: []dane.Server{{Addr: s.Addr, Trust: dane.TrustNever}}}
	ans, err := r.Lookup(context.Background(), "secure.example", dns.TypeMX)
	must(t, err)
	if ans.Secure {
		t.Error("AD bit from an untrusted resolver was believed")
	}
	// A bogus verdict from an untrusted resolver is an ordinary failure.
	s.SetFault("", 0, testenv.FaultBogus)
	r.FlushCache()
	_, err = r.Lookup(context.Background(), "secure.example", dns.TypeMX)
	if !errors.Is(err, dane.ErrTemporary) {
		t.Errorf("err = %v, want ErrTemporary", err)
	}
}

func TestNonValidatingResolver(t *testing.T) {
	s := world(t)
	s.SetValidating(false)
	ans, err := newResolver(s.Addr).Lookup(context.Background(), "secure.example", dns.TypeMX)
	must(t, err)
	if ans.Secure {
		t.Error("answer without AD is secure")
	}
}

func TestCache(t *testing.T) {
	s := world(t)
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	r := newResolver(s.Addr)
	r.Now = clock
	ctx := context.Background()

	t.Run("positive answers live for their TTL", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			_, err := r.Lookup(ctx, "secure.example", dns.TypeMX)
			must(t, err)
		}
		if n := s.Queries("secure.example", dns.TypeMX); n != 1 {
			t.Fatalf("queries = %d, want 1", n)
		}
		advance(301 * time.Second)
		_, err := r.Lookup(ctx, "secure.example", dns.TypeMX)
		must(t, err)
		if n := s.Queries("secure.example", dns.TypeMX); n != 2 {
			t.Fatalf("queries after TTL = %d, want 2", n)
		}
	})
	t.Run("negative answers live for the SOA minimum", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			if _, err := r.Lookup(ctx, "nope.secure.example", dns.TypeA); !errors.Is(err, dane.ErrNXDomain) {
				t.Fatal(err)
			}
		}
		if n := s.Queries("nope.secure.example", dns.TypeA); n != 1 {
			t.Fatalf("queries = %d, want 1", n)
		}
		advance(61 * time.Second) // the made-up SOA's minimum is 60
		r.Lookup(ctx, "nope.secure.example", dns.TypeA)
		if n := s.Queries("nope.secure.example", dns.TypeA); n != 2 {
			t.Fatalf("queries after negative TTL = %d, want 2", n)
		}
	})
	t.Run("failures are remembered briefly", func(t *testing.T) {
		s.SetFault("flaky.secure.example", dns.TypeA, testenv.FaultServfail)
		r.Lookup(ctx, "flaky.secure.example", dns.TypeA)
		r.Lookup(ctx, "flaky.secure.example", dns.TypeA)
		if n := s.Queries("flaky.secure.example", dns.TypeA); n != 1 {
			t.Fatalf("queries = %d, want 1", n)
		}
		advance(6 * time.Second)
		r.Lookup(ctx, "flaky.secure.example", dns.TypeA)
		if n := s.Queries("flaky.secure.example", dns.TypeA); n != 2 {
			t.Fatalf("queries after FailureTTL = %d, want 2", n)
		}
	})
	t.Run("concurrent look-ups share one query", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := r.Lookup(ctx, "mx.insecure.example", dns.TypeA); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if n := s.Queries("mx.insecure.example", dns.TypeA); n != 1 {
			t.Fatalf("queries = %d, want 1", n)
		}
	})
	t.Run("disabled cache asks every time", func(t *testing.T) {
		r := newResolver(s.Addr)
		r.CacheSize = -1
		before := s.Queries("mx.secure.example", dns.TypeAAAA)
		r.Lookup(ctx, "mx.secure.example", dns.TypeAAAA)
		r.Lookup(ctx, "mx.secure.example", dns.TypeAAAA)
		if n := s.Queries("mx.secure.example", dns.TypeAAAA) - before; n != 2 {
			t.Fatalf("queries = %d, want 2", n)
		}
	})
}

func TestCacheIsBounded(t *testing.T) {
	s := world(t)
	r := newResolver(s.Addr)
	r.CacheSize = 10
	for i := 0; i < 100; i++ {
		r.Lookup(context.Background(), fmt.Sprintf("n%d.secure.example", i), dns.TypeA)
	}
	// The first names were evicted: asking again reaches the server.
	before := s.Queries("n0.secure.example", dns.TypeA)
	for i := 0; i < 100; i++ {
		r.Lookup(context.Background(), fmt.Sprintf("n%d.secure.example", i), dns.TypeA)
	}
	if s.Queries("n0.secure.example", dns.TypeA) == before && s.Queries("n50.secure.example", dns.TypeA) == 1 {
		t.Error("a 10-entry cache kept 100 answers")
	}
}

func TestLookupHonoursContext(t *testing.T) {
	s := world(t)
	s.SetFault("", 0, testenv.FaultTimeout)
	r := newResolver(s.Addr)
	r.Timeout = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.Lookup(ctx, "secure.example", dns.TypeMX)
	if !errors.Is(err, dane.ErrTemporary) {
		t.Fatalf("err = %v, want ErrTemporary", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("Lookup ignored the context deadline")
	}
}

func TestLookupHost(t *testing.T) {
	s := world(t)
	ctx := context.Background()
	tests := []struct {
		name     string
		host     string
		setup    func()
		addrs    int
		secure   bool
		wantKind error
	}{
		{"both families, secure", "mx.secure.example", nil, 2, true, nil},
		{"IPv4 only, secure denial of AAAA", "v4only.secure.example", nil, 1, true, nil},
		{"insecure", "mx.insecure.example", nil, 1, false, nil},
		{"NXDOMAIN", "gone.secure.example", nil, 0, true, dane.ErrNXDomain},
		{"no address at all is no data", "secure.example", nil, 0, true, dane.ErrNoData},
		{"AAAA failing temporarily keeps A", "sub.deep.secure.example",
			func() { s.SetFault("sub.deep.secure.example", dns.TypeAAAA, testenv.FaultServfail) }, 1, true, nil},
		{"AAAA bogus fails the host", "v4only.secure.example",
			func() { s.SetFault("v4only.secure.example", dns.TypeAAAA, testenv.FaultBogus) }, 0, false, dane.ErrBogus},
		{"both temporary", "mx.insecure.example",
			func() { s.SetFault("mx.insecure.example", 0, testenv.FaultServfail) }, 0, false, dane.ErrTemporary},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			ans, err := newResolver(s.Addr).LookupHost(ctx, tc.host)
			if tc.wantKind != nil {
				if !errors.Is(err, tc.wantKind) {
					t.Fatalf("err = %v, want %v", err, tc.wantKind)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if ans == nil {
				if tc.addrs > 0 {
					t.Fatal("no answer")
				}
				return
			}
			if got := len(ans.Addrs()); got != tc.addrs {
				t.Errorf("addresses = %v, want %d", ans.Addrs(), tc.addrs)
			}
			if ans.Secure != tc.secure {
				t.Errorf("Secure = %v, want %v", ans.Secure, tc.secure)
			}
		})
	}
}

func TestResolvConf(t *testing.T) {
	s := world(t)
	dir := t.TempDir()
	write := func(text string) string {
		p := dir + "/resolv.conf"
		must(t, writeFile(p, text))
		return p
	}
	t.Run("nameserver from the file", func(t *testing.T) {
		r := &dane.Resolver{ResolvConf: write("# comment\nsearch example.org\nnameserver " + s.Addr + "\n")}
		ans, err := r.Lookup(context.Background(), "secure.example", dns.TypeMX)
		if err != nil || !ans.Secure {
			t.Fatalf("Lookup = %+v, %v", ans, err)
		}
	})
	t.Run("no nameserver", func(t *testing.T) {
		r := &dane.Resolver{ResolvConf: write("search example.org\n")}
		if _, err := r.Lookup(context.Background(), "secure.example", dns.TypeMX); err == nil || !strings.Contains(err.Error(), "no nameserver") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		r := &dane.Resolver{ResolvConf: dir + "/absent"}
		if _, err := r.Lookup(context.Background(), "secure.example", dns.TypeMX); err == nil {
			t.Fatal("no error for a missing resolv.conf")
		}
	})
	t.Run("bad address", func(t *testing.T) {
		r := &dane.Resolver{Servers: []dane.Server{{Addr: "resolver.example:53"}}}
		if _, err := r.Lookup(context.Background(), "secure.example", dns.TypeMX); err == nil {
			t.Fatal("no error for a resolver given by name")
		}
	})
}

func BenchmarkLookupCached(b *testing.B) {
	s, err := testenv.StartDNS()
	must(b, err)
	defer s.Close()
	must(b, s.Zone("example.", testenv.Secure, "example. 300 IN MX 10 mx.example."))
	r := newResolver(s.Addr)
	ctx := context.Background()
	if _, err := r.Lookup(ctx, "example", dns.TypeMX); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Lookup(ctx, "example.", dns.TypeMX); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkLookupUncached(b *testing.B) {
	s, err := testenv.StartDNS()
	must(b, err)
	defer s.Close()
	must(b, s.Zone("example.", testenv.Secure, "example. 300 IN MX 10 mx.example."))
	r := newResolver(s.Addr)
	r.CacheSize = -1
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := r.Lookup(ctx, "example.", dns.TypeMX); err != nil {
			b.Fatal(err)
		}
	}
}

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o644) }
