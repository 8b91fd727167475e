package main

import (
	"strings"
	"testing"
)

// FuzzParseConfig checks that no configuration file makes the parser or
// the checks panic, and that nothing accepted is an open relay.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"listen": "0.0.0.0:587", "hostname": "mail.example.org", "tls_cert": "c", "tls_key": "k", "users": {"a": "$2a$04$x"}}`,
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
	})
}

// FuzzTraceWord checks that a client's EHLO argument cannot break out of
// the Received field: no line break, no comment or field delimiter.
func FuzzTraceWord(f *testing.F) {
	for _, s := range []string{"client.example", "[192.0.2.1]", "x\r\nBcc: victim@example.com", "a (b); c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w := traceWord(s)
		if w == "" || len(w) > 255 || strings.ContainsAny(w, " \t\r\n();\\\x00\x7f") {
			t.Errorf("traceWord(%q) = %q", s, w)
		}
	})
}
