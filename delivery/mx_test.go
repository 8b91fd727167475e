package delivery

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"
	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/testenv"
)

func mxWorld(t *testing.T) *dane.Resolver {
	t.Helper()
	s, err := testenv.StartDNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	zones := []struct {
		origin string
		sec    testenv.Security
		rrs    []string
	}{
		{"secure.example.", testenv.Secure, []string{
			"@ 300 IN MX 20 mx2", "@ 300 IN MX 10 mx1", "@ 300 IN MX 30 mx3",
			"mx1 300 IN A 127.0.0.2", "mx2 300 IN A 127.0.0.3", "mx3 300 IN A 127.0.0.4",
		}},
		{"insecure.example.", testenv.Insecure, []string{"@ 300 IN MX 10 mx", "mx 300 IN A 127.0.0.5"}},
		{"equal.example.", testenv.Secure, []string{
			"@ 300 IN MX 10 a", "@ 300 IN MX 10 b", "@ 300 IN MX 10 c", "@ 300 IN MX 5 first",
		}},
		{"nullmx.example.", testenv.Secure, []string{"@ 300 IN MX 0 ."}},
		{"nullmixed.example.", testenv.Secure, []string{"@ 300 IN MX 0 .", "@ 300 IN MX 10 mx"}},
		{"implicit.example.", testenv.Secure, []string{"@ 300 IN A 127.0.0.6"}},
		{"implicit6.example.", testenv.Insecure, []string{"@ 300 IN AAAA ::1"}},
		{"noaddr.example.", testenv.Secure, []string{"@ 300 IN TXT \"nothing here\""}},
		{"literalmx.example.", testenv.Secure, []string{"@ 300 IN MX 10 192.0.2.1."}},
		{"dupmx.example.", testenv.Secure, []string{"@ 300 IN MX 20 mx", "@ 300 IN MX 10 MX"}},
		{"alias.example.", testenv.Secure, []string{"@ 300 IN CNAME implicit.example."}},
		{"bogus.example.", testenv.Bogus, []string{"@ 300 IN MX 10 mx"}},
	}
	for _, z := range zones {
		if err := s.Zone(z.origin, z.sec, z.rrs...); err != nil {
			t.Fatal(err)
		}
	}
	s.SetFault("servfail.example", dns.TypeMX, testenv.FaultServfail)
	s.SetFault("timeout.example", dns.TypeMX, testenv.FaultTimeout)
	s.SetFault("refused.example", dns.TypeMX, testenv.FaultRefused)
	return &dane.Resolver{Servers: []dane.Server{{Addr: s.Addr}}, Timeout: 50 * time.Millisecond, Attempts: 1}
}

func hostNames(r *MXRoute) []string {
	var out []string
	for _, h := range r.Hosts {
		out = append(out, h.Name)
	}
	return out
}

func noShuffle([]MXHost) {}

func TestResolveMX(t *testing.T) {
	r := mxWorld(t)
	tests := []struct {
		name     string
		domain   string
		hosts    []string
		secure   bool
		implicit bool
		code     int // 0: success
		enhanced smtp.EnhancedCode
	}{
		{"hosts ordered by preference", "secure.example", []string{"mx1.secure.example", "mx2.secure.example", "mx3.secure.example"}, true, false, 0, smtp.EnhancedCode{}},
		{"domain is case-insensitive, trailing dot ignored", "Secure.Example.", []string{"mx1.secure.example", "mx2.secure.example", "mx3.secure.example"}, true, false, 0, smtp.EnhancedCode{}},
		{"insecure MX RRset", "insecure.example", []string{"mx.insecure.example"}, false, false, 0, smtp.EnhancedCode{}},
		{"no MX, an A record: implicit MX", "implicit.example", []string{"implicit.example"}, true, true, 0, smtp.EnhancedCode{}},
		{"no MX, an AAAA record: implicit MX", "implicit6.example", []string{"implicit6.example"}, false, true, 0, smtp.EnhancedCode{}},
		{"CNAME to a domain without MX: implicit MX is the target", "alias.example", []string{"implicit.example"}, true, true, 0, smtp.EnhancedCode{}},
		{"null MX is permanent 5.1.10", "nullmx.example", nil, false, false, 556, smtp.EnhancedCode{5, 1, 10}},
		{"null MX beside real MX records is ignored", "nullmixed.example", []string{"mx.nullmixed.example"}, true, false, 0, smtp.EnhancedCode{}},
		{"NXDOMAIN is permanent 5.1.2", "nowhere.secure.example", nil, false, false, 550, smtp.EnhancedCode{5, 1, 2}},
		{"no MX and no address is permanent 5.1.2", "noaddr.example", nil, false, false, 550, smtp.EnhancedCode{5, 1, 2}},
		{"MX naming an IP address is unusable", "literalmx.example", nil, false, false, 550, smtp.EnhancedCode{5, 4, 4}},
		{"duplicate MX hosts are tried once, at the best preference", "dupmx.example", []string{"mx.dupmx.example"}, true, false, 0, smtp.EnhancedCode{}},
		{"SERVFAIL is temporary", "servfail.example", nil, false, false, 451, smtp.EnhancedCode{4, 4, 3}},
		{"timeout is temporary", "timeout.example", nil, false, false, 451, smtp.EnhancedCode{4, 4, 3}},
		{"REFUSED is temporary", "refused.example", nil, false, false, 451, smtp.EnhancedCode{4, 4, 3}},
		{"bogus is temporary", "bogus.example", nil, false, false, 451, smtp.EnhancedCode{4, 4, 3}},
		{"invalid domain is permanent", "exa_mple..com", nil, false, false, 550, smtp.EnhancedCode{5, 1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			route, err := resolveMX(context.Background(), r, tc.domain, false, noShuffle)
			if tc.code != 0 {
				var de *Error
				if !errors.As(err, &de) {
					t.Fatalf("err = %v (%T), want *Error %d", err, err, tc.code)
				}
				if de.Code != tc.code || de.Enhanced != tc.enhanced || de.Temporary != (tc.code/100 == 4) {
					t.Fatalf("err = %v, want %d %v", de, tc.code, tc.enhanced)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := hostNames(route); !slices.Equal(got, tc.hosts) {
				t.Errorf("hosts = %v, want %v", got, tc.hosts)
			}
			if route.Secure != tc.secure || route.Implicit != tc.implicit {
				t.Errorf("secure, implicit = %v, %v; want %v, %v", route.Secure, route.Implicit, tc.secure, tc.implicit)
			}
		})
	}
}

func TestEqualPreferencesAreShuffled(t *testing.T) {
	r := mxWorld(t)
	seen := map[string]bool{}
	for i := 0; i < 200 && len(seen) < 6; i++ {
		route, err := resolveMX(context.Background(), r, "equal.example", false, nil)
		if err != nil {
			t.Fatal(err)
		}
		names := hostNames(route)
		if names[0] != "first.equal.example" {
			t.Fatalf("the lower preference is not first: %v", names)
		}
		seen[names[1]+names[2]+names[3]] = true
	}
	if len(seen) < 2 {
		t.Errorf("equal preferences always came in the same order: %v", seen)
	}
}

func TestAddressLiterals(t *testing.T) {
	tests := []struct {
		domain string
		allow  bool
		want   string // address, or "" for a permanent failure
	}{
		{"[192.0.2.1]", true, "192.0.2.1"},
		{"[IPv6:2001:db8::1]", true, "2001:db8::1"},
		{"[ipv6:2001:db8::1]", true, "2001:db8::1"},
		{"[192.0.2.1]", false, ""},
		{"[2001:db8::1]", true, ""},           // IPv6 needs its tag
		{"[IPv6:192.0.2.1]", true, ""},        // and the tag needs IPv6
		{"[IPv6:::ffff:192.0.2.1]", true, ""}, // mapped addresses are IPv4 in disguise
		{"[192.0.2.1", true, ""},
		{"[999.0.2.1]", true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.domain, func(t *testing.T) {
			route, err := resolveMX(context.Background(), nil, tc.domain, tc.allow, nil)
			if tc.want == "" {
				var de *Error
				if !errors.As(err, &de) || de.Temporary {
					t.Fatalf("err = %v, want a permanent *Error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if route.Literal.String() != tc.want || len(route.Hosts) != 1 || route.Hosts[0].Name != tc.want {
				t.Errorf("route = %+v, want %s", route, tc.want)
			}
		})
	}
}
