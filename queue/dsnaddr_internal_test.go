package queue

import (
	"strings"
	"testing"
)

func TestUTF8AddrForms(t *testing.T) {
	tests := []struct {
		name, addr, xtext, unitext string
	}{
		{"QCHARs stay", "a.b-c_d!#$%&'*/?^`{|}~@x.example", "a.b-c_d!#$%&'*/?^`{|}~@x.example", "a.b-c_d!#$%&'*/?^`{|}~@x.example"},
		{"xtext specials are escaped in both forms", `a+b=c\d e@x`, `a\x{2B}b\x{3D}c\x{5C}d\x{20}e@x`, `a\x{2B}b\x{3D}c\x{5C}d\x{20}e@x`},
		{"controls are escaped with two digits", "a\x01\x7f@x", `a\x{01}\x{7F}@x`, `a\x{01}\x{7F}@x`},
		{"two-digit code point", "jørn@x", `j\x{F8}rn@x`, "jørn@x"},
		{"three-digit code point", "Āb@x", `\x{100}b@x`, "Āb@x"},
		{"four-digit code point", "例@x", `\x{4F8B}@x`, "例@x"},
		{"five-digit code point", "😀@x", `\x{1F600}@x`, "😀@x"},
		{"invalid UTF-8 becomes U+FFFD", "a\xffb@x", `a\x{FFFD}b@x`, "a\uFFFDb@x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := utf8Addr(tc.addr, false); got != tc.xtext {
				t.Errorf("utf-8-addr-xtext of %q = %q, want %q", tc.addr, got, tc.xtext)
			}
			if got := utf8Addr(tc.addr, true); got != tc.unitext {
				t.Errorf("utf-8-addr-unitext of %q = %q, want %q", tc.addr, got, tc.unitext)
			}
		})
	}
	t.Run("a long address is cut between characters", func(t *testing.T) {
		got := utf8Addr(strings.Repeat("é", 300)+"@x", false)
		if len(got) > maxField+3 || !strings.HasSuffix(got, `\x{E9}...`) {
			t.Errorf("cut address = %d bytes ending %q, want at most %d ending in a whole escape and ...", len(got), got[max(0, len(got)-12):], maxField+3)
		}
	})
}

func TestTypedAddress(t *testing.T) {
	tests := []struct {
		name, typ, addr string
		global          bool
		want            string
	}{
		{"ASCII rfc822", "rfc822", "bob@example.com", false, "rfc822; bob@example.com"},
		{"type is case-insensitive", " RFC822 ", " bob@example.com", false, "rfc822; bob@example.com"},
		{"UTF-8 address given as rfc822 becomes utf-8", "rfc822", "jørn@example.com", false, `utf-8; j\x{F8}rn@example.com`},
		{"utf-8 type in a global DSN", "UTF-8", "jørn@example.com", true, "utf-8; jørn@example.com"},
		{"other type kept, made ASCII", "x-local", "jørn", false, "x-local; j?rn"},
		{"other type kept in a global DSN", "x-local", "jørn", true, "x-local; jørn"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := typedAddress(tc.typ, tc.addr, tc.global); got != tc.want {
				t.Errorf("typedAddress(%q, %q, %v) = %q, want %q", tc.typ, tc.addr, tc.global, got, tc.want)
			}
		})
	}
}
