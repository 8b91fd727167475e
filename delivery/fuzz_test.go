package delivery

import (
	"strings"
	"testing"
)

func FuzzParseNextHop(f *testing.F) {
	for _, s := range []string{"relay.example", "relay.example:587", "[smtp.relay.example]", "[smtp.relay.example]:2525",
		"[192.0.2.1]", "[ipv6:2001:db8::1]:25", "192.0.2.1", "[x", "[x]y", "a:0", "a:99999", "", "a b", "[]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		nh, err := parseNextHop(s)
		if err != nil {
			if de := asError(err); !de.Temporary {
				t.Fatalf("a bad next hop is a permanent failure: %v", err)
			}
			return
		}
		if nh.name == "" || nh.port == 0 || strings.ContainsAny(nh.name, " /[]@") {
			t.Fatalf("parseNextHop(%q) = %+v", s, nh)
		}
		if nh.literal.IsValid() && !nh.noMX {
			t.Fatalf("an address without brackets was accepted: %q", s)
		}
	})
}

func FuzzInspect(f *testing.F) {
	for _, s := range []string{"Subject: x\r\n\r\nbody", "TLS-Required: No\n\n", "TLS-Required:\r\n No\r\n", "\xff\xfe", "a\r\n b\r\n\r\n\xc3\xa9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := &Message{Body: strings.NewReader(s), Size: int64(len(s))}
		if err := m.Inspect(); err != nil {
			t.Fatal(err)
		}
		if m.EightBit != !isASCII(s) {
			t.Fatalf("EightBit = %v for %q", m.EightBit, s)
		}
		if m.SMTPUTF8 && !m.EightBit {
			t.Fatalf("SMTPUTF8 without 8-bit content: %q", s)
		}
		if m.TLSOptional && !strings.Contains(strings.ToLower(s), "tls-required") {
			t.Fatalf("TLSOptional without the field: %q", s)
		}
	})
}
