package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/dnsname"
)

// TestRun runs the program's entry end to end against the loopback world:
// flags, the resolver named with -resolver, the report and the exit status.
func TestRun(t *testing.T) {
	w := newWorld(t)
	w.build(t, domainSetup{})
	w.build(t, domainSetup{Domain: "warn.example", NoTLSRPT: true})
	w.build(t, domainSetup{Domain: "bad.example", Hosts: []hostSetup{{Name: "mx1", NoSTARTTLS: true}}})

	run := func(args ...string) (string, string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		env := w.env
		env.Resolver = nil // -resolver must provide it
		var stdout, stderr bytes.Buffer
		env.Stderr = &stderr
		code := run(ctx, args, &stdout, env)
		return stdout.String(), stderr.String(), code
	}

	t.Run("well-configured domain exits 0", func(t *testing.T) {
		out, errOut, code := run("-resolver", w.DNS.Addr, "-timeout", "2s", "Good.Example.")
		if code != exitOK {
			t.Errorf("exit %d, want %d\n%s%s", code, exitOK, out, errOut)
		}
		for _, s := range []string{"good.example", "MTA-STS (RFC 8461)", "0 errors, 0 warnings"} {
			if !strings.Contains(out, s) {
				t.Errorf("output lacks %q:\n%s", s, out)
			}
		}
		if strings.Contains(out, "\x1b[") {
			t.Errorf("colour written to a buffer:\n%q", out)
		}
	})
	t.Run("warnings exit 1", func(t *testing.T) {
		out, _, code := run("-resolver", w.DNS.Addr, "warn.example")
		if code != exitWarnings {
			t.Errorf("exit %d, want %d\n%s", code, exitWarnings, out)
		}
		if !strings.Contains(out, `     _smtp._tls.warn.example. TXT "v=TLSRPTv1; rua=mailto:tlsrpt@warn.example"`+"\n") {
			t.Errorf("output lacks the TLS-RPT fix:\n%s", out)
		}
	})
	t.Run("errors exit 2, as JSON", func(t *testing.T) {
		out, _, code := run("-json", "-resolver", w.DNS.Addr, "bad.example")
		if code != exitErrors {
			t.Errorf("exit %d, want %d\n%s", code, exitErrors, out)
		}
		var got struct {
			Domain   string
			Errors   int
			Findings []struct{ Area, Subject, Severity, Message, Fix string }
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out)
		}
		if got.Domain != "bad.example" || got.Errors == 0 {
			t.Errorf("domain %q, %d errors; want bad.example with errors", got.Domain, got.Errors)
		}
		found := false
		for _, f := range got.Findings {
			if f.Area == AreaHosts && f.Severity == "error" && strings.Contains(f.Message, "STARTTLS") && f.Fix != "" {
				found = true
			}
		}
		if !found {
			t.Errorf("no STARTTLS error with a fix in %s", out)
		}
	})
	for _, tc := range []struct {
		name, stderr string
		args         []string
	}{
		{"no domain", "usage: check", nil},
		{"two domains", "usage: check", []string{"a.example", "b.example"}},
		{"unknown flag", "flag provided but not defined", []string{"-colour", "a.example"}},
		{"an address", "is an address", []string{"192.0.2.1"}},
		{"bad label", "empty label", []string{"a..example"}},
		{"a label over 63 octets", "over 63", []string{"a" + strings.Repeat("b", 63) + ".example"}},
		{"bad resolver", "-resolver", []string{"-resolver", "dns.example", "a.example"}},
	} {
		t.Run("usage: "+tc.name, func(t *testing.T) {
			out, errOut, code := run(tc.args...)
			if code != exitUsage || !strings.Contains(errOut, tc.stderr) || out != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want %d, %q and no report", code, errOut, out, exitUsage, tc.stderr)
			}
		})
	}
}

// FuzzNormalizeDomain: whatever a user types, what normalizeDomain
// accepts is a canonical name by dnsname's rule (lower-case A-labels, no
// trailing dot, within the limits), which it accepts again unchanged.
func FuzzNormalizeDomain(f *testing.F) {
	for _, s := range []string{"Example.COM.", "a..b", "-a.example", "exämple.com", "192.0.2.1", "[::1]", " x.example ", "_smtp._tls.example", strings.Repeat("a.", 130), "\u212Aelvin.example", strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61), "xn--" + strings.Repeat("a", 60) + ".example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := normalizeDomain(s)
		if err != nil {
			return
		}
		if c, err := dnsname.Canonical(d); err != nil || c != d || len(d) > dnsname.MaxNameLen {
			t.Fatalf("normalizeDomain(%q) = %q, not canonical (%q, %v)", s, d, c, err)
		}
		if again, err := normalizeDomain(d); err != nil || again != d {
			t.Fatalf("normalizeDomain(%q) = %q, %v; want it unchanged", d, again, err)
		}
	})
}

// TestColour: colour codes only when asked for, and the columns of the
// plain report stay aligned whatever the severity.
func TestColour(t *testing.T) {
	rep := &Report{Domain: "a.example", Checked: "2026-01-01T00:00:00Z"}
	rep.add(AreaMX, "a.example", OK, "fine", "")
	rep.add(AreaMX, "mx.a.example", Error, "broken", "mend it")
	var plain, coloured strings.Builder
	writeText(&plain, rep, false)
	writeText(&coloured, rep, true)
	if strings.Contains(plain.String(), "\x1b[") {
		t.Errorf("plain report has colour codes:\n%s", plain.String())
	}
	if !strings.Contains(coloured.String(), ansiRed+"error  "+ansiReset) {
		t.Errorf("coloured report lacks a red severity:\n%q", coloured.String())
	}
	want := "  ok       a.example     fine\n" +
		"  error    mx.a.example  broken\n" +
		"                         fix: mend it\n"
	if !strings.Contains(plain.String(), want) {
		t.Errorf("plain report:\n%s\nwant the lines:\n%s", plain.String(), want)
	}
}
