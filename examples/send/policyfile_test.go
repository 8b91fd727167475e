package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/sts"
)

func TestParsePolicy(t *testing.T) {
	t.Run("every rule is carried over", func(t *testing.T) {
		lp, err := parsePolicy([]byte(`{
			"default": {"require_tls": true},
			"domains": {
				"Example.COM.": {
					"require_authenticated": true,
					"mta_sts": {"mode": "enforce", "mx": ["mx1.example.com", "*.mail.example.com."]},
					"next_hop": " [relay.example.net]:2525 ",
					"source_ipv4": "192.0.2.1", "source_ipv6": "2001:db8::1"
				},
				".example.net": {"dane_only": true},
				"broken.example": {"override": {"ignore_dane": true, "reason": "stale TLSA", "until": "2025-07-01T00:00:00Z"}}
			}
		}`))
		if err != nil {
			t.Fatal(err)
		}
		if !lp.Default.RequireTLS {
			t.Error("default require_tls lost")
		}
		ex, ok := lp.Domains["example.com"]
		if !ok {
			t.Fatalf("example.com not normalised: keys %v", keys(lp.Domains))
		}
		if !ex.RequireAuthenticated || ex.NextHop != "[relay.example.net]:2525" ||
			ex.SourceIPv4.String() != "192.0.2.1" || ex.SourceIPv6.String() != "2001:db8::1" {
			t.Errorf("example.com rules: %+v", ex)
		}
		if p := ex.Preloaded; p == nil || p.Mode != sts.ModeEnforce || !p.Match("mx1.example.com") || !p.Match("a.mail.example.com") || p.Match("mx2.example.com") {
			t.Errorf("preloaded policy %+v does not match as written", p)
		}
		if !lp.Domains[".example.net"].DANEOnly {
			t.Error("subdomain key .example.net lost")
		}
		o := lp.Domains["broken.example"].Override
		if !o.IgnoreDANE || o.IgnoreMTASTS || o.Reason != "stale TLSA" || !o.Until.Equal(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("override %+v", o)
		}
	})

	for _, tc := range []struct{ name, file, want string }{
		{"a misspelt field is an error, not a dropped rule", `{"domains": {"a.example": {"requre_tls": true}}}`, "requre_tls"},
		{"a misspelt top-level key is an error", `{"domain": {}}`, "domain"},
		{"trailing data is an error", `{"domains": {}} {"domains": {}}`, "after the JSON object"},
		{"not JSON", `require_tls: true`, "not valid JSON"},
		{"a wrong type is an error", `{"domains": {"a.example": {"require_tls": "yes"}}}`, "not valid JSON"},
		{"a U-label domain must be an A-label", `{"domains": {"bücher.example": {"require_tls": true}}}`, "A-labels"},
		{"an empty domain key", `{"domains": {"": {"require_tls": true}}}`, "empty domain"},
		{"a label over 63 characters", `{"domains": {"` + strings.Repeat("a", 64) + `.example": {}}}`, "1 to 63"},
		{"a hyphen at a label's edge", `{"domains": {"-a.example": {}}}`, "hyphen"},
		{"an underscore", `{"domains": {"a_b.example": {}}}`, "not allowed"},
		{"two keys for one domain", `{"domains": {"a.example": {}, "A.example.": {}}}`, "same domain"},
		{"mta_sts mode none does nothing", `{"domains": {"a.example": {"mta_sts": {"mode": "none", "mx": ["mx.a.example"]}}}}`, `want "enforce" or "testing"`},
		{"mta_sts without mx patterns", `{"domains": {"a.example": {"mta_sts": {"mode": "enforce"}}}}`, "no mx patterns"},
		{"mta_sts with an invalid pattern (RFC 8461 §4.1)", `{"domains": {"a.example": {"mta_sts": {"mode": "enforce", "mx": ["mx.a.example", "*.*.a.example"]}}}}`, `"*.*.a.example"`},
		{"mta_sts with an address as mx", `{"domains": {"a.example": {"mta_sts": {"mode": "testing", "mx": ["192.0.2.1"]}}}}`, "mta_sts"},
		{"mta_sts mx with a line break", `{"domains": {"a.example": {"mta_sts": {"mode": "enforce", "mx": ["mx.a.example\nmode: none"]}}}}`, "line break"},
		{"an override needs a reason", `{"domains": {"a.example": {"override": {"ignore_dane": true}}}}`, "reason is required"},
		{"an override that ignores nothing", `{"domains": {"a.example": {"override": {"reason": "x"}}}}`, "would do nothing"},
		{"an override with a bad until", `{"domains": {"a.example": {"override": {"ignore_mta_sts": true, "reason": "x", "until": "tomorrow"}}}}`, "RFC 3339"},
		{"source_ipv4 of the wrong family", `{"domains": {"a.example": {"source_ipv4": "2001:db8::1"}}}`, "not an IPv4"},
		{"source_ipv6 that is no address", `{"domains": {"a.example": {"source_ipv6": "mx.a.example"}}}`, "not an IP"},
		{"default rules are checked too", `{"default": {"override": {"ignore_dane": true}}}`, "default.override"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePolicy([]byte(tc.file))
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v, want a *PolicyError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}

	t.Run("an empty object is no rules", func(t *testing.T) {
		lp, err := parsePolicy([]byte(`{}`))
		if err != nil || lp.Domains != nil || lp.Default.RequireTLS {
			t.Errorf("got %+v, %v; want no rules", lp, err)
		}
	})
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// FuzzParsePolicy checks that no file makes the parser panic, and that
// what it accepts is normalised as delivery expects.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"default": {"require_tls": true}}`,
		`{"domains": {"example.com": {"mta_sts": {"mode": "enforce", "mx": ["*.example.com"]}}}}`,
		`{"domains": {".example.net": {"dane_only": true, "override": {"ignore_dane": true, "reason": "r"}}}}`,
		`{"domains": {"a.example": {"source_ipv4": "192.0.2.1", "next_hop": "[h]:25"}}}`,
		`{"domains": {"xn--bcher-kva.example": {}}}`,
		`[]`, `null`, `{"domains": null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lp, err := parsePolicy(data)
		if err != nil {
			return
		}
		for k, dp := range lp.Domains {
			if k != strings.ToLower(k) || strings.HasSuffix(k, ".") || k == "" {
				t.Errorf("key %q not normalised", k)
			}
			if dp.Override.Reason == "" && (dp.Override.IgnoreDANE || dp.Override.IgnoreMTASTS) {
				t.Errorf("override without a reason accepted for %q", k)
			}
			if p := dp.Preloaded; p != nil && (len(p.MX) == 0 || p.Mode == sts.ModeNone) {
				t.Errorf("useless preloaded policy accepted for %q: %+v", k, p)
			}
		}
	})
}
