package delivery

import "testing"

func TestToASCII(t *testing.T) {
	tests := []struct{ in, want string }{
		{"example.com", "example.com"},
		{"b\u00fccher.example", "xn--bcher-kva.example"},
		{"m\u00fcnchen.de", "xn--mnchen-3ya.de"},
		{"\u4f8b\u3048.jp", "xn--r8jz45g.jp"},                 // 例え
		{"\u0645\u062b\u0627\u0644.test", "xn--mgbh0fb.test"}, // مثال
		{"\u00e9.example.", "xn--9ca.example"},
		{"a..b", ""},
		{"b\u00fccher..example", ""},
		{"", ""},
		{"\xff.example", ""},
	}
	for _, tc := range tests {
		got, ok := toASCII(tc.in)
		if (tc.want == "") == ok || got != tc.want {
			t.Errorf("toASCII(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}
