package smtpclient

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"
)

func TestCheckMailbox(t *testing.T) {
	tests := []struct {
		name string
		addr string
		ok   bool
	}{
		{"plain address", "alice@example.org", true},
		{"atext specials in local part", "a!#$%&'*+-/=?^_`{|}~b@example.org", true},
		{"subaddress", "bob+tag@example.org", true},
		{"quoted local part with a space is refused (naive servers split at it)", `"john doe"@example.org`, false},
		{"quoted local part with > is refused", `"a>b"@example.org`, false},
		{"quoted pair of a space is refused", `"a\ b"@example.org`, false},
		{"quoted pair of > is refused", `"a\>"@example.org`, false},
		{"quoted local part with a comma", `"doe,john"@example.org`, true},
		{"quoted pair in quoted local part", `"a\"b"@example.org`, true},
		{"quoted local part holding @", `"a@b"@example.org`, true},
		{"UTF-8 local part (RFC 6531 §3.3)", "José@example.org", true},
		{"U-label domain (RFC 6531 §3.3)", "bob@bücher.example", true},
		{"IPv4 address literal", "postmaster@[192.0.2.1]", true},
		{"IPv6 address literal", "postmaster@[IPv6:2001:db8::1]", true},
		{"general address literal", "a@[x400:abc]", true},
		{"trailing dot in local part is tolerated (docomo.ne.jp)", "name.@docomo.ne.jp", true},
		{"doubled dot in local part is tolerated", "first..last@example.org", true},
		{"CRLF injection", "a@example.org>\r\nRCPT TO:<b@example.org", false},
		{"LF alone", "a\n@example.org", false},
		{"space in unquoted local part", "a b@example.org", false},
		{"angle bracket in local part", "a>b@example.org", false},
		{"parameter smuggled after the domain", "a@example.org> NOTIFY=NEVER", false},
		{"NUL", "a\x00@example.org", false},
		{"no @", "alice", false},
		{"empty local part", "@example.org", false},
		{"empty domain", "alice@", false},
		{"trailing dot in domain", "alice@example.org.", false},
		{"empty label", "alice@example..org", false},
		{"hyphen at label start", "alice@-example.org", false},
		{"underscore in domain", "alice@ex_ample.org", false},
		{"label over 63 octets", "a@" + strings.Repeat("x", 64) + ".org", false},
		{"address over 254 octets", strings.Repeat("a", 250) + "@example.org", false},
		{"invalid UTF-8", "a\xff@example.org", false},
		{"unterminated quoted local part", `"abc@example.org`, false},
		{"bare quote inside quoted local part", `"a"b"@example.org`, false},
		{"CR in quoted local part", "\"a\rb\"@example.org", false},
		{"bad IPv4 literal", "a@[192.0.2.300]", false},
		{"IPv6 literal with zone", "a@[IPv6:fe80::1%eth0]", false},
		{"bracket in general literal", "a@[x:a]b]", false},
		{"CR in address literal", "a@[x:a\rb]", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason := checkMailbox(tt.addr)
			if (reason == "") != tt.ok {
				t.Errorf("checkMailbox(%q) = %q, want ok=%v", tt.addr, reason, tt.ok)
			}
		})
	}
}

func TestCheckHelloName(t *testing.T) {
	for _, name := range []string{"mta.example.org", "localhost", "[192.0.2.1]", "[IPv6:::1]", "a-b.example"} {
		if err := checkHelloName(name); err != nil {
			t.Errorf("checkHelloName(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"", "mta.example.org\r\nMAIL FROM:<>", "two words", "bücher.example", "[1.2.3]", "a_b.example"} {
		var ce *CommandError
		if err := checkHelloName(name); !errors.As(err, &ce) || ce.Command != "EHLO" {
			t.Errorf("checkHelloName(%q) = %v, want a *CommandError", name, err)
		}
	}
}

func TestXtext(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abc", "abc"},
		{"a+b=c", "a+2Bb+3Dc"},
		{"a b", "a+20b"},
		{"\r\n", "+0D+0A"},
		{"<id@host>", "<id@host>"},
		{"é", "+C3+A9"},
	}
	for _, tt := range tests {
		if got := xtext(tt.in); got != tt.want {
			t.Errorf("xtext(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestUTF8AddrXtext(t *testing.T) {
	tests := []struct{ in, want string }{
		{"josé@example.org", `jos\x{E9}@example.org`},
		{"a+b=c\\d", `a\x{2B}b\x{3D}c\x{5C}d`},
		{"δ@x", `\x{3B4}@x`},
		{"😀@x", `\x{1F600}@x`},
	}
	for _, tt := range tests {
		if got := utf8AddrXtext(tt.in); got != tt.want {
			t.Errorf("utf8AddrXtext(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNotifyParam(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want string
		ok   bool
	}{
		{"single", []string{"FAILURE"}, "FAILURE", true},
		{"several, case-insensitive", []string{"success", "Failure", "DELAY"}, "SUCCESS,FAILURE,DELAY", true},
		{"NEVER alone", []string{"NEVER"}, "NEVER", true},
		{"NEVER with others is invalid (RFC 3461 §4.1)", []string{"NEVER", "FAILURE"}, "", false},
		{"repeat", []string{"DELAY", "DELAY"}, "", false},
		{"unknown keyword", []string{"ALWAYS"}, "", false},
		{"injection", []string{"FAILURE ORCPT=x"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := notifyParam(tt.in)
			if (reason == "") != tt.ok || got != tt.want {
				t.Errorf("notifyParam(%q) = %q, %q; want %q ok=%v", tt.in, got, reason, tt.want, tt.ok)
			}
		})
	}
}

// connWithExt is a Conn that has seen an EHLO reply with ext, for testing
// how envelopes become commands.
func connWithExt(tlsOn bool, ext ...string) *Conn {
	c := &Conn{ext: map[string]string{}}
	for _, e := range ext {
		kw, p, _ := strings.Cut(e, " ")
		c.ext[kw] = p
	}
	if tlsOn {
		c.tlsState = &tls.ConnectionState{}
	}
	return c
}

func TestTransactionCommands(t *testing.T) {
	all := []string{"SIZE 10000", "8BITMIME", "SMTPUTF8", "DSN", "REQUIRETLS"}
	tests := []struct {
		name  string
		ext   []string
		tls   bool
		env   Envelope
		mail  string
		rcpts []string
	}{
		{"plain envelope", nil, false,
			Envelope{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net"}}},
			"MAIL FROM:<a@example.org>", []string{"RCPT TO:<b@example.net>"}},
		{"null reverse-path for bounces (RFC 5321 §4.5.5)", nil, false,
			Envelope{Rcpts: []Rcpt{{Addr: "b@example.net"}}},
			"MAIL FROM:<>", []string{"RCPT TO:<b@example.net>"}},
		{"Postmaster without domain (RFC 5321 §4.1.1.3)", nil, false,
			Envelope{From: "a@example.org", Rcpts: []Rcpt{{Addr: "Postmaster"}}},
			"MAIL FROM:<a@example.org>", []string{"RCPT TO:<Postmaster>"}},
		{"every parameter when every extension is advertised", all, true,
			Envelope{From: "a@example.org", Size: 5000, Body8BitMIME: true, SMTPUTF8: true, RequireTLS: true, Ret: "hdrs", EnvID: "id+1=2",
				Rcpts: []Rcpt{{Addr: "b@example.net", Notify: []string{"failure", "delay"}, ORcpt: "b@example.net"}}},
			"MAIL FROM:<a@example.org> SIZE=5000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+2B1+3D2 REQUIRETLS",
			[]string{"RCPT TO:<b@example.net> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b@example.net"}},
		{"DSN parameters dropped without DSN (RFC 3461 §4)", []string{"SIZE"}, false,
			Envelope{From: "a@example.org", Size: 5000, Ret: "FULL", EnvID: "x",
				Rcpts: []Rcpt{{Addr: "b@example.net", Notify: []string{"NEVER"}, ORcpt: "b@example.net"}}},
			"MAIL FROM:<a@example.org> SIZE=5000", []string{"RCPT TO:<b@example.net>"}},
		{"SIZE not sent when not advertised", nil, false,
			Envelope{From: "a@example.org", Size: 5000, Rcpts: []Rcpt{{Addr: "b@example.net"}}},
			"MAIL FROM:<a@example.org>", []string{"RCPT TO:<b@example.net>"}},
		{"UTF-8 address implies SMTPUTF8 (RFC 6531 §3.4)", []string{"SMTPUTF8"}, false,
			Envelope{From: "a@example.org", Rcpts: []Rcpt{{Addr: "josé@example.net"}}},
			"MAIL FROM:<a@example.org> SMTPUTF8", []string{"RCPT TO:<josé@example.net>"}},
		{"UTF-8 ORCPT as utf-8-addr-xtext (RFC 6533 §3)", []string{"DSN", "SMTPUTF8"}, false,
			Envelope{From: "a@example.org", Rcpts: []Rcpt{{Addr: "josé@example.net", ORcpt: "josé@example.net"}}},
			"MAIL FROM:<a@example.org> SMTPUTF8", []string{`RCPT TO:<josé@example.net> ORCPT=utf-8;jos\x{E9}@example.net`}},
		{"bare SIZE means no limit", []string{"SIZE"}, false,
			Envelope{From: "a@example.org", Size: 1 << 40, Rcpts: []Rcpt{{Addr: "b@example.net"}}},
			"MAIL FROM:<a@example.org> SIZE=1099511627776", []string{"RCPT TO:<b@example.net>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connWithExt(tt.tls, tt.ext...)
			tr, err := c.transaction(&tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if tr.mail != tt.mail {
				t.Errorf("MAIL = %q, want %q", tr.mail, tt.mail)
			}
			if strings.Join(tr.rcpts, "|") != strings.Join(tt.rcpts, "|") {
				t.Errorf("RCPT = %q, want %q", tr.rcpts, tt.rcpts)
			}
		})
	}
}

func TestTransactionRefused(t *testing.T) {
	all := []string{"SIZE 10000", "8BITMIME", "SMTPUTF8", "DSN", "REQUIRETLS"}
	rc := []Rcpt{{Addr: "b@example.net"}}
	tests := []struct {
		name     string
		ext      []string
		tls      bool
		env      Envelope
		wantExt  string // CapabilityError.Extension, or "" for a *CommandError
		enhanced [3]int
	}{
		{"no recipients", all, true, Envelope{From: "a@example.org"}, "", [3]int{}},
		{"CRLF in sender", all, true, Envelope{From: "a@example.org>\r\nRSET", Rcpts: rc}, "", [3]int{}},
		{"space in recipient", all, true, Envelope{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net> NOTIFY=NEVER"}}}, "", [3]int{}},
		{"bad RET", all, true, Envelope{From: "a@example.org", Ret: "ALL", Rcpts: rc}, "", [3]int{}},
		{"ENVID with CRLF", all, true, Envelope{From: "a@example.org", EnvID: "x\r\nRSET", Rcpts: rc}, "", [3]int{}},
		{"ENVID over 100 characters", all, true, Envelope{From: "a@example.org", EnvID: strings.Repeat("x", 101), Rcpts: rc}, "", [3]int{}},
		{"bad ENVID is refused even without DSN", nil, false, Envelope{From: "a@example.org", EnvID: "é", Rcpts: rc}, "", [3]int{}},
		{"bad NOTIFY", all, true, Envelope{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net", Notify: []string{"NEVER", "DELAY"}}}}, "", [3]int{}},
		{"bad ORCPT", all, true, Envelope{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net", ORcpt: "x y"}}}, "", [3]int{}},
		{"negative size", all, true, Envelope{From: "a@example.org", Size: -1, Rcpts: rc}, "", [3]int{}},
		{"message over SIZE (RFC 1870 §6)", all, true, Envelope{From: "a@example.org", Size: 10001, Rcpts: rc}, "SIZE", [3]int{5, 3, 4}},
		{"8-bit content without 8BITMIME", nil, false, Envelope{From: "a@example.org", Body8BitMIME: true, Rcpts: rc}, "8BITMIME", [3]int{5, 6, 3}},
		{"UTF-8 sender without SMTPUTF8 (5.6.7)", nil, false, Envelope{From: "josé@example.org", Rcpts: rc}, "SMTPUTF8", [3]int{5, 6, 7}},
		{"UTF-8 headers without SMTPUTF8", nil, false, Envelope{From: "a@example.org", SMTPUTF8: true, Rcpts: rc}, "SMTPUTF8", [3]int{5, 6, 7}},
		{"REQUIRETLS not advertised (RFC 8689 §4.1, 5.7.30)", []string{"DSN"}, true, Envelope{From: "a@example.org", RequireTLS: true, Rcpts: rc}, "REQUIRETLS", [3]int{5, 7, 30}},
		{"REQUIRETLS advertised without TLS", all, false, Envelope{From: "a@example.org", RequireTLS: true, Rcpts: rc}, "REQUIRETLS", [3]int{5, 7, 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := connWithExt(tt.tls, tt.ext...).transaction(&tt.env)
			var ce *CommandError
			var pe *CapabilityError
			switch {
			case tt.wantExt == "" && !errors.As(err, &ce):
				t.Fatalf("got %v, want a *CommandError", err)
			case tt.wantExt != "" && !errors.As(err, &pe):
				t.Fatalf("got %v, want a *CapabilityError", err)
			case tt.wantExt != "" && (pe.Extension != tt.wantExt || pe.Enhanced != tt.enhanced):
				t.Fatalf("got %s %v, want %s %v", pe.Extension, pe.Enhanced, tt.wantExt, tt.enhanced)
			}
			if ce != nil && ce.Temporary() || pe != nil && pe.Temporary() {
				t.Error("refusal of the envelope reported as temporary")
			}
		})
	}
}

func FuzzCheckMailbox(f *testing.F) {
	for _, s := range []string{"alice@example.org", `"a,b"@x.example`, "josé@bücher.example", "a@[IPv6:::1]", "a@b>\r\nRSET", "a@[x:y]", "0@[0:<]"} {
		f.Add(s, "FAILURE", s)
		f.Add(`"a\ b`+s, "NEVER", "x")
	}
	// At the limits: a 64-octet local part, a 63-octet label, a path of
	// maxPath octets and one more, an ORCPT of maxORcpt.
	label := strings.Repeat("d", maxLabel)
	long := strings.Repeat("l", 64) + "@" + label + "." + label
	f.Add(long, "SUCCESS,DELAY", strings.Repeat("o", maxORcpt))
	f.Add(long+"."+strings.Repeat("e", maxPath-len(long)-1), "NEVER", "rfc822;"+long)
	f.Add(long+"."+strings.Repeat("e", maxPath-len(long)), "FAILURE", strings.Repeat("o", maxORcpt+1))
	f.Fuzz(func(t *testing.T, addr, notify, orcpt string) {
		line, err := rcptLine(Rcpt{Addr: addr, Notify: strings.Split(notify, ","), ORcpt: orcpt}, true)
		if err != nil {
			return
		}
		// Whatever was accepted stays one line, inside its brackets, and
		// adds no parameter of its own.
		if strings.ContainsAny(line, "\r\n\x00") {
			t.Fatalf("accepted %q gives a command with a line break: %q", addr, line)
		}
		rest := strings.TrimPrefix(line, "RCPT TO:<"+addr+">")
		for _, p := range strings.Fields(rest) {
			if !strings.HasPrefix(p, "NOTIFY=") && !strings.HasPrefix(p, "ORCPT=") {
				t.Fatalf("accepted input adds parameter %q: %q", p, line)
			}
		}
		if strings.Count(rest, " ") != len(strings.Fields(rest)) {
			t.Fatalf("parameter value with a space: %q", line)
		}
		if strings.ContainsAny(addr, " <>") {
			t.Fatalf("address %q with a space or angle bracket accepted", addr)
		}
	})
}
