package dane_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/testenv"
)

func TestCheckHealth(t *testing.T) {
	tests := []struct {
		name       string
		trust      dane.Trust
		setup      func(*testenv.DNSServer)
		daneUsable bool
		problem    string // a phrase the report must contain; "" for none
	}{
		{"validating loopback resolver", dane.TrustLoopback, nil, true, ""},
		{"resolver that does not validate", dane.TrustLoopback, func(s *testenv.DNSServer) { s.SetValidating(false) }, false, "does not validate DNSSEC"},
		{"resolver whose AD bit is not trusted", dane.TrustNever, nil, false, "does not trust its AD bit"},
		{"resolver that strips RRSIGs", dane.TrustLoopback, func(s *testenv.DNSServer) { s.SetStripRRSIG(true) }, true, "strips RRSIG"},
		{"resolver without TCP", dane.TrustLoopback, func(s *testenv.DNSServer) { s.SetTCP(false) }, true, "does not answer over TCP"},
		{"dead resolver", dane.TrustLoopback, func(s *testenv.DNSServer) { s.SetFault("", 0, testenv.FaultTimeout) }, false, "does not answer"},
		{"refusing resolver", dane.TrustLoopback, func(s *testenv.DNSServer) { s.SetFault("", 0, testenv.FaultRefused) }, false, "answers, but not the DNSSEC probe \".\" (rcode REFUSED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := testenv.StartDNS()
			must(t, err)
			t.Cleanup(s.Close)
			must(t, s.Zone(".", testenv.Secure))
			if tc.setup != nil {
				tc.setup(s)
			}
			r := &dane.Resolver{Servers: []dane.Server{{Addr: s.Addr, Trust: tc.trust}}, Timeout: 100 * time.Millisecond}
			rep, err := r.CheckHealth(context.Background(), "")
			must(t, err)
			if rep.DANEUsable() != tc.daneUsable {
				t.Errorf("DANEUsable = %v, want %v (%+v)", rep.DANEUsable(), tc.daneUsable, rep)
			}
			problems := strings.Join(rep.Problems(), "\n")
			if tc.problem == "" && problems != "" {
				t.Errorf("problems for a healthy resolver: %s", problems)
			}
			if tc.problem != "" && !strings.Contains(problems, tc.problem) {
				t.Errorf("problems = %q, want one mentioning %q", problems, tc.problem)
			}
		})
	}
}

// TestCheckHealthNamesIgnoredServers: the report of a list that mixes a
// trusted resolver and an untrusted one says plainly that the untrusted one
// is never asked, and does not probe it.
func TestCheckHealthNamesIgnoredServers(t *testing.T) {
	trusted, other := validatingServer(t), attackerServer(t)
	must(t, trusted.Zone(".", testenv.Secure))
	r := mixedResolver(trusted, other)
	rep, err := r.CheckHealth(context.Background(), "")
	must(t, err)
	if len(rep.Servers) != 1 || rep.Servers[0].Server != trusted.Addr {
		t.Errorf("Servers = %+v, want only the trusted resolver", rep.Servers)
	}
	if len(rep.Ignored) != 1 || rep.Ignored[0].Addr != other.Addr {
		t.Errorf("Ignored = %+v, want %s", rep.Ignored, other.Addr)
	}
	problems := strings.Join(rep.Problems(), "\n")
	if !strings.Contains(problems, "resolver "+other.Addr+" is never asked") {
		t.Errorf("problems = %q, want the ignored resolver named", problems)
	}
	if !rep.DANEUsable() {
		t.Errorf("DANEUsable = false with a validating trusted resolver")
	}
	if n := other.TotalQueries(); n != 0 {
		t.Errorf("the ignored resolver was probed %d times", n)
	}
}
