package sts

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// policyLines joins lines with LF and a final LF, as most servers send.
func policyLines(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

func TestParsePolicy(t *testing.T) {
	week := 604800 * time.Second
	tests := []struct {
		name string
		text string
		want *Policy // nil: the policy is invalid
		line int     // for an invalid policy: the line the error names (0: none)
	}{
		{
			name: "RFC example with LF",
			text: policyLines("version: STSv1", "mode: enforce", "mx: mail.example.com", "mx: *.example.net", "mx: backupmx.example.com", "max_age: 604800"),
			want: &Policy{Mode: ModeEnforce, MaxAge: week,
				MX:           []string{"mail.example.com", "*.example.net", "backupmx.example.com"},
				PolicyString: []string{"version: STSv1", "mode: enforce", "mx: mail.example.com", "mx: *.example.net", "mx: backupmx.example.com", "max_age: 604800"}},
		},
		{
			name: "CRLF line ends",
			text: "version: STSv1\r\nmode: testing\r\nmx: mx.example.com\r\nmax_age: 86400\r\n",
			want: &Policy{Mode: ModeTesting, MaxAge: 86400 * time.Second, MX: []string{"mx.example.com"},
				PolicyString: []string{"version: STSv1", "mode: testing", "mx: mx.example.com", "max_age: 86400"}},
		},
		{
			name: "mixed line ends and no final line end",
			text: "version: STSv1\nmode: testing\r\nmx: mx.example.com\nmax_age: 86400",
			want: &Policy{Mode: ModeTesting, MaxAge: 86400 * time.Second, MX: []string{"mx.example.com"},
				PolicyString: []string{"version: STSv1", "mode: testing", "mx: mx.example.com", "max_age: 86400"}},
		},
		{
			name: "trailing spaces and tabs",
			text: policyLines("version: STSv1  ", "mode: enforce\t", "mx: mx.example.com ", "max_age: 86400 \t"),
			want: &Policy{Mode: ModeEnforce, MaxAge: 86400 * time.Second, MX: []string{"mx.example.com"},
				PolicyString: []string{"version: STSv1  ", "mode: enforce\t", "mx: mx.example.com ", "max_age: 86400 \t"}},
		},
		{
			name: "no space after colon, spaces before it",
			text: policyLines("version:STSv1", "mode :enforce", "mx:\tmx.example.com", "max_age:86400"),
			want: &Policy{Mode: ModeEnforce, MaxAge: 86400 * time.Second, MX: []string{"mx.example.com"},
				PolicyString: []string{"version:STSv1", "mode :enforce", "mx:\tmx.example.com", "max_age:86400"}},
		},
		{
			name: "unknown keys are ignored",
			text: policyLines("version: STSv1", "mode: enforce", "x-comment: hello: world; a=b", "mx: mx.example.com", "max_age: 86400", "future.key: 1"),
			want: &Policy{Mode: ModeEnforce, MaxAge: 86400 * time.Second, MX: []string{"mx.example.com"},
				PolicyString: []string{"version: STSv1", "mode: enforce", "x-comment: hello: world; a=b", "mx: mx.example.com", "max_age: 86400", "future.key: 1"}},
		},
		{
			name: "blank lines are ignored but kept in the policy string",
			text: "version: STSv1\n\nmode: none\n  \nmax_age: 0\n\n",
			want: &Policy{Mode: ModeNone, PolicyString: []string{"version: STSv1", "", "mode: none", "  ", "max_age: 0", ""}},
		},
		{
			name: "mode none needs no mx",
			text: policyLines("version: STSv1", "mode: none", "max_age: 86400"),
			want: &Policy{Mode: ModeNone, MaxAge: 86400 * time.Second, PolicyString: []string{"version: STSv1", "mode: none", "max_age: 86400"}},
		},
		{
			name: "repeated mode: the first counts",
			text: policyLines("version: STSv1", "mode: testing", "mode: enforce", "mode: bogus", "mx: a.example", "max_age: 60"),
			want: &Policy{Mode: ModeTesting, MaxAge: time.Minute, MX: []string{"a.example"},
				PolicyString: []string{"version: STSv1", "mode: testing", "mode: enforce", "mode: bogus", "mx: a.example", "max_age: 60"}},
		},
		{
			name: "mx is lower-cased, a trailing dot dropped, an invalid one ignored",
			text: policyLines("version: STSv1", "mode: enforce", "mx: MX.Example.COM.", "mx: mail.*.example.com", "mx: bad_name.example", "max_age: 60"),
			want: &Policy{Mode: ModeEnforce, MaxAge: time.Minute, MX: []string{"mx.example.com"},
				PolicyString: []string{"version: STSv1", "mode: enforce", "mx: MX.Example.COM.", "mx: mail.*.example.com", "mx: bad_name.example", "max_age: 60"}},
		},
		{
			// Chosen tolerance: rejecting the policy would leave the domain
			// unprotected over a comment whose intent is plain.
			name: "a comment line is ignored and named",
			text: policyLines("# MTA-STS policy of example.com", "version: STSv1", "mode: enforce", "  # the primary", "mx: mx.example.com", "max_age: 86400"),
			want: &Policy{Mode: ModeEnforce, MaxAge: 24 * time.Hour, MX: []string{"mx.example.com"},
				PolicyString: []string{"# MTA-STS policy of example.com", "version: STSv1", "mode: enforce", "  # the primary", "mx: mx.example.com", "max_age: 86400"},
				Deviations: []string{"line 1: a comment, which RFC 8461 §3.2 does not define: ignored",
					"line 4: a comment, which RFC 8461 §3.2 does not define: ignored"}},
		},
		{
			name: "text after an mx pattern: the pattern counts",
			text: policyLines("version: STSv1", "mode: enforce", "mx: mx1.example.com # primary", "mx: *.example.net\tbackups", "max_age: 86400"),
			want: &Policy{Mode: ModeEnforce, MaxAge: 24 * time.Hour, MX: []string{"mx1.example.com", "*.example.net"},
				PolicyString: []string{"version: STSv1", "mode: enforce", "mx: mx1.example.com # primary", "mx: *.example.net\tbackups", "max_age: 86400"},
				Deviations: []string{`line 3: text "# primary" after the mx pattern mx1.example.com: read as the pattern alone`,
					`line 4: text "backups" after the mx pattern *.example.net: read as the pattern alone`}},
		},
		{
			name: "an mx value that does not begin with a pattern is still dropped",
			text: policyLines("version: STSv1", "mode: enforce", "mx: # mx1.example.com", "max_age: 86400"),
			line: 0,
		},
		{
			name: "an IPv4 mx value is dropped: it never matches",
			text: policyLines("version: STSv1", "mode: enforce", "mx: 192.0.2.1", "mx: mx.example", "max_age: 60"),
			want: &Policy{Mode: ModeEnforce, MaxAge: time.Minute, MX: []string{"mx.example"},
				PolicyString: []string{"version: STSv1", "mode: enforce", "mx: 192.0.2.1", "mx: mx.example", "max_age: 60"}},
		},
		{
			name: "max_age of exactly one year",
			text: policyLines("version: STSv1", "mode: none", "max_age: 31557600"),
			want: &Policy{Mode: ModeNone, MaxAge: MaxMaxAge, PolicyString: []string{"version: STSv1", "mode: none", "max_age: 31557600"}},
		},
		{
			name: "max_age with leading zeros",
			text: policyLines("version: STSv1", "mode: none", "max_age: 0000000060"),
			want: &Policy{Mode: ModeNone, MaxAge: time.Minute, PolicyString: []string{"version: STSv1", "mode: none", "max_age: 0000000060"}},
		},

		{name: "max_age over one year is invalid", text: policyLines("version: STSv1", "mode: enforce", "mx: a.example", "max_age: 31557601"), line: 4},
		{name: "max_age of 11 digits is invalid", text: policyLines("version: STSv1", "mode: none", "max_age: 00000000060"), line: 3},
		{name: "negative max_age is invalid", text: policyLines("version: STSv1", "mode: none", "max_age: -1"), line: 3},
		{name: "empty max_age is invalid", text: policyLines("version: STSv1", "mode: none", "max_age:"), line: 3},
		{name: "no max_age is invalid", text: policyLines("version: STSv1", "mode: enforce", "mx: a.example")},
		{name: "unknown mode is invalid", text: policyLines("version: STSv1", "mode: report", "mx: a.example", "max_age: 60"), line: 2},
		{name: "mode is case-sensitive", text: policyLines("version: STSv1", "mode: Enforce", "mx: a.example", "max_age: 60"), line: 2},
		{name: "no mode is invalid", text: policyLines("version: STSv1", "mx: a.example", "max_age: 60")},
		{name: "key is case-sensitive: Mode is unknown, so mode is missing", text: policyLines("version: STSv1", "Mode: enforce", "mx: a.example", "max_age: 60")},
		{name: "wrong version is invalid", text: policyLines("version: STSv2", "mode: none", "max_age: 60"), line: 1},
		{name: "no version is invalid", text: policyLines("mode: none", "max_age: 60")},
		{name: "mx missing in enforce mode is invalid", text: policyLines("version: STSv1", "mode: enforce", "max_age: 60")},
		{name: "mx missing in testing mode is invalid", text: policyLines("version: STSv1", "mode: testing", "max_age: 60")},
		{name: "nmx typo leaves no mx and is invalid", text: policyLines("version: STSv1", "mode: enforce", "nmx: mx.example.com", "max_age: 60")},
		{name: "only invalid mx values is invalid", text: policyLines("version: STSv1", "mode: enforce", "mx: *", "mx: [192.0.2.1]", "max_age: 60")},
		{name: "only IP address mx values is invalid", text: policyLines("version: STSv1", "mode: enforce", "mx: 192.0.2.1", "mx: 192.0.2.2.", "max_age: 60")},
		{name: "line without colon is invalid", text: policyLines("version: STSv1", "mode: none", "max_age 60"), line: 3},
		{name: "key with space is invalid", text: policyLines("version: STSv1", "mode: none", "max age: 60"), line: 3},
		{name: "empty key is invalid", text: policyLines("version: STSv1", ": none", "max_age: 60"), line: 2},
		{name: "control character is invalid", text: policyLines("version: STSv1", "mode: none\x00", "max_age: 60"), line: 2},
		{name: "bare CR inside a line is invalid", text: "version: STSv1\rmode: none\nmax_age: 60\n", line: 1},
		{name: "invalid UTF-8 is invalid", text: policyLines("version: STSv1", "x: \xff\xfe", "mode: none", "max_age: 60"), line: 2},
		{name: "HTML page is invalid", text: "<!DOCTYPE html>\n<html><body>Not here</body></html>\n", line: 1},
		{name: "empty policy is invalid", text: ""},
		{name: "70 KiB of junk is invalid", text: strings.Repeat("junk junk junk\n", 70<<10/15)},
		{name: "valid policy padded to 70 KiB is invalid", text: policyLines("version: STSv1", "mode: none", "max_age: 60") + strings.Repeat("x: y\n", 70<<10/5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy(tt.text)
			if tt.want == nil {
				var pe *PolicyError
				if !errors.As(err, &pe) || !errors.Is(err, ErrInvalidPolicy) {
					t.Fatalf("ParsePolicy = %+v, %v; want a *PolicyError", p, err)
				}
				if pe.Line != tt.line {
					t.Fatalf("error %q names line %d, want %d", err, pe.Line, tt.line)
				}
				if pe.ResultType() != "sts-policy-invalid" {
					t.Fatalf("ResultType = %q", pe.ResultType())
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePolicy: %v", err)
			}
			if !reflect.DeepEqual(p, tt.want) {
				t.Fatalf("ParsePolicy =\n%#v\nwant\n%#v", p, tt.want)
			}
		})
	}
}

// TestPolicyErrorMessages checks that errors say why, in terms a domain
// owner reading a log or a report understands.
func TestPolicyErrorMessages(t *testing.T) {
	tests := []struct {
		text string
		want string
	}{
		{policyLines("version: STSv1", "mode: enforce", "mx: a.example", "max_age: 31557601"), "policy line 4: max_age 31557601 is more than 31557600 seconds"},
		{policyLines("version: STSv1", "mode: report", "max_age: 1"), `policy line 2: mode is "report", want enforce, testing or none`},
		{policyLines("version: STSv1", "mode: enforce", "nmx: mx.example.com", "max_age: 60"), "policy: mode enforce needs at least one valid mx pattern, found none"},
		{policyLines("version: STSv1", "Mode: enforce", "max_age: 60"), `policy: no mode field (keys are case-sensitive: "Mode" ignored)`},
		{strings.Repeat("x", 70<<10), "policy: 71680 bytes, larger than the 65536 allowed"},
	}
	for _, tt := range tests {
		_, err := ParsePolicy(tt.text)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParsePolicy(%.40q...) error = %v, want %q", tt.text, err, tt.want)
		}
	}
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		policyLines("version: STSv1", "mode: enforce", "mx: mail.example.com", "mx: *.example.net", "max_age: 604800"),
		"version: STSv1\r\nmode: testing\r\nmx: MX.example.\r\nmax_age: 86400",
		"version: STSv1\nmode: none\nmax_age: 0\n\n",
		"version:STSv1\nmode :enforce\nnmx: a\nmx: 192.0.2.1\nmax_age:31557600\nx: \xff",
		"mode: enforce\nmode: none\nversion: STSv1\nmax_age: 1\nmx: *.a\n",
		// At the limits: a 253-octet mx pattern, the largest max_age and
		// one more, a policy of MaxPolicySize octets (the fetch's limit).
		policyLines("version: STSv1", "mode: enforce", "mx: *."+strings.Repeat(strings.Repeat("a", 63)+".", 3)+strings.Repeat("b", 59), "max_age: 31557600"),
		policyLines("version: STSv1", "mode: testing", "mx: a.example", "max_age: 31557601"),
		padPolicy(policyLines("version: STSv1", "mode: enforce", "mx: a.example", "max_age: 86400"), MaxPolicySize),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParsePolicy(text)
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error %v does not match ErrInvalidPolicy", err)
			}
			return
		}
		switch {
		case p.Mode != ModeEnforce && p.Mode != ModeTesting && p.Mode != ModeNone:
			t.Fatalf("mode %q", p.Mode)
		case p.MaxAge < 0 || p.MaxAge > MaxMaxAge:
			t.Fatalf("max_age %v", p.MaxAge)
		case p.Mode != ModeNone && len(p.MX) == 0:
			t.Fatalf("mode %s without mx", p.Mode)
		}
		for _, mx := range p.MX {
			if got, ok := parseMXPattern(mx); !ok || got != mx {
				t.Fatalf("mx %q is not a normalised valid pattern", mx)
			}
		}
		// The policy string, joined again with LF line ends, is the same
		// policy. LF ends are never longer than what was parsed, except
		// for a last line that had none: it is then written without one,
		// so that a policy at MaxPolicySize reads back too.
		written := strings.Join(p.PolicyString, "\n") + "\n"
		if len(written) > MaxPolicySize {
			written = written[:len(written)-1]
		}
		again, err := ParsePolicy(written)
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("policy string does not round-trip: %+v, %v; want %+v", again, err, p)
		}
	})
}
