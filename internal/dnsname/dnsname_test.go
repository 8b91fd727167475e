package dnsname

import (
	"errors"
	"strings"
	"testing"
)

func TestFold(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"lower case stays", "example.com", "example.com"},
		{"upper case is folded", "MX.Example.COM", "mx.example.com"},
		{"one trailing dot is the root label", "example.com.", "example.com"},
		{"two trailing dots are not made valid", "a..", "a.."},
		{"the root alone stays", ".", "."},
		{"empty stays", "", ""},
		{"non-ASCII is left to Canonical", "B\u00dcCHER.example", "b\u00dccher.example"},
		{"kelvin sign is not ASCII and is not folded here", "\u212a.example", "\u212a.example"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Fold(tc.in); got != tc.want {
				t.Errorf("Fold(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if got := Fold(Fold(tc.in)); got != Fold(tc.in) {
				t.Errorf("Fold is not idempotent on %q: %q", tc.in, got)
			}
		})
	}
}

func TestCanonical(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	name253 := strings.Repeat(label63+".", 3) + strings.Repeat("b", 61) // 3*64 + 61 = 253
	tests := []struct {
		name, in, want string // want "" means refused
	}{
		{"an ASCII name", "Example.COM.", "example.com"},
		{"underscore labels are tolerated", "_mta-sts.example.com", "_mta-sts.example.com"},
		{"edge hyphens are tolerated", "-mx-.example", "-mx-.example"},
		{"an xn-- label passes as written", "xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"U-labels become A-labels", "b\u00fccher.example", "xn--bcher-kva.example"},
		{"upper-case U-labels are mapped", "B\u00dcCHER.example", "xn--bcher-kva.example"},
		{"CJK", "\u4f8b\u3048.jp", "xn--r8jz45g.jp"},
		{"RTL", "\u0645\u062b\u0627\u0644.test", "xn--mgbh0fb.test"},
		{"kelvin sign maps to k by IDNA", "\u212aelvin.example", "kelvin.example"},
		{"a label of 63 octets", label63 + ".example", label63 + ".example"},
		{"a name of 253 octets", name253, name253},
		{"empty", "", ""},
		{"the root alone", ".", ""},
		{"an empty label inside", "a..b", ""},
		{"two trailing dots", "a..", ""},
		{"a leading dot", ".example", ""},
		{"a label of 64 octets", label63 + "a.example", ""},
		{"an xn-- label of 64 octets", "xn--" + strings.Repeat("a", 60) + ".example", ""},
		{"a U-label over 63 octets once encoded", strings.Repeat("\u00e9", 60) + ".example", ""},
		{"a name of 254 octets", name253 + "b", ""},
		{"a space", "exa mple.com", ""},
		{"CR LF", "example.com\r\nRCPT TO:<x@y>", ""},
		{"NUL", "example\x00.com", ""},
		{"an at sign", "a@example.com", ""},
		{"brackets", "[192.0.2.1]", ""},
		// RFC 1123 §2.1; found by FuzzParseNextHop, which took "0.0.0.0."
		// for the host name "0.0.0.0".
		{"an IPv4 address with a trailing dot", "0.0.0.0.", ""},
		{"an IPv4 address", "192.0.2.1", ""},
		{"digits that are no address", "1.2.3", "1.2.3"},
		{"an address-like label under a name", "192.0.2.1.example", "192.0.2.1.example"},
		{"invalid UTF-8", "\xff.example", ""},
		{"an empty label after mapping", "b\u00fccher\u3002\u3002example", ""},
		{"a disallowed code point", "\u2028.example", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Canonical(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("Canonical(%q) = %q, want an error", tc.in, got)
				}
				var e *Error
				if !errors.Is(err, ErrInvalid) || !errors.As(err, &e) || e.Name != tc.in {
					t.Fatalf("error %v is not an *Error naming %q", err, tc.in)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Canonical(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func FuzzCanonical(f *testing.F) {
	label63 := strings.Repeat("a", 63)
	for _, s := range []string{
		"example.com", "Example.COM.", "a..", "a..b", ".", "", "_25._tcp.mx.example",
		"b\u00fccher.example", "\u212a.example", "\u4f8b\u3048.jp", "xn--bcher-kva.example",
		label63 + ".example", label63 + "a.example", strings.Repeat(label63+".", 4),
		strings.Repeat("\u00e9", 59) + ".x", "a\u3002b", "\u0645\u062b\u0627\u0644.test",
		// The 5-minute campaign's crash of the old delivery.FuzzToASCII:
		// a 64-octet xn-- label that it passed.
		"xn--" + strings.Repeat("0", 60),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if Fold(Fold(s)) != Fold(s) {
			t.Fatalf("Fold is not idempotent on %q", s)
		}
		c, err := Canonical(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			return
		}
		if problem := check(c); problem != "" {
			t.Fatalf("Canonical(%q) = %q breaks the rule: %s", s, c, problem)
		}
		// The rule again, written out independently of check.
		if len(c) > MaxNameLen {
			t.Fatalf("Canonical(%q) = %q: %d octets", s, c, len(c))
		}
		for _, label := range strings.Split(c, ".") {
			if len(label) == 0 || len(label) > MaxLabelLen ||
				strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
				t.Fatalf("Canonical(%q) = %q: label %q", s, c, label)
			}
		}
		if again, err := Canonical(c); err != nil || again != c {
			t.Fatalf("Canonical is not idempotent on %q: %q then %q, %v", s, c, again, err)
		}
		if Fold(c) != c {
			t.Fatalf("Canonical(%q) = %q is not folded", s, c)
		}
		if isASCII(s) && c != Fold(s) {
			t.Fatalf("an ASCII name was changed beyond folding: %q to %q", s, c)
		}
	})
}
