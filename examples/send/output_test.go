package main

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/sealpost/sealpost/delivery"
)

func TestClean(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain text is kept", "250 2.0.0 OK: queued as 4711", "250 2.0.0 OK: queued as 4711"},
		{"line breaks cannot forge table lines", "OK\r\nbob@x.test  delivered", "OK bob@x.test delivered"},
		{"tabs cannot shift columns", "a\tb\t\tc", "a b c"},
		{"escape sequences are neutralised", "red \x1b[31malert", "red [31malert"},
		{"invalid UTF-8 becomes a space", "a\xffb", "a b"},
		{"UTF-8 is kept", "Grüße", "Grüße"},
		{"long text is cut", strings.Repeat("x", 10), "xxxx…"},
		{"leading and trailing space go", "  a  ", "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			max := 100
			if strings.HasPrefix(tc.name, "long") {
				max = 4
			}
			if got := clean(tc.in, max); got != tc.want {
				t.Errorf("clean(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestExitStatus(t *testing.T) {
	d := delivery.Result{Status: delivery.Delivered}
	tmp := delivery.Result{Status: delivery.TemporaryFailure}
	perm := delivery.Result{Status: delivery.PermanentFailure}
	for _, tc := range []struct {
		name    string
		results []delivery.Result
		want    int
	}{
		{"all delivered", []delivery.Result{d, d}, exitOK},
		{"one deferred", []delivery.Result{d, tmp}, exitTempFail},
		{"a permanent failure wins over a deferral", []delivery.Result{tmp, perm, d}, exitFailed},
	} {
		if got := exitStatus(tc.results); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestWriteResults(t *testing.T) {
	var b bytes.Buffer
	err := writeResults(&b, []delivery.Result{
		{Recipient: "bob@example.com", Status: delivery.Delivered, Code: 250, Enhanced: smtp.EnhancedCode{2, 0, 0}, Text: "OK\r\nforged line",
			Session: delivery.Session{MXHost: "mx.example.com", IP: netip.MustParseAddr("192.0.2.1"), TLSVersion: 0x0304, Auth: delivery.DANEEE,
				Requirement: delivery.Requirement{Basis: delivery.BasisDANE}}},
		{Recipient: "x@null.example", Status: delivery.PermanentFailure, Code: 556, Enhanced: smtp.EnhancedCode{5, 1, 10}, Text: "null MX"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "RECIPIENT        STATUS     CODE        HOST                        TLS      AUTH     POLICY  REPLY\n" +
		"bob@example.com  delivered  250 2.0.0   mx.example.com [192.0.2.1]  TLS 1.3  DANE-EE  DANE    OK forged line\n" +
		"x@null.example   failed     556 5.1.10  -                           -        -        -       null MX\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestFQDNFromHosts(t *testing.T) {
	hosts := `# comment
127.0.0.1 localhost localhost.localdomain
127.0.1.1 box.example.org box # this machine
10.0.0.2  other other.example.org
`
	for _, tc := range []struct{ host, want string }{
		{"box", "box.example.org"},
		{"other", "other.example.org"},
		{"localhost", ""}, // localhost.localdomain only means "this machine"
		{"absent", ""},
	} {
		if got := fqdnFromHosts(strings.NewReader(hosts), tc.host); got != tc.want {
			t.Errorf("fqdnFromHosts(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}

func TestIsFQDN(t *testing.T) {
	for name, want := range map[string]bool{
		"mail.example.org":         true,
		"box":                      false,
		"localhost":                false,
		"box.localdomain":          false,
		"printer.local":            false,
		"ip-10-0-0-1.internal":     false,
		"bad_name.example.org":     false,
		"mx1.mail.example.test":    true,
		"mail.\u212Aelvin.example": false, // IDNA maps it to k: not the name as written
		"mail..example.org":        false,
		"m\r\nail.example.org":     false,
	} {
		if got := isFQDN(name); got != want {
			t.Errorf("isFQDN(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestEHLODomain(t *testing.T) {
	for in, want := range map[string]string{
		"Mail.Example.ORG.":        "mail.example.org",
		"mail.bücher.example":      "mail.xn--bcher-kva.example",
		"mail.\u212Aelvin.example": "mail.kelvin.example",
		"bad_name.example.org":     "",
		"mail..example.org":        "",
		"mail.example.org\r\n":     "",
		"[192.0.2.1]":              "",
	} {
		got, err := ehloDomain(in)
		if want == "" {
			if err == nil {
				t.Errorf("ehloDomain(%q) = %q, want an error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("ehloDomain(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
}

func TestIsAddressLiteral(t *testing.T) {
	for s, want := range map[string]bool{
		"[192.0.2.1]":        true,
		"[ipv6:2001:db8::1]": true,
		"[2001:db8::1]":      false, // RFC 5321 §4.1.3 wants the IPv6: tag
		"[ipv6:192.0.2.1]":   false,
		"192.0.2.1":          false,
		"[mail.example.org]": false,
	} {
		if got := isAddressLiteral(s); got != want {
			t.Errorf("isAddressLiteral(%q) = %v, want %v", s, got, want)
		}
	}
}
