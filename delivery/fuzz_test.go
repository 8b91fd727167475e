package delivery

import (
	"bufio"
	"net/textproto"
	"strconv"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/dnsname"
)

// FuzzParseNextHop checks that an accepted next hop is a canonical host
// name (or an address in brackets) with a port, and that writing it back
// and reading it again gives the same next hop.
func FuzzParseNextHop(f *testing.F) {
	label63 := strings.Repeat("a", 63)
	name253 := strings.Repeat(label63+".", 3) + strings.Repeat("b", 61)
	for _, s := range []string{"relay.example", "relay.example:587", "[smtp.relay.example]", "[smtp.relay.example]:2525",
		"[192.0.2.1]", "[ipv6:2001:db8::1]:25", "192.0.2.1", "[x", "[x]y", "a:0", "a:99999", "", "a b", "[]",
		"relay.example\r\n", "relay\texample", "relay\x00.example", "[relay.example\n]", "Relay.Example.:25",
		"[" + label63 + ".example]:65535", label63 + "a.example", name253, name253 + "b", "b\u212Aexample",
		"bücher.example", "xn--" + strings.Repeat("a", 60) + ".example", "a..example", ".example"} {
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
		if nh.port == 0 {
			t.Fatalf("parseNextHop(%q): port 0", s)
		}
		if nh.literal.IsValid() {
			if !nh.noMX {
				t.Fatalf("an address without brackets was accepted: %q", s)
			}
			return
		}
		if c, err := dnsname.Canonical(nh.name); err != nil || c != nh.name {
			t.Fatalf("parseNextHop(%q) = %q, which is not a canonical host name (%q, %v)", s, nh.name, c, err)
		}
		written := nh.name
		if nh.noMX {
			written = "[" + written + "]"
		}
		written += ":" + strconv.Itoa(int(nh.port))
		again, err := parseNextHop(written)
		if err != nil || again != nh {
			t.Fatalf("%q read as %+v, written as %q, read back as %+v (%v)", s, nh, written, again, err)
		}
	})
}

// FuzzInspect checks Inspect's findings both ways: TLSOptional is set
// exactly when net/textproto, an independent header reader, finds a
// TLS-Required field whose value is "No" (for headers it can read and
// lines within Inspect's limit), and the 8-bit flags follow the content.
func FuzzInspect(f *testing.F) {
	long := strings.Repeat("x", maxHeaderLine-len("X-Long: "))
	for _, s := range []string{"Subject: x\r\n\r\nbody", "TLS-Required: No\n\n", "TLS-Required:\r\n No\r\n", "\xff\xfe", "a\r\n b\r\n\r\n\xc3\xa9",
		"tls-required:  NO \r\n\r\n", "TLS-Required: No\r\n\r\nTLS-Required: No\r\n", "Subject: a\r\nTLS-Required: Yes\r\n\r\n",
		"X-Long: " + long + "\r\nTLS-Required: No\r\n\r\n", "X-Long: " + long + "x\r\nTLS-Required: No\r\n\r\n",
		"TLS-Required: N\r\n o\r\n\r\n", "TLS-Required : No\r\n\r\n", "Subject: x\r\n\r\nTLS-Required: No\r\n"} {
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
		if want, ok := referenceTLSOptional(s); ok && m.TLSOptional != want {
			t.Fatalf("TLSOptional = %v, net/textproto reads %v, for %q", m.TLSOptional, want, s)
		}
	})
}

// referenceTLSOptional reads the header of msg with net/textproto and
// says whether a TLS-Required field has the value "No"; ok is false when
// textproto cannot read the header, or a line is longer than Inspect
// looks at, so that there is no reference to compare with.
func referenceTLSOptional(msg string) (optional, ok bool) {
	head, _, found := strings.Cut(strings.ReplaceAll(msg, "\r\n", "\n"), "\n\n")
	if !found {
		return false, false
	}
	for _, line := range strings.Split(head, "\n") {
		if len(line) > maxHeaderLine || strings.ContainsRune(line, '\r') {
			return false, false
		}
	}
	h, err := textproto.NewReader(bufio.NewReader(strings.NewReader(head + "\n\n"))).ReadMIMEHeader()
	if err != nil {
		return false, false
	}
	// RFC 5322 §4.5 (obs-optional) lets white space precede the colon;
	// Inspect reads such a field too.
	for k, vs := range h {
		if !strings.EqualFold(strings.TrimRight(k, " \t"), "TLS-Required") {
			continue
		}
		for _, v := range vs {
			if strings.EqualFold(strings.TrimSpace(v), "no") {
				return true, true
			}
		}
	}
	return false, true
}
