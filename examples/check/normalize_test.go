package main

import "testing"

func TestNormalizeDomain(t *testing.T) {
	tests := []struct{ in, want string }{ // want "" means refused
		{" Example.COM. ", "example.com"},
		{"b\u00fccher.example", "xn--bcher-kva.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		// U+212A KELVIN SIGN folds to "k" by IDNA's mapping, so the
		// name is converted as an internationalised one, not taken for
		// the ASCII name strings.ToLower would have made of it.
		{"\u212aelvin.example", "kelvin.example"},
		{"", ""},
		{"192.0.2.1", ""},
		{"[2001:db8::1]", ""},
		{"a..example", ""},
		{"exa mple.com", ""},
		{"a@example.com", ""},
	}
	for _, tc := range tests {
		got, err := normalizeDomain(tc.in)
		if (tc.want == "") != (err != nil) || got != tc.want {
			t.Errorf("normalizeDomain(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
