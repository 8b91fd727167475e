package policyfile

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/sts"
)

func TestParse(t *testing.T) {
	t.Run("every rule is carried over", func(t *testing.T) {
		lp, err := Parse([]byte(`{
			"default": {"require_tls": true},
			"domains": {
				"Example.COM.": {
					"require_authenticated": true,
					"mta_sts": {"mode": "enforce", "mx": ["mx1.example.com", "*.mail.example.com."]},
					"next_hop": " [relay.example.net]:2525 ",
					"source_ipv4": "192.0.2.1", "source_ipv6": "2001:db8::1"
				},
				".example.net": {"dane_only": true},
				"Bücher.Example": {"require_tls": true},
				"_under-score.example": {"require_tls": true},
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
			t.Fatalf("example.com not normalised: %v", lp.Domains)
		}
		if !ex.RequireAuthenticated || ex.NextHop != "[relay.example.net]:2525" ||
			ex.SourceIPv4.String() != "192.0.2.1" || ex.SourceIPv6.String() != "2001:db8::1" {
			t.Errorf("example.com rules: %+v", ex)
		}
		if p := ex.Preloaded; p == nil || p.Mode != sts.ModeEnforce || !p.Match("mx1.example.com") ||
			!p.Match("a.mail.example.com") || p.Match("mx2.example.com") {
			t.Errorf("preloaded policy %+v does not match as written", p)
		}
		// U-labels are keyed by their A-labels, as delivery looks them up;
		// the tolerances of dnsname (underscores, hyphens at a label's
		// edge) hold here too.
		if !lp.Domains["xn--bcher-kva.example"].RequireTLS || !lp.Domains["_under-score.example"].RequireTLS {
			t.Errorf("internationalised or tolerated keys lost: %v", slices.Collect(maps.Keys(lp.Domains)))
		}
		if !lp.Domains[".example.net"].DANEOnly {
			t.Error("subdomain key .example.net lost")
		}
		o := lp.Domains["broken.example"].Override
		if !o.IgnoreDANE || o.IgnoreMTASTS || o.Reason != "stale TLSA" || !o.Until.Equal(time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("override %+v", o)
		}
	})

	t.Run("an empty object is no rules", func(t *testing.T) {
		lp, err := Parse([]byte(`{}`))
		if err != nil || lp.Domains != nil || lp.Default != (delivery.DomainPolicy{}) {
			t.Errorf("got %+v, %v; want no rules", lp, err)
		}
	})

	t.Run("null stands for none where a value is optional", func(t *testing.T) {
		lp, err := Parse([]byte(`{"default": null, "domains": {"a.example": {"mta_sts": null, "override": null}}}`))
		if err != nil {
			t.Fatal(err)
		}
		if dp := lp.Domains["a.example"]; dp.Preloaded != nil || dp.Override.IgnoreDANE {
			t.Errorf("a.example rules %+v, want none", dp)
		}
	})
}

// TestParseErrors checks that each fault is refused with the setting at
// fault and its line and column: the files are written one setting a
// line, so that the position is plain to see.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		file string
		// line and column of the error, the field named and a part of
		// the reason
		line, col     int
		field, reason string
	}{
		{"a misspelt field is an error, not a dropped rule",
			"{\"domains\": {\n  \"a.example\": {\n    \"requre_tls\": true}}}", 3, 5, `domains["a.example"]`, `unknown field "requre_tls" (want one of dane_only, mta_sts,`},
		{"a field name matches exactly, not case-insensitively",
			"{\"domains\": {\"a.example\": {\n\"Require_TLS\": true}}}", 2, 1, `domains["a.example"]`, `unknown field "Require_TLS"`},
		{"a misspelt top-level key is an error",
			"{\n  \"domain\": {}}", 2, 3, "", `unknown field "domain" (want one of default, domains)`},
		{"a key given twice is an error, not the last one winning",
			"{\"domains\": {\"a.example\": {\n\"require_tls\": true,\n\"require_tls\": false}}}", 3, 1, `domains["a.example"].require_tls`, "given twice"},
		{"a domain given twice is an error",
			"{\"domains\": {\n\"a.example\": {\"dane_only\": true},\n\"a.example\": {}}}", 3, 1, `domains["a.example"]`, "given twice"},
		{"two keys for one domain",
			"{\"domains\": {\n\"a.example\": {},\n\"A.example.\": {}}}", 3, 1, `domains["A.example."]`, `the same domain as "a.example"`},
		{"trailing data is an error",
			"{\"domains\": {}}\n{\"domains\": {}}", 2, 1, "", "unexpected an object after the JSON object"},
		{"not JSON",
			"require_tls: true", 1, 1, "", "not valid JSON: invalid character 'r'"},
		{"a syntax error deep in the file",
			"{\"domains\": {\n  \"a.example\": {\n    \"require_tls\": tru}}}", 3, 23, "", "not valid JSON: invalid character '}'"},
		{"a file cut short",
			"{\"domains\": {\n  \"a.example\": {", 2, 17, "", "the file ends inside a value"},
		{"an empty file",
			"", 1, 1, "", "the file is empty"},
		{"the top level must be an object",
			"[]", 1, 1, "", "want an object, found a list"},
		{"a wrong type is an error, located at the value",
			"{\"domains\": {\"a.example\": {\n\"require_tls\": \"yes\"}}}", 2, 16, `domains["a.example"].require_tls`, "want true or false, found a string"},
		{"null is not false",
			"{\"default\": {\n\"dane_only\": null}}", 2, 14, "default.dane_only", "want true or false, found null"},
		{"mx must be a list of strings",
			"{\"default\": {\"mta_sts\": {\"mode\": \"enforce\",\n\"mx\": [\"mx.a.example\", 7]}}}", 2, 24, "default.mta_sts.mx[1]", "want a string, found a number"},
		{"a number is not a rule",
			"{\"domains\": {\n\"a.example\": 1}}", 2, 14, `domains["a.example"]`, "want an object, found a number"},
		// What delivery's Config.Validate refuses, the file refuses, at
		// the setting (FuzzParse found a next hop of "!" accepted).
		{"a next hop that is no host name",
			"{\"domains\": {\"A.example.\": {\n\"next_hop\": \"!\"}}}", 2, 1, `domains["A.example."].next_hop`, "is not a host name"},
		{"a default next hop with a line break",
			"{\"default\": {\"next_hop\": \"relay.example\\r\\nRCPT\"}}", 1, 14, "default.next_hop", "is not a host name"},
		{"authentication beside an address next hop can never be met",
			"{\"domains\": {\"a.example\": {\"next_hop\": \"[127.0.0.1]:2525\",\n \"require_authenticated\": true}}}", 2, 2, `domains["a.example"].require_authenticated`, "never"},
		{"an empty domain key",
			`{"domains": {"": {"require_tls": true}}}`, 1, 14, `domains[""]`, "empty"},
		{"a label over 63 characters",
			`{"domains": {"` + strings.Repeat("a", 64) + `.example": {}}}`, 1, 14, "", "a label of 64 octets, over 63"},
		{"an empty label",
			`{"domains": {"a..example": {}}}`, 1, 14, `domains["a..example"]`, "empty label"},
		{"a space",
			`{"domains": {"a b.example": {}}}`, 1, 14, `domains["a b.example"]`, "domain name"},
		{"U+212A KELVIN SIGN and k are the same domain, by IDNA's mapping",
			"{\"domains\": {\"kelvin.example\": {},\n\"\u212Aelvin.example\": {}}}", 2, 1, "domains[\"\u212Aelvin.example\"]", `the same domain as "kelvin.example"`},
		{"mta_sts mode none does nothing",
			"{\"domains\": {\"a.example\": {\"mta_sts\": {\n\"mode\": \"none\", \"mx\": [\"mx.a.example\"]}}}}", 2, 1, `domains["a.example"].mta_sts.mode`, `"none": want "enforce" or "testing"`},
		{"mta_sts without a mode is located at mta_sts",
			"{\"domains\": {\"a.example\": {\n\"mta_sts\": {\"mx\": [\"mx.a.example\"]}}}}", 2, 1, `domains["a.example"].mta_sts.mode`, `"": want "enforce"`},
		{"mta_sts without mx patterns",
			"{\"domains\": {\"a.example\": {\n\"mta_sts\": {\"mode\": \"enforce\"}}}}", 2, 1, `domains["a.example"].mta_sts.mx`, "no mx patterns"},
		{"mta_sts with an invalid pattern (RFC 8461 §4.1)",
			"{\"domains\": {\"a.example\": {\"mta_sts\": {\"mode\": \"enforce\", \"mx\": [\n\"mx.a.example\",\n\"*.*.a.example\"]}}}}", 3, 1, `domains["a.example"].mta_sts.mx[1]`, `"*.*.a.example" is not a host name`},
		{"mta_sts with an address as mx",
			"{\"domains\": {\"a.example\": {\"mta_sts\": {\"mode\": \"testing\", \"mx\": [\"192.0.2.1\"]}}}}", 1, 66, `domains["a.example"].mta_sts.mx[0]`, "not a host name"},
		{"mta_sts mx with a line break",
			`{"domains": {"a.example": {"mta_sts": {"mode": "enforce", "mx": ["mx.a.example\nmode: none"]}}}}`, 1, 66, `domains["a.example"].mta_sts.mx[0]`, "line break"},
		{"an override needs a reason",
			"{\"domains\": {\"a.example\": {\n\"override\": {\"ignore_dane\": true}}}}", 2, 1, `domains["a.example"].override.reason`, "required"},
		{"an override that ignores nothing",
			"{\"domains\": {\"a.example\": {\n\"override\": {\"reason\": \"x\"}}}}", 2, 1, `domains["a.example"].override`, "would do nothing"},
		{"an override with a bad until",
			"{\"domains\": {\"a.example\": {\"override\": {\"ignore_mta_sts\": true, \"reason\": \"x\",\n\"until\": \"tomorrow\"}}}}", 2, 1, `domains["a.example"].override.until`, "RFC 3339"},
		{"source_ipv4 of the wrong family",
			"{\"domains\": {\"a.example\": {\n  \"source_ipv4\": \"2001:db8::1\"}}}", 2, 3, `domains["a.example"].source_ipv4`, "not an IPv4"},
		{"source_ipv6 that is no address",
			"{\"domains\": {\"a.example\": {\n\"source_ipv6\": \"mx.a.example\"}}}", 2, 1, `domains["a.example"].source_ipv6`, "not an IP"},
		{"default rules are checked too",
			"{\"default\": {\n\"override\": {\"ignore_dane\": true}}}", 2, 1, "default.override.reason", "required"},
		{"the column counts characters, not bytes",
			`{"default": {"next_hop": "ü", "dane_only": 1}}`, 1, 44, "default.dane_only", "want true or false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v, want an *Error", err)
			}
			if e.Line != tc.line || e.Column != tc.col {
				t.Errorf("error at %d:%d, want %d:%d (%v)", e.Line, e.Column, tc.line, tc.col, err)
			}
			if tc.field != "" && e.Field != tc.field {
				t.Errorf("field %q, want %q (%v)", e.Field, tc.field, err)
			}
			if !strings.Contains(e.Reason, tc.reason) {
				t.Errorf("reason %q does not say %q", e.Reason, tc.reason)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	for _, tc := range []struct {
		err  Error
		want string
	}{
		{Error{File: "p.json", Line: 3, Column: 5, Field: `domains["a.example"]`, Reason: "bad"}, `p.json:3:5: domains["a.example"]: bad`},
		{Error{Line: 1, Column: 1, Reason: "not valid JSON"}, "policy file:1:1: not valid JSON"},
		{Error{File: "p.json", Reason: "larger than 1048576 bytes"}, "p.json: larger than 1048576 bytes"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("a good file", func(t *testing.T) {
		lp, err := Read(write("good.json", `{"domains": {"a.example": {"require_tls": true}}}`))
		if err != nil || !lp.Domains["a.example"].RequireTLS {
			t.Errorf("Read = %+v, %v", lp, err)
		}
	})
	t.Run("an error names the file", func(t *testing.T) {
		p := write("bad.json", "{\n\"domain\": {}}")
		_, err := Read(p)
		var e *Error
		if !errors.As(err, &e) || e.File != p || !strings.HasPrefix(err.Error(), p+":2:1: ") {
			t.Errorf("Read = %v, want an *Error starting %q", err, p+":2:1: ")
		}
	})
	t.Run("a file over MaxSize is refused", func(t *testing.T) {
		p := write("big.json", `{"domains": {}}`+strings.Repeat(" ", MaxSize))
		_, err := Read(p)
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(e.Reason, "larger than") {
			t.Errorf("Read = %v, want a size error", err)
		}
	})
	t.Run("a missing file is fs.ErrNotExist", func(t *testing.T) {
		if _, err := Read(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Read = %v, want fs.ErrNotExist", err)
		}
	})
}

func TestParent(t *testing.T) {
	for _, tc := range [][2]string{
		{`domains["a.example"].mta_sts.mx[1]`, `domains["a.example"].mta_sts.mx`},
		{`domains["a.example"].mta_sts`, `domains["a.example"]`},
		{`domains["a.example"]`, "domains"},
		{`domains["x[\"y.z"]`, "domains"},
		{"default.override", "default"},
		{"default", ""},
	} {
		if got := parent(tc[0]); got != tc[1] {
			t.Errorf("parent(%q) = %q, want %q", tc[0], got, tc[1])
		}
	}
}
