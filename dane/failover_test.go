package dane_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/testenv"
)

// failoverTLSA is a usable "3 1 1" record: the tests below only ask
// whether DANE applies, never connect.
var failoverTLSA = "3 1 1 " + strings.Repeat("ab", 32)

// validatingServer starts the trusted resolver of the failover tests: a
// signed domain whose MX hosts publish TLSA records, one per way a DANE
// decision depends on the DNS.
//
//	mx4      IPv4 only, TLSA at _25._tcp.mx4
//	mx6      IPv6 only, TLSA at _25._tcp.mx6
//	dual     both families, TLSA at _25._tcp.dual
//	alias    CNAME to mx.provider.example (signed), whose TLSA records
//	         are the only ones: the expanded name is the base domain
//	tounsigned  CNAME into an unsigned zone, TLSA at _25._tcp.tounsigned:
//	         DANE applies only if the CNAME link itself is secure
func validatingServer(t *testing.T) *testenv.DNSServer {
	t.Helper()
	s, err := testenv.StartDNS()
	must(t, err)
	t.Cleanup(s.Close)
	must(t, s.Zone("secure.example.", testenv.Secure,
		"secure.example. 300 IN MX 10 mx4.secure.example.",
		"mx4 300 IN A 127.0.0.2",
		"_25._tcp.mx4 300 IN TLSA "+failoverTLSA,
		"mx6 300 IN AAAA ::1",
		"_25._tcp.mx6 300 IN TLSA "+failoverTLSA,
		"dual 300 IN A 127.0.0.2",
		"dual 300 IN AAAA ::1",
		"_25._tcp.dual 300 IN TLSA "+failoverTLSA,
		"alias 300 IN CNAME mx.provider.example.",
		"tounsigned 300 IN CNAME mx.unsigned.example.",
		"_25._tcp.tounsigned 300 IN TLSA "+failoverTLSA,
	))
	must(t, s.Zone("provider.example.", testenv.Secure,
		"mx 300 IN A 127.0.0.3",
		"_25._tcp.mx 300 IN TLSA "+failoverTLSA,
	))
	must(t, s.Zone("unsigned.example.", testenv.Insecure, "mx 300 IN A 127.0.0.4"))
	return s
}

// attackerServer starts the untrusted resolver an attacker controls (or
// answers for): the same names, unsigned, without a TLSA record, and the
// MX pointing at the attacker's host. Read as insecure, any of its answers
// would say "DANE does not apply".
func attackerServer(t *testing.T) *testenv.DNSServer {
	t.Helper()
	s, err := testenv.StartDNS()
	must(t, err)
	t.Cleanup(s.Close)
	must(t, s.Zone("secure.example.", testenv.Insecure,
		"secure.example. 300 IN MX 10 mx.attacker.example.",
		"mx4 300 IN A 127.0.0.66",
		"mx6 300 IN AAAA ::1",
		"dual 300 IN A 127.0.0.66",
		"dual 300 IN AAAA ::1",
		"alias 300 IN CNAME mx.provider.example.",
		"tounsigned 300 IN CNAME mx.unsigned.example.",
	))
	must(t, s.Zone("provider.example.", testenv.Insecure, "mx 300 IN A 127.0.0.66"))
	must(t, s.Zone("unsigned.example.", testenv.Insecure, "mx 300 IN A 127.0.0.66"))
	must(t, s.Zone("attacker.example.", testenv.Insecure, "mx 300 IN A 127.0.0.66"))
	return s
}

// mixedResolver is the everyday layout of resolv.conf: a validating
// resolver on loopback first, an untrusted one (the router) second. The
// untrusted one is on loopback too, as tests must be, and marked
// TrustNever to stand for a resolver across the network.
func mixedResolver(trusted, untrusted *testenv.DNSServer) *dane.Resolver {
	return &dane.Resolver{
		Servers: []dane.Server{
			{Addr: trusted.Addr},
			{Addr: untrusted.Addr, Trust: dane.TrustNever},
		},
		// Long enough for a loaded machine never to time out an answer
		// that comes; only the injected timeouts wait for it.
		Timeout:  time.Second,
		Attempts: 1,
	}
}

// TestTrustedFailureIsNotFailedOver: an answer from a resolver that is not
// trusted to validate can never prove a name unsigned while a trusted one
// is configured. For every kind of failure of the trusted resolver, on
// every question a DANE decision depends on, the look-up is a temporary
// failure (or, where another secure answer suffices, DANE still applies) —
// never "DANE does not apply" from the attacker's insecure answer — and
// the untrusted resolver is never asked.
func TestTrustedFailureIsNotFailedOver(t *testing.T) {
	faults := []testenv.Fault{
		testenv.FaultServfail, testenv.FaultBogus, testenv.FaultRefused,
		testenv.FaultNotImp, testenv.FaultTimeout, testenv.FaultJunk,
	}
	questions := []struct {
		name      string
		faultOn   string // the name whose question fails
		qtype     uint16
		host      string // the MX host whose DANE requirement is asked; "" for the MX question
		noChase   bool   // the trusted resolver does not follow CNAMEs itself
		stillDANE bool   // the other address family's secure answer keeps DANE in force
	}{
		{name: "MX", faultOn: "secure.example", qtype: dns.TypeMX},
		{name: "A of an IPv4-only host", faultOn: "mx4.secure.example", qtype: dns.TypeA, host: "mx4.secure.example"},
		{name: "AAAA of an IPv6-only host", faultOn: "mx6.secure.example", qtype: dns.TypeAAAA, host: "mx6.secure.example"},
		{name: "A of a dual-stack host", faultOn: "dual.secure.example", qtype: dns.TypeA, host: "dual.secure.example", stillDANE: true},
		{name: "CNAME target", faultOn: "mx.provider.example", qtype: dns.TypeA, host: "alias.secure.example", noChase: true},
		{name: "CNAME link of an insecure chain", faultOn: "tounsigned.secure.example", qtype: dns.TypeCNAME, host: "tounsigned.secure.example"},
		{name: "TLSA", faultOn: "_25._tcp.mx4.secure.example", qtype: dns.TypeTLSA, host: "mx4.secure.example"},
	}
	for _, q := range questions {
		for _, fault := range faults {
			t.Run(q.name+"/"+fault.String(), func(t *testing.T) {
				t.Parallel()
				trusted, attacker := validatingServer(t), attackerServer(t)
				trusted.SetChaseCNAME(!q.noChase)
				trusted.SetFault(q.faultOn, q.qtype, fault)
				r := mixedResolver(trusted, attacker)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if q.host == "" {
					ans, err := r.Lookup(ctx, "secure.example", dns.TypeMX)
					var de *dane.DNSError
					if ans != nil || !errors.As(err, &de) || !de.Temporary() {
						t.Errorf("Lookup MX = %+v, %v; want a temporary failure", ans, err)
					}
				} else {
					req, err := (&dane.Discovery{Resolver: r}).Lookup(ctx, q.host, true)
					switch {
					// A bogus family makes the whole host bogus (a
					// validator saw its data forged): never DANE from the
					// other family then, but a temporary failure.
					case q.stillDANE && fault != testenv.FaultBogus:
						if err != nil || req.Outcome != dane.AuthenticationRequired {
							t.Errorf("Lookup = %+v, %v; want DANE from the other family's secure answer", req, err)
						}
					default:
						var re *dane.RequirementError
						if req != nil || !errors.As(err, &re) || !re.Temporary() {
							t.Errorf("Lookup = %+v, %v; want a temporary *RequirementError", req, err)
						}
					}
				}
				if trusted.Queries(q.faultOn, q.qtype) == 0 {
					t.Errorf("the failing question %s %s never reached the trusted resolver", q.faultOn, dns.TypeToString[q.qtype])
				}
				if n := attacker.TotalQueries(); n != 0 {
					t.Errorf("the untrusted resolver was asked %d questions", n)
				}
			})
		}
	}
}

// TestFailoverAmongTrusted: trusted resolvers still stand in for each
// other; the untrusted one is not asked even then.
func TestFailoverAmongTrusted(t *testing.T) {
	broken, good, attacker := validatingServer(t), validatingServer(t), attackerServer(t)
	broken.SetFault("", 0, testenv.FaultServfail)
	r := &dane.Resolver{Servers: []dane.Server{
		{Addr: broken.Addr},
		{Addr: attacker.Addr, Trust: dane.TrustNever},
		{Addr: good.Addr},
	}, Timeout: time.Second, Attempts: 1}
	req, err := (&dane.Discovery{Resolver: r}).Lookup(context.Background(), "mx4.secure.example", true)
	if err != nil || req.Outcome != dane.AuthenticationRequired {
		t.Fatalf("Lookup = %+v, %v; want DANE from the second trusted resolver", req, err)
	}
	if broken.TotalQueries() == 0 {
		t.Error("the first trusted resolver was never asked")
	}
	if n := attacker.TotalQueries(); n != 0 {
		t.Errorf("the untrusted resolver was asked %d questions", n)
	}
}

// TestUntrustedOnlyFailsOver: with no trusted resolver configured every
// answer is insecure anyway, so the untrusted resolvers fail over among
// themselves as before.
func TestUntrustedOnlyFailsOver(t *testing.T) {
	for _, fault := range []testenv.Fault{testenv.FaultServfail, testenv.FaultRefused, testenv.FaultTimeout, testenv.FaultJunk} {
		t.Run(fault.String(), func(t *testing.T) {
			broken, good := attackerServer(t), attackerServer(t)
			broken.SetFault("", 0, fault)
			r := &dane.Resolver{Servers: []dane.Server{
				{Addr: broken.Addr, Trust: dane.TrustNever},
				{Addr: good.Addr, Trust: dane.TrustNever},
			}, Timeout: 200 * time.Millisecond, Attempts: 1}
			ans, err := r.Lookup(context.Background(), "secure.example", dns.TypeMX)
			if err != nil || ans.Secure || len(ans.MX()) != 1 {
				t.Fatalf("Lookup = %+v, %v; want the second resolver's insecure answer", ans, err)
			}
			if len(r.IgnoredServers()) != 0 {
				t.Errorf("IgnoredServers = %v with no trusted resolver", r.IgnoredServers())
			}
		})
	}
}

// TestIgnoredServers: a list that mixes trusted and untrusted resolvers
// names the untrusted ones and says why they are not asked.
func TestIgnoredServers(t *testing.T) {
	tests := []struct {
		name    string
		servers []dane.Server
		want    []string // addresses, in order
		reason  string   // a phrase every reason contains
	}{
		{"trusted only", []dane.Server{{Addr: "127.0.0.53"}, {Addr: "192.0.2.1", Trust: dane.TrustAlways}}, nil, ""},
		{"untrusted only", []dane.Server{{Addr: "192.0.2.1"}, {Addr: "127.0.0.1", Trust: dane.TrustNever}}, nil, ""},
		{"loopback then router", []dane.Server{{Addr: "127.0.0.53"}, {Addr: "192.0.2.1"}},
			[]string{"192.0.2.1:53"}, "not on loopback"},
		{"router first", []dane.Server{{Addr: "192.0.2.1:5353"}, {Addr: "::1"}},
			[]string{"192.0.2.1:5353"}, "not on loopback"},
		{"loopback marked TrustNever", []dane.Server{{Addr: "127.0.0.1", Trust: dane.TrustNever}, {Addr: "127.0.0.53"}},
			[]string{"127.0.0.1:53"}, "TrustNever"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &dane.Resolver{Servers: tc.servers}
			got := r.IgnoredServers()
			if len(got) != len(tc.want) {
				t.Fatalf("IgnoredServers = %v, want %v", got, tc.want)
			}
			for i, s := range got {
				if s.Addr != tc.want[i] {
					t.Errorf("IgnoredServers[%d].Addr = %q, want %q", i, s.Addr, tc.want[i])
				}
				if !strings.Contains(s.Reason, tc.reason) || !strings.Contains(s.Reason, "127.0.0.53:53") && !strings.Contains(s.Reason, "[::1]:53") {
					t.Errorf("reason %q: want it to contain %q and name the trusted resolver", s.Reason, tc.reason)
				}
			}
		})
	}
}
