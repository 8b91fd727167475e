package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/sealpost/sealpost/internal/testenv"
)

// TestSend runs the program end to end against the loopback world: the
// message goes to a world MX host under the requirement its domain
// publishes, and the table and exit status say so.
func TestSend(t *testing.T) {
	w := newWorld(t)

	t.Run("DANE domain is delivered over DANE-authenticated TLS", func(t *testing.T) {
		r := w.run(t, testMessage, "-from", "alice@sender.test", "bob@dane.test")
		if r.code != exitOK {
			t.Fatalf("want exit 0\n%v", r)
		}
		line := tableLine(t, r.stdout, "bob@dane.test")
		for _, s := range []string{"delivered", "250", "mx.dane.test [" + w.ips["mx.dane.test"] + "]", "TLS 1.3", "DANE-EE", "DANE"} {
			if !strings.Contains(line, s) {
				t.Errorf("result line lacks %q: %q", s, line)
			}
		}
		msgs := w.sinks["mx.dane.test"].Messages()
		if len(msgs) == 0 {
			t.Fatal("the MX host received nothing")
		}
		m := msgs[len(msgs)-1]
		if m.Helo != "sender.test" || m.From != "alice@sender.test" || m.TLS == nil {
			t.Errorf("received EHLO %q, MAIL FROM %q, TLS %v; want sender.test, alice@sender.test over TLS", m.Helo, m.From, m.TLS != nil)
		}
		if !strings.Contains(string(m.Data), "Hello over TLS.") {
			t.Errorf("content not delivered: %q", m.Data)
		}
	})

	t.Run("MTA-STS domain is delivered over WebPKI-authenticated TLS", func(t *testing.T) {
		r := w.run(t, testMessage, "-from", "alice@sender.test", "carol@sts.test")
		if r.code != exitOK {
			t.Fatalf("want exit 0\n%v", r)
		}
		line := tableLine(t, r.stdout, "carol@sts.test")
		for _, s := range []string{"delivered", "WebPKI", "MTA-STS"} {
			if !strings.Contains(line, s) {
				t.Errorf("result line lacks %q: %q", s, line)
			}
		}
	})

	t.Run("a null MX fails permanently and exits 1, in aligned columns", func(t *testing.T) {
		r := w.run(t, testMessage, "-from", "alice@sender.test", "bob@dane.test", "nobody@null.test", "dave@plain.test")
		if r.code != exitFailed {
			t.Fatalf("want exit 1\n%v", r)
		}
		if line := tableLine(t, r.stdout, "nobody@null.test"); !strings.Contains(line, "failed") || !strings.Contains(line, "5.1.10") {
			t.Errorf("null MX line: %q; want failed with 5.1.10", line)
		}
		if line := tableLine(t, r.stdout, "dave@plain.test"); !strings.Contains(line, "delivered") || !strings.Contains(line, "plaintext") {
			t.Errorf("plaintext line: %q; want delivered in plaintext", line)
		}
		checkAligned(t, r.stdout)
	})

	t.Run("every connection timing out says port 25 is unreachable and exits 75", func(t *testing.T) {
		r := w.run(t, testMessage, "-from", "alice@sender.test", "-connect-timeout", "50ms", "erin@dark.test")
		if r.code != exitTempFail {
			t.Fatalf("want exit 75\n%v", r)
		}
		if line := tableLine(t, r.stdout, "erin@dark.test"); !strings.Contains(line, "deferred") {
			t.Errorf("result line %q, want deferred", line)
		}
		if !strings.Contains(r.stderr, "port 25 unreachable") {
			t.Errorf("stderr does not say port 25 is unreachable\n%v", r)
		}
	})

	t.Run("a reachable host is no port 25 problem", func(t *testing.T) {
		r := w.run(t, testMessage, "-from", "alice@sender.test", "-connect-timeout", "50ms", "erin@dark.test", "bob@dane.test")
		if r.code != exitTempFail || strings.Contains(r.stderr, "port 25") {
			t.Errorf("want exit 75 without a port 25 diagnosis\n%v", r)
		}
	})

	t.Run("-requiretls to a server without REQUIRETLS fails with 5.7.30", func(t *testing.T) {
		r := w.run(t, testMessage, "-from", "alice@sender.test", "-requiretls", "bob@dane.test")
		if r.code != exitFailed {
			t.Fatalf("want exit 1\n%v", r)
		}
		if line := tableLine(t, r.stdout, "bob@dane.test"); !strings.Contains(line, "5.7.30") {
			t.Errorf("result line %q, want 5.7.30", line)
		}
	})

	t.Run("-trace prints the dialogue to stderr", func(t *testing.T) {
		r := w.run(t, testMessage, "-from", "alice@sender.test", "-trace", "dave@plain.test")
		if r.code != exitOK {
			t.Fatalf("want exit 0\n%v", r)
		}
		host := "mx.plain.test[" + w.ips["mx.plain.test"] + "]"
		for _, s := range []string{host + " > EHLO sender.test", host + " < 250", host + " > MAIL FROM:<alice@sender.test>"} {
			if !strings.Contains(r.stderr, s) {
				t.Errorf("trace lacks %q\n%v", s, r)
			}
		}
	})

	t.Run("message read from -message file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "msg.eml")
		must(t, os.WriteFile(path, []byte(testMessage), 0o600))
		r := w.run(t, "", "-from", "alice@sender.test", "-message", path, "dave@plain.test")
		if r.code != exitOK {
			t.Fatalf("want exit 0\n%v", r)
		}
	})
}

// TestSendPolicyFile checks that the rules of -policy reach the delivery:
// require_tls makes a server without STARTTLS unusable.
func TestSendPolicyFile(t *testing.T) {
	w := newWorld(t)
	path := filepath.Join(t.TempDir(), "policy.json")
	must(t, os.WriteFile(path, []byte(`{"domains": {"plain.test": {"require_tls": true}}}`), 0o600))
	before := len(w.sinks["mx.plain.test"].Messages())

	r := w.run(t, testMessage, "-from", "alice@sender.test", "-policy", path, "dave@plain.test")
	if r.code != exitTempFail {
		t.Fatalf("want exit 75\n%v", r)
	}
	if line := tableLine(t, r.stdout, "dave@plain.test"); !strings.Contains(line, "deferred") || !strings.Contains(line, "4.7.10") {
		t.Errorf("result line %q, want deferred with 4.7.10", line)
	}
	if n := len(w.sinks["mx.plain.test"].Messages()); n != before {
		t.Errorf("the host without STARTTLS received %d messages despite require_tls", n-before)
	}
}

// TestExplain checks that -explain prints each host's requirement and why,
// and contacts no MX host.
func TestExplain(t *testing.T) {
	w := newWorld(t)
	policy := filepath.Join(t.TempDir(), "policy.json")
	must(t, os.WriteFile(policy, []byte(`{"domains": {"plain.test": {"dane_only": true}}}`), 0o600))

	r := w.run(t, "", "-explain", "-policy", policy, "bob@dane.test", "sts.test", "plain.test", "null.test", "BOB@Dane.Test")
	if r.code != exitOK {
		t.Fatalf("want exit 0\n%v", r)
	}
	for _, want := range []string{
		"domain dane.test\n  MX, DNSSEC-secure\n",
		"mx.dane.test [" + w.ips["mx.dane.test"] + "]\n    authenticated TLS required, check DANE (DANE)\n",
		"TLSA 3 1 1 ",
		"domain sts.test\n",
		"MTA-STS: mode enforce, mx mx.sts.test",
		"authenticated TLS required, check WebPKI (MTA-STS)",
		"domain plain.test\n",
		"domain null.test\n  not deliverable: ",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("explanation lacks %q\n%v", want, r)
		}
	}
	if strings.Count(r.stdout, "domain dane.test\n") != 1 {
		t.Errorf("dane.test explained more than once\n%v", r)
	}
	// dane_only: the host without TLSA records is not used.
	plain := r.stdout[strings.Index(r.stdout, "domain plain.test"):]
	if !strings.Contains(plain, "not used") {
		t.Errorf("plain.test under dane_only: host not marked unused\n%s", plain)
	}
	for host, ip := range w.ips {
		if n := w.Dialer.Dials(ip + ":25"); n != 0 {
			t.Errorf("-explain connected to %s %d times", host, n)
		}
	}

	t.Run("-requiretls explains the decision for a message with REQUIRETLS (RFC 8689 §4.2.1)", func(t *testing.T) {
		r := w.run(t, "", "-explain", "-requiretls", "dane.test", "plain.test")
		dane, plain, _ := strings.Cut(r.stdout, "domain plain.test")
		if r.code != exitOK {
			t.Fatalf("exit %d\n%v", r.code, r)
		}
		// A DANE host stays usable, with the server's REQUIRETLS support
		// to be seen once connected.
		if !strings.Contains(dane, "the message requires REQUIRETLS") || !strings.Contains(dane, "advertises\n  REQUIRETLS once connected") {
			t.Errorf("dane.test: want the REQUIRETLS requirement and the note on the server\n%s", dane)
		}
		// A host from an insecure MX answer without MTA-STS is ruled out.
		if !strings.Contains(plain, "not used: 550 5.7.30") || strings.Contains(plain, "once connected") {
			t.Errorf("plain.test: want the host ruled out with 5.7.30 and no note\n%s", plain)
		}
	})
}

// TestResolverHealth checks the start-up check of the resolver.
func TestResolverHealth(t *testing.T) {
	w := newWorld(t)
	w.DNS.SetValidating(false)

	t.Run("a resolver that does not validate is a plain warning", func(t *testing.T) {
		r := w.run(t, testMessage, "-from", "alice@sender.test", "bob@dane.test")
		if !strings.Contains(r.stderr, "no validating resolver configured: DANE cannot be used") {
			t.Errorf("no plain warning\n%v", r)
		}
		if r.code != exitOK {
			t.Errorf("want exit 0: DANE is lost, not delivery\n%v", r)
		}
		if line := tableLine(t, r.stdout, "bob@dane.test"); strings.Contains(line, "DANE") {
			t.Errorf("DANE used without a validating resolver: %q", line)
		}
	})

	t.Run("-require-dane-resolver refuses to run", func(t *testing.T) {
		dials := w.Dialer.Dials(w.ips["mx.dane.test"] + ":25")
		r := w.run(t, testMessage, "-from", "alice@sender.test", "-require-dane-resolver", "bob@dane.test")
		if r.code != exitConfig || !strings.Contains(r.stderr, "refusing") {
			t.Errorf("want exit 78 and a refusal\n%v", r)
		}
		if w.Dialer.Dials(w.ips["mx.dane.test"]+":25") != dials {
			t.Error("connected to an MX host after refusing to run")
		}
	})

	t.Run("a resolver that does not answer stops send", func(t *testing.T) {
		env, stdout, stderr := w.env(testMessage)
		env.Resolver = nil
		// Nothing listens on port 9 of loopback: the query fails at once.
		r := runEnv(t, env, stdout, stderr, "-from", "alice@sender.test", "-resolver", "127.0.0.1:9", "bob@dane.test")
		if r.code != exitTempFail || !strings.Contains(r.stderr, "no DNS resolver answers") {
			t.Errorf("want exit 75 and a plain message\n%v", r)
		}
	})
}

// TestDNSSECProbe: a validating resolver that serves the mail domains but
// refuses the root zone (split horizon, a lab) does not stop -explain; it
// is a warning that names -dnssec-probe, and -dnssec-probe with a signed
// name it serves shows DANE usable. -require-dane-resolver still refuses
// when nothing could be shown.
func TestDNSSECProbe(t *testing.T) {
	w := newWorld(t)
	w.DNS.SetFault(".", dns.TypeSOA, testenv.FaultRefused)

	r := w.run(t, "", "-explain", "dane.test")
	if r.code != exitOK || !strings.Contains(r.stderr, "give -dnssec-probe a signed name") || !strings.Contains(r.stdout, "DANE") {
		t.Errorf("want exit 0, a warning naming -dnssec-probe and the DANE decision\n%v", r)
	}
	r = w.run(t, "", "-explain", "-dnssec-probe", "dane.test", "dane.test")
	if r.code != exitOK || strings.Contains(r.stderr, "warning") {
		t.Errorf("want exit 0 without a warning\n%v", r)
	}
	r = w.run(t, "", "-explain", "-require-dane-resolver", "dane.test")
	if r.code != exitConfig || !strings.Contains(r.stderr, "refusing") {
		t.Errorf("want exit 78 and a refusal\n%v", r)
	}
}

// TestResolverFlag checks that -resolver names the resolver, as an address
// or a resolv.conf file.
func TestResolverFlag(t *testing.T) {
	w := newWorld(t)
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	must(t, os.WriteFile(conf, []byte("# test\nnameserver "+w.DNS.Addr+"\n"), 0o600))
	for _, arg := range []string{w.DNS.Addr, conf} {
		t.Run(arg, func(t *testing.T) {
			env, stdout, stderr := w.env(testMessage)
			env.Resolver = nil
			r := runEnv(t, env, stdout, stderr, "-resolver", arg, "-from", "alice@sender.test", "bob@dane.test")
			if r.code != exitOK || !strings.Contains(tableLine(t, r.stdout, "bob@dane.test"), "DANE-EE") {
				t.Errorf("want delivery over DANE\n%v", r)
			}
			if strings.Contains(r.stderr, "warning") {
				t.Errorf("unexpected warning\n%v", r)
			}
		})
	}
}

// TestUsage checks the errors that stop send before it sends anything.
func TestUsage(t *testing.T) {
	w := newWorld(t)
	badPolicy := filepath.Join(t.TempDir(), "policy.json")
	must(t, os.WriteFile(badPolicy, []byte(`{"domains": {"plain.test": {"requre_tls": true}}}`), 0o600))
	noFQDN := func(e *Env) {
		e.FQDN = func() (string, error) { return "", os.ErrNotExist }
	}
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		edit  func(*Env)
		code  int
		want  string
	}{
		{"no recipients", testMessage, []string{"-from", "a@sender.test"}, nil, exitUsage, "no recipients"},
		{"no sender", testMessage, []string{"bob@dane.test"}, nil, exitUsage, "-from is required"},
		{"recipient without a domain", testMessage, []string{"-from", "a@sender.test", "bob"}, nil, exitUsage, `recipient "bob"`},
		{"empty message", "\r\n", []string{"-from", "a@sender.test", "bob@dane.test"}, nil, exitUsage, "empty"},
		{"message without a header", "hello\r\n", []string{"-from", "a@sender.test", "bob@dane.test"}, nil, exitUsage, "header field"},
		{"misspelt policy field, with its line and column", testMessage, []string{"-from", "a@sender.test", "-policy", badPolicy, "bob@dane.test"}, nil, exitConfig,
			badPolicy + `:1:29: domains["plain.test"]: unknown field "requre_tls"`},
		{"missing policy file", testMessage, []string{"-from", "a@sender.test", "-policy", badPolicy + ".missing", "bob@dane.test"}, nil, exitConfig, "-policy"},
		{"no fully qualified name", testMessage, []string{"-from", "a@sender.test", "bob@dane.test"}, noFQDN, exitConfig, "give one with -ehlo"},
		{"bad -ehlo", testMessage, []string{"-from", "a@sender.test", "-ehlo", "bad name", "bob@dane.test"}, nil, exitConfig, "-ehlo"},
		{"bad -resolver", testMessage, []string{"-from", "a@sender.test", "-resolver", "/does/not/exist", "bob@dane.test"}, nil, exitUsage, "-resolver"},
		{"flag after the recipients", testMessage, []string{"-from", "a@sender.test", "bob@dane.test", "-trace"}, nil, exitUsage, "flags come first"},
		{"unknown flag", testMessage, []string{"-frm", "a@sender.test", "bob@dane.test"}, nil, exitUsage, "-frm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, stdout, stderr := w.env(tc.stdin)
			if tc.edit != nil {
				tc.edit(env)
			}
			r := runEnv(t, env, stdout, stderr, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("want exit %d and %q on stderr\n%v", tc.code, tc.want, r)
			}
			if r.stdout != "" {
				t.Errorf("printed results although nothing was sent\n%v", r)
			}
		})
	}
}

// TestEHLOFromFQDN checks that -ehlo wins over the machine's name and
// that the machine's name is the default.
func TestEHLOFromFQDN(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct{ args []string }{{nil}, {[]string{"-ehlo", "Out.Sender.Test."}}} {
		env, stdout, stderr := w.env(testMessage)
		env.FQDN = func() (string, error) { return "host.sender.test", nil }
		args := append(tc.args, "-from", "a@sender.test", "dave@plain.test")
		if r := runEnv(t, env, stdout, stderr, args...); r.code != exitOK {
			t.Fatalf("want exit 0\n%v", r)
		}
	}
	msgs := w.sinks["mx.plain.test"].Messages()
	if len(msgs) != 2 || msgs[0].Helo != "host.sender.test" || msgs[1].Helo != "out.sender.test" {
		t.Errorf("EHLO names %v, want host.sender.test then out.sender.test", helos(msgs))
	}
}

// tableLine returns the result line of the recipient.
func tableLine(t *testing.T, out, recipient string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, recipient+" ") {
			return line
		}
	}
	t.Fatalf("no result line for %s in\n%s", recipient, out)
	return ""
}

// checkAligned checks that every column of the table starts at the same
// offset on every line.
func checkAligned(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	header := lines[0]
	for _, col := range []string{"STATUS", "CODE", "HOST", "TLS", "AUTH", "POLICY", "REPLY"} {
		at := strings.Index(header, " "+col) + 1
		for _, line := range lines[1:] {
			if len(line) <= at || line[at-1] != ' ' || line[at] == ' ' {
				t.Errorf("column %s (offset %d) not aligned in line %q", col, at, line)
			}
		}
	}
}

// TestSendOverrideIsLogged checks that an override from the policy file is
// applied and said on stderr, with its reason, every time it is used.
func TestSendOverrideIsLogged(t *testing.T) {
	w := newWorld(t)
	path := filepath.Join(t.TempDir(), "policy.json")
	must(t, os.WriteFile(path, []byte(`{"domains": {"dane.test": {"override": {"ignore_dane": true, "reason": "ticket 4711"}}}}`), 0o600))
	r := w.run(t, testMessage, "-from", "alice@sender.test", "-policy", path, "bob@dane.test")
	if r.code != exitOK {
		t.Fatalf("want exit 0\n%v", r)
	}
	if !strings.Contains(r.stderr, "level=WARN") || !strings.Contains(r.stderr, "ticket 4711") {
		t.Errorf("the override is not logged with its reason\n%v", r)
	}
}
