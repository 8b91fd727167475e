package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/testenv"
)

// world is the loopback internet send's tests run in:
//
//	dane.test   secure zone, MX mx.dane.test with a "3 1 1" TLSA record
//	sts.test    unsigned zone, MX mx.sts.test under an enforce MTA-STS policy
//	plain.test  unsigned zone, MX mx.plain.test without STARTTLS
//	null.test   null MX (RFC 7505)
//	dark.test   unsigned zone, MX mx.dark.test whose port 25 drops packets
type world struct {
	*testenv.World
	sinks map[string]*testenv.SMTPServer // by MX host name
	ips   map[string]string              // MX host name -> address
}

func newWorld(t *testing.T) *world {
	t.Helper()
	tw, err := testenv.NewWorld()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tw.Close)
	w := &world{World: tw, sinks: make(map[string]*testenv.SMTPServer), ips: make(map[string]string)}
	// The root zone answers the resolver health check (CheckHealth asks
	// for the root SOA).
	must(t, w.DNS.Zone(".", testenv.Secure))
	must(t, w.DNS.Zone("dane.test", testenv.Secure))
	must(t, w.DNS.Zone("sts.test", testenv.Insecure))
	must(t, w.DNS.Zone("plain.test", testenv.Insecure))
	must(t, w.DNS.Zone("null.test", testenv.Secure, "@ 300 IN MX 0 ."))
	must(t, w.DNS.Zone("dark.test", testenv.Insecure))

	daneCert := w.mx(t, "dane.test", "mx.dane.test", true)
	must(t, w.PublishTLSA("mx.dane.test", daneCert))
	w.mx(t, "sts.test", "mx.sts.test", true)
	must(t, w.PublishSTS("sts.test", "20250101", "version: STSv1\nmode: enforce\nmx: mx.sts.test\nmax_age: 86400\n"))
	w.mx(t, "plain.test", "mx.plain.test", false)
	w.mx(t, "dark.test", "mx.dark.test", true)
	w.Dialer.Blackhole(w.ips["mx.dark.test"] + ":25")
	return w
}

// mx starts a sink for host, publishes it as domain's MX and returns the
// certificate it offers (none without STARTTLS).
func (w *world) mx(t *testing.T, domain, host string, starttls bool) (cert tls.Certificate) {
	t.Helper()
	opts := testenv.SMTPOptions{DSN: true}
	if starttls {
		cert = w.CA.MustLeaf(testenv.LeafOptions{}, host)
		opts.Certificate = &cert
	}
	s, ip, err := w.MX(host, opts)
	must(t, err)
	must(t, w.DNS.Add(fmt.Sprintf("%s. 300 IN MX 10 %s.", domain, host)))
	w.sinks[host], w.ips[host] = s, ip
	return cert
}

// env returns an Env on the world; the message is read from stdin.
func (w *world) env(stdin string) (*Env, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	return &Env{
		Resolver: &dane.Resolver{Servers: []dane.Server{{Addr: w.DNS.Addr}}, Timeout: time.Second, Attempts: 1},
		Dial:     w.Dialer.DialContext,
		RootCAs:  w.CA.Pool(),
		FQDN:     func() (string, error) { return "sender.test", nil },
		Stdin:    strings.NewReader(stdin),
		Stdout:   &stdout,
		Stderr:   &stderr,
	}, &stdout, &stderr
}

// result is what one run of the program produced.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// run runs the program on the world with args and the message on stdin.
func (w *world) run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	env, stdout, stderr := w.env(stdin)
	return runEnv(t, env, stdout, stderr, args...)
}

func runEnv(t *testing.T, env *Env, stdout, stderr *bytes.Buffer, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := run(ctx, args, env)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

const testMessage = "From: alice@sender.test\r\nTo: bob@dane.test\r\nSubject: hello\r\n\r\nHello over TLS.\r\n"

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func helos(msgs []testenv.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Helo)
	}
	return out
}
