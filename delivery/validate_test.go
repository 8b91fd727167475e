package delivery

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string // "" means valid
	}{
		{"zero value is valid", Config{}, ""},
		{"EHLO name with a dot", Config{Hostname: "mta.example.org"}, ""},
		{"EHLO address literal", Config{Hostname: "[192.0.2.1]"}, ""},
		{"EHLO IPv6 literal", Config{Hostname: "[IPv6:2001:db8::1]"}, ""},
		{"EHLO name with a space", Config{Hostname: "mta example"}, "Hostname"},
		{"EHLO name with CRLF", Config{Hostname: "mta.example\r\nRCPT TO:<x@y>"}, "Hostname"},
		{"EHLO name with an empty label", Config{Hostname: "mta..example"}, "Hostname"},
		{"negative connection limit", Config{MaxConnsPerHost: -1}, "MaxConnsPerHost"},
		{"negative messages per connection", Config{MaxMessagesPerConn: -1}, "MaxMessagesPerConn"},
		{"negative timeout", Config{Timeouts: Timeouts{DataTerm: -time.Second}}, "Timeouts.DataTerm"},
		{"IPv6 source in the IPv4 field", Config{SourceIPv4: netip.MustParseAddr("2001:db8::1")}, "SourceIPv4"},
		{"IPv4 source in the IPv6 field", Config{SourceIPv6: netip.MustParseAddr("192.0.2.1")}, "SourceIPv6"},
		{"domain key with upper case", Config{Policy: LocalPolicy{Domains: map[string]DomainPolicy{"Example.com": {RequireTLS: true}}}}, `Policy.Domains["Example.com"]`},
		{"domain key with trailing dot", Config{Policy: LocalPolicy{Domains: map[string]DomainPolicy{"example.com.": {RequireTLS: true}}}}, `Policy.Domains["example.com."]`},
		{"domain key with U+212A KELVIN SIGN, which IDNA maps to k", Config{Policy: LocalPolicy{Domains: map[string]DomainPolicy{"\u212Aexample.com": {RequireTLS: true}}}}, "Policy.Domains[\"\u212Aexample.com\"]"},
		{"domain key in U-labels", Config{Policy: LocalPolicy{Domains: map[string]DomainPolicy{"bücher.example": {RequireTLS: true}}}}, `Policy.Domains["bücher.example"]`},
		{"domain key in A-labels", Config{Policy: LocalPolicy{Domains: map[string]DomainPolicy{"xn--bcher-kva.example": {RequireTLS: true}}}}, ""},
		{"domain key with a 64-octet label", Config{Policy: LocalPolicy{Domains: map[string]DomainPolicy{strings.Repeat("a", 64) + ".example": {RequireTLS: true}}}}, `Policy.Domains["` + strings.Repeat("a", 64) + `.example"]`},
		{"EHLO name with U+212A KELVIN SIGN", Config{Hostname: "mta.\u212Aexample"}, "Hostname"},
		{"next hop with a line break", Config{Policy: LocalPolicy{Default: DomainPolicy{NextHop: "relay.example\r\nRCPT TO:<x@y>"}}}, "Policy.Default.NextHop"},
		{"next hop with a tab", Config{Policy: LocalPolicy{Default: DomainPolicy{NextHop: "[relay\texample]:25"}}}, "Policy.Default.NextHop"},
		{"next hop with NUL", Config{Policy: LocalPolicy{Default: DomainPolicy{NextHop: "relay\x00.example"}}}, "Policy.Default.NextHop"},
		{"next hop with an empty label", Config{Policy: LocalPolicy{Default: DomainPolicy{NextHop: "relay..example"}}}, "Policy.Default.NextHop"},
		{"subdomain key", Config{Policy: LocalPolicy{Domains: map[string]DomainPolicy{".example.com": {RequireTLS: true}}}}, ""},
		{"unparsable next hop", Config{Policy: LocalPolicy{Domains: map[string]DomainPolicy{"example.com": {NextHop: "[127.0.0.1"}}}}, `Policy.Domains["example.com"].NextHop`},
		{"next hop address without brackets", Config{Policy: LocalPolicy{Default: DomainPolicy{NextHop: "127.0.0.1"}}}, "Policy.Default.NextHop"},
		{"override without a reason is never applied", Config{Policy: LocalPolicy{Default: DomainPolicy{Override: Override{IgnoreDANE: true}}}}, "Policy.Default.Override.Reason"},
		{"override that loosens nothing", Config{Policy: LocalPolicy{Default: DomainPolicy{Override: Override{Reason: "broken"}}}}, "Policy.Default.Override"},
		{"authentication beside an address next hop can never be met", Config{Policy: LocalPolicy{Domains: map[string]DomainPolicy{"example.com": {NextHop: "[127.0.0.1]:2525", RequireAuthenticated: true}}}}, `Policy.Domains["example.com"].RequireAuthenticated`},
		{"DANE only beside an address next hop can never be met", Config{Policy: LocalPolicy{Domains: map[string]DomainPolicy{"example.com": {NextHop: "[::1]", DANEOnly: true}}}}, `Policy.Domains["example.com"].DANEOnly`},
		{"authentication beside a named next hop applies to it", Config{Policy: LocalPolicy{Domains: map[string]DomainPolicy{"example.com": {NextHop: "[smtp.example]:587", RequireAuthenticated: true}}}}, ""},
		{"TLS beside an address next hop applies to it", Config{Policy: LocalPolicy{Domains: map[string]DomainPolicy{"example.com": {NextHop: "[127.0.0.1]:2525", RequireTLS: true}}}}, ""},
		{"override beside a next hop never applies", Config{Policy: LocalPolicy{Domains: map[string]DomainPolicy{"example.com": {NextHop: "relay.example", Override: Override{IgnoreMTASTS: true, Reason: "broken"}}}}}, `Policy.Domains["example.com"].Override`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field {
				t.Fatalf("Validate: %v, want a *ConfigError for %s", err, tc.field)
			}
			if !strings.Contains(err.Error(), "Config."+tc.field) {
				t.Errorf("message %q does not name Config.%s", err, tc.field)
			}
			if _, err := NewClient(tc.cfg); err == nil {
				t.Error("NewClient accepted the configuration Validate refused")
			}
		})
	}
}
