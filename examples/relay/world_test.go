package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/testenv"
	"golang.org/x/crypto/bcrypt"
)

// world is the loopback internet the relay's tests run in:
//
//	dest.test     secure zone, MX mx.dest.test with a "3 1 1" TLSA record
//	reports.test  unsigned zone, MX mx.reports.test: where rpt.test's
//	              TLS-RPT reports go
//	rpt.test      secure zone, _smtp._tls record "rua=mailto:tlsrpt@reports.test"
type world struct {
	*testenv.World
	dest, reports *testenv.SMTPServer
	destIP        string
}

func newWorld(t *testing.T, destOpts testenv.SMTPOptions) *world {
	t.Helper()
	tw, err := testenv.NewWorld()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tw.Close)
	w := &world{World: tw}
	must(t, w.DNS.Zone(".", testenv.Secure)) // for the resolver health check
	must(t, w.DNS.Zone("dest.test", testenv.Secure, "@ 300 IN MX 10 mx.dest.test."))
	must(t, w.DNS.Zone("reports.test", testenv.Insecure, "@ 300 IN MX 10 mx.reports.test."))
	must(t, w.DNS.Zone("rpt.test", testenv.Secure, `_smtp._tls 300 IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@reports.test"`))

	cert := w.CA.MustLeaf(testenv.LeafOptions{}, "mx.dest.test")
	destOpts.Certificate = &cert
	w.dest, w.destIP, err = w.MX("mx.dest.test", destOpts)
	must(t, err)
	must(t, w.PublishTLSA("mx.dest.test", cert))
	rcert := w.CA.MustLeaf(testenv.LeafOptions{}, "mx.reports.test")
	w.reports, _, err = w.MX("mx.reports.test", testenv.SMTPOptions{Certificate: &rcert})
	must(t, err)
	return w
}

// env returns an Env on the world, logging to log.
func (w *world) env(log *syncBuffer) *Env {
	return &Env{
		Resolver: &dane.Resolver{Servers: []dane.Server{{Addr: w.DNS.Addr}}, Timeout: time.Second, Attempts: 1},
		Dial:     w.Dialer.DialContext,
		RootCAs:  w.CA.Pool(),
		FQDN:     func() (string, error) { return "relay.test", nil },
		Stderr:   log,
	}
}

// config returns a relay configuration for tests: loopback on a free
// port, a store in a temporary directory, a DKIM key for relay.test.
func config(t *testing.T) Config {
	t.Helper()
	dir := t.TempDir()
	return Config{
		Listen:          "127.0.0.1:0",
		Hostname:        "relay.test",
		Store:           filepath.Join(dir, "relay.db"),
		DKIM:            []DKIMConfig{{Domain: "relay.test", Selector: "s1", KeyFile: writeKey(t, dir)}},
		ShutdownTimeout: Duration(5 * time.Second),
		LogLevel:        "debug",
	}
}

// writeKey writes a fresh Ed25519 key as PKCS #8 PEM and returns its path.
func writeKey(t *testing.T, dir string) string {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	must(t, err)
	path := filepath.Join(dir, "dkim.pem")
	must(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	return path
}

// hash returns a cheap bcrypt hash of password, for tests.
func hash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	must(t, err)
	return string(h)
}

// running is a relay started by start.
type running struct {
	*Relay
	cancel context.CancelFunc
	done   chan error
}

// start builds and runs a relay; stop (or the test's end) shuts it down.
func start(t *testing.T, cfg Config, env *Env) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := New(ctx, cfg, env)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	rr := &running{Relay: r, cancel: cancel, done: make(chan error, 1)}
	go func() { rr.done <- r.Run(ctx) }()
	t.Cleanup(func() { rr.stop(t) })
	return rr
}

// stop cancels the relay's context and returns what Run returned.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("the relay did not stop within 15s of its context ending")
		return nil
	}
}

// submit sends one message to the relay as a submitting client would;
// user "" skips AUTH.
func submit(t *testing.T, addr, user, password, from string, to []string, body string) (string, error) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return "", err
	}
	if user != "" {
		if err := c.Auth(sasl.NewPlainClient("", user, password)); err != nil {
			return "", err
		}
	}
	return transaction(c, from, to, body)
}

// transaction runs MAIL, RCPT and DATA on c and returns the final reply.
func transaction(c *smtp.Client, from string, to []string, body string) (string, error) {
	if err := c.Mail(from, nil); err != nil {
		return "", err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return "", err
		}
	}
	w, err := c.Data()
	if err != nil {
		return "", err
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return "", err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	return resp.StatusText, c.Quit()
}

// tlsConfig trusts the world's CA for the relay's certificate.
func (w *world) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: w.CA.Pool(), ServerName: "relay.test"}
}

// writeCert writes a certificate for relay.test and its key as PEM files.
func (w *world) writeCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	cert := w.CA.MustLeaf(testenv.LeafOptions{}, "relay.test")
	dir := t.TempDir()
	var chain bytes.Buffer
	for _, der := range cert.Certificate {
		must(t, pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	must(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	must(t, os.WriteFile(certFile, chain.Bytes(), 0o600))
	must(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	return certFile, keyFile
}

func waitMessages(t *testing.T, s *testenv.SMTPServer, n int) []testenv.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	msgs, err := s.WaitMessages(ctx, n)
	if err != nil {
		t.Fatalf("waiting for %d messages: %v (got %d)", n, err, len(msgs))
	}
	return msgs
}

const testMessage = "From: alice@relay.test\r\nTo: bob@dest.test\r\nSubject: hello\r\n\r\nHello through the relay.\r\n"

// syncBuffer is a bytes.Buffer safe for the relay's concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func contains(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(s, want) {
			t.Errorf("%s lacks %q:\n%s", what, want, s)
		}
	}
}
