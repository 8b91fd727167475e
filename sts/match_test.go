package sts

import (
	"errors"
	"strings"
	"testing"
)

func TestPolicyMatch(t *testing.T) {
	p := &Policy{Mode: ModeEnforce, MX: []string{"mail.example.com", "*.example.net", "192.0.2.1", "*.0.2.2"}}
	tests := []struct {
		name string
		host string
		want bool
	}{
		{"exact name", "mail.example.com", true},
		{"exact name, other case", "MAIL.Example.COM", true},
		{"exact name with trailing dot", "mail.example.com.", true},
		{"exact pattern does not match a subdomain", "a.mail.example.com", false},
		{"exact pattern does not match the parent", "example.com", false},
		{"other name", "mail.example.org", false},
		{"wildcard matches one extra label", "a.example.net", true},
		{"wildcard matches one extra label, other case and trailing dot", "MX1.EXAMPLE.NET.", true},
		{"wildcard does not match the bare domain", "example.net", false},
		{"wildcard does not match two extra labels", "a.b.example.net", false},
		{"wildcard does not match an empty label", ".example.net", false},
		{"wildcard does not match a suffix that is not a label", "aexample.net", false},
		{"IP mx value never matches", "192.0.2.1", false},
		{"IP host never matches a wildcard", "192.0.2.2", false},
		{"IPv6 host never matches", "::1", false},
		{"address literal never matches", "[192.0.2.1]", false},
		{"empty host", "", false},
		{"a dot alone", ".", false},
		{"Kelvin sign is not k", "mail.example.\u212aom", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Match(tt.host); got != tt.want {
				t.Fatalf("Match(%q) = %v, want %v", tt.host, got, tt.want)
			}
		})
	}
}

// TestPolicyMatchWildcard runs the cases through the parser, so the
// pattern is what a real policy yields.
func TestPolicyMatchWildcard(t *testing.T) {
	p, err := ParsePolicy(policyLines("version: STSv1", "mode: enforce", "mx: *.Example.com", "max_age: 60"))
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"example.com":     false,
		"a.example.com":   true,
		"a.b.example.com": false,
	} {
		if got := p.Match(host); got != want {
			t.Errorf("*.example.com vs %s: %v, want %v", host, got, want)
		}
	}
}

func TestPolicyMatchDoesNotAllocate(t *testing.T) {
	p := &Policy{MX: []string{"mx1.example.com", "*.example.net"}}
	allocs := testing.AllocsPerRun(100, func() {
		p.Match("MX.Example.NET.")
		p.Match("other.example.org")
	})
	if allocs != 0 {
		t.Fatalf("Match allocates %v times per call pair", allocs)
	}
}

func TestNormalizeDomain(t *testing.T) {
	tests := []struct {
		in, want string // want empty: invalid
	}{
		{"example.com", "example.com"},
		{"Example.COM.", "example.com"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"localhost", "localhost"},
		{"", ""},
		{".", ""},
		{"exa mple.com", ""},
		{"bücher.example", ""},
		{"192.0.2.1", ""},
		{"[192.0.2.1]", ""},
		{"a..b", ""},
		{"-a.example", ""},
		{strings.Repeat("a.", 122) + "com", ""}, // 247 octets: _mta-sts. would not fit
	}
	for _, tt := range tests {
		got, err := normalizeDomain(tt.in)
		if tt.want == "" {
			if err == nil || !errors.Is(err, ErrInvalidDomain) {
				t.Errorf("normalizeDomain(%q) = %q, %v; want ErrInvalidDomain", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("normalizeDomain(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
