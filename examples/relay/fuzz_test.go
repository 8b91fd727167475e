package main

import (
	"crypto/tls"
	"io"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/internal/dnsname"
)

// FuzzParseConfig checks that no configuration file makes the parser or
// the checks panic, that nothing accepted is an open relay or sends
// passwords in the clear, and that an accepted hostname is one EHLO and
// delivery take.
// seedHash is bcrypt's hash of "secret" at cost 4, the cheapest.
const seedHash = "$2a$04$jf58LmXdyZYuUf9hZOkDSOGX5tGTBd2C4HNNXISU48fg7AQazQNH2"

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		`{}`,
		// A valid bcrypt hash (cost 4, of "secret"), so that check gets
		// past the users and the properties below are reached.
		`{"listen": "0.0.0.0:587", "hostname": "mail.example.org", "tls_cert": "c", "tls_key": "k", "users": {"a": "` + seedHash + `"}}`,
		`{"listen": "0.0.0.0:587", "hostname": "Mail.B\u00fccher.Example.", "tls_cert": "c", "tls_key": "k", "users": {"a": "` + seedHash + `"}}`,
		`{"listen": "0.0.0.0:587", "hostname": "mail.example.org", "users": {"a": "` + seedHash + `"}}`,
		`{"listen": "192.0.2.1:587", "hostname": "mail.example.org", "tls_cert": "c", "tls_key": "k"}`,
		`{"listen": "127.0.0.1:587", "hostname": "mail..example.org"}`,
		`{"listen": "127.0.0.1:587", "hostname": "mail_1.example.org"}`,
		`{"listen": "127.0.0.1:587", "hostname": "` + strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61) + `"}`,
		`{"listen": "127.0.0.1:587", "hostname": "mail.\u212Aelvin.example"}`,
		`{"listen": "[::1]:587", "hostname": "h.example", "shutdown_timeout": "1m", "dkim": [{"domain": "d", "selector": "s", "key_file": "k"}]}`,
		`{"tlsrpt": {"contact": "x@y", "disabled": true}, "max_message_size": -1}`,
		`{"listen": "localhost:587", "hostname": "a.b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseConfig(data)
		if err != nil {
			return
		}
		cfg = cfg.withDefaults()
		if cfg.check() != nil {
			return
		}
		host := cfg.Listen[:strings.LastIndexByte(cfg.Listen, ':')]
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		if !isLoopback(host) && len(cfg.Users) == 0 {
			t.Errorf("open relay accepted: listen %q without users", cfg.Listen)
		}
		if !isLoopback(host) && cfg.TLSCert == "" {
			t.Errorf("plaintext AUTH accepted on %q", cfg.Listen)
		}
		if c, err := dnsname.Canonical(cfg.Hostname); err != nil || c != cfg.Hostname || !strings.Contains(c, ".") {
			t.Errorf("hostname %q accepted; canonical %q, %v", cfg.Hostname, c, err)
		}
		if err := (&delivery.Config{Hostname: cfg.Hostname}).Validate(); err != nil {
			t.Errorf("the relay accepts a hostname delivery refuses: %v", err)
		}
	})
}

// FuzzReceived checks that whatever a client sends as its EHLO argument,
// and whatever recipient validAddress lets through, the Received field the
// relay writes is one header field of lines within RFC 5322's limit, and
// says who the client claimed to be and who the mail is for.
func FuzzReceived(f *testing.F) {
	for _, s := range []struct{ helo, rcpt string }{
		{"client.example", "bob@example.com"},
		{"[192.0.2.1]", ""},
		{"x\r\nBcc: victim@example.com", "a@b"},
		{"a (b); c", "x\r\nBcc: v@example.com"},
		{"", strings.Repeat("a", 310) + "@example.com"},
		{strings.Repeat("h", 300), strings.Repeat("a", 64) + "@" + strings.Repeat("d", 255)},
		{"\x00\x7f\xff", "\"a b\"@example.com"},
	} {
		f.Add(s.helo, s.rcpt, true, true)
	}
	when := time.Date(2026, 12, 5, 1, 2, 3, 0, time.UTC)
	f.Fuzz(func(t *testing.T, helo, rcpt string, withTLS, auth bool) {
		if rcpt != "" && !validAddress(rcpt) {
			return
		}
		tr := trace{helo: helo, ip: net.ParseIP("2001:db8::1"), by: "relay.example", auth: auth, rcpt: rcpt, when: when}
		if withTLS {
			tr.tls = &tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256}
		}
		field := tr.field()
		if len(field) > traceRoom {
			t.Fatalf("a Received field of %d octets, over traceRoom", len(field))
		}
		for _, line := range strings.SplitAfter(field, "\r\n") {
			if len(line) > 1000 {
				t.Fatalf("a line of %d octets: %q", len(line), line)
			}
		}
		m, err := mail.ReadMessage(strings.NewReader(field + "\r\nbody"))
		if err != nil {
			t.Fatalf("the field does not parse: %v\n%s", err, field)
		}
		if len(m.Header) != 1 || len(m.Header["Received"]) != 1 {
			t.Fatalf("the field added header fields %v:\n%s", m.Header, field)
		}
		v := m.Header.Get("Received")
		word, _, _ := strings.Cut(strings.TrimPrefix(v, "from "), " ")
		if word != traceWord(helo) || strings.ContainsAny(word, "();\\") {
			t.Fatalf("the client's name reads as %q: %q", word, v)
		}
		if rcpt != "" && !strings.Contains(v, "for <"+rcpt+">;") {
			t.Fatalf("the recipient is not %q: %q", rcpt, v)
		}
		if b, _ := io.ReadAll(m.Body); string(b) != "body" {
			t.Fatalf("the body reads %q", b)
		}
	})
}
