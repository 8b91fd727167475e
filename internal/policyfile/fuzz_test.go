package policyfile

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/internal/dnsname"
	"github.com/sealpost/sealpost/sts"
)

// FuzzParse checks that no file makes the parser panic, that every error
// is an *Error located inside the file, and that what it accepts is
// normalised as delivery expects.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"default": {"require_tls": true}}`,
		`{"domains": {"example.com": {"mta_sts": {"mode": "enforce", "mx": ["*.example.com"]}}}}`,
		`{"domains": {".example.net": {"dane_only": true, "override": {"ignore_dane": true, "reason": "r"}}}}`,
		`{"domains": {"a.example": {"source_ipv4": "192.0.2.1", "next_hop": "[h]:25"}}}`,
		`{"domains": {"xn--bcher-kva.example": {}}}`,
		`{"domains": {"a.example": {}, "a.example": {}}}`,
		"{\"domains\": {\n\"a.example\": {\"requre_tls\": true}}}",
		`{"default": {"mta_sts": {"mode": "testing", "mx": ["mx.a.example", 1]}}}`,
		"{\"domains\": {\"b\u00fccher.example\": {}, \"\u212Aelvin.example\": {}, \"kelvin.example\": {}}}",
		`{"domains": {"` + strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61) + `": {}}}`,
		`{"domains": {"` + strings.Repeat("a", 64) + `.example": {}, "a..b": {}, " .x": {}}}`,
		`{"domains": {"a.example": {"next_hop": "relay.example\r\n", "require_authenticated": true}}}`,
		`[]`, `null`, `{"domains": null}`, `{"domains": {"a.example": {`, `{} {}`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lp, err := Parse(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			lines := bytes.Count(data, []byte("\n")) + 1
			if e.Line < 1 || e.Line > lines || e.Column < 1 || e.Reason == "" {
				t.Errorf("error %q at %d:%d in a file of %d lines", err, e.Line, e.Column, lines)
			}
			return
		}
		// What the file accepts, delivery accepts.
		if err := (&delivery.Config{Policy: lp}).Validate(); err != nil {
			t.Errorf("Parse accepted a policy delivery refuses: %v", err)
		}
		for k, dp := range lp.Domains {
			if c, err := dnsname.Canonical(strings.TrimPrefix(k, ".")); err != nil || c != strings.TrimPrefix(k, ".") {
				t.Errorf("key %q is not a canonical domain name (%q, %v)", k, c, err)
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
