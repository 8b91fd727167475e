package delivery

import (
	"context"
	"crypto/tls"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/testenv"
	"github.com/sealpost/sealpost/tlsrpt"
)

// testWorld is a loopback internet with a Client wired to it.
type testWorld struct {
	t   *testing.T
	w   *testenv.World
	rec *sessionLog
}

func newTestWorld(t *testing.T, zones ...string) *testWorld {
	t.Helper()
	w, err := testenv.NewWorld()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	for _, z := range zones {
		sec := testenv.Secure
		if name, ok := strings.CutPrefix(z, "insecure:"); ok {
			z, sec = name, testenv.Insecure
		}
		if err := w.DNS.Zone(z, sec); err != nil {
			t.Fatal(err)
		}
	}
	return &testWorld{t: t, w: w, rec: &sessionLog{}}
}

// client returns a Client on the world; edit adjusts its Config.
func (tw *testWorld) client(edit func(*Config)) *Client {
	tw.t.Helper()
	cfg := Config{
		Hostname: "sender.example",
		Resolver: &dane.Resolver{Servers: []dane.Server{{Addr: tw.w.DNS.Addr}}, Timeout: 200 * time.Millisecond, Attempts: 1, FailureTTL: -1},
		Dial:     tw.w.Dialer.DialContext,
		RootCAs:  tw.w.CA.Pool(),
		TLSRPT:   tw.rec,
		Shuffle:  func([]MXHost) {},
		Timeouts: Timeouts{Connect: 2 * time.Second, Greeting: 5 * time.Second, Command: 5 * time.Second,
			Mail: 5 * time.Second, Rcpt: 5 * time.Second, DataInit: 5 * time.Second, DataBlock: 5 * time.Second,
			DataTerm: 5 * time.Second, TLSHandshake: 5 * time.Second},
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		tw.t.Fatal(err)
	}
	tw.t.Cleanup(func() { c.Close() })
	return c
}

// mx starts a sink for host with a certificate for its name (unless opts
// has one, or noTLS) and publishes it as an MX of domain.
func (tw *testWorld) mx(domain string, pref int, host string, opts testenv.SMTPOptions) (*testenv.SMTPServer, string) {
	tw.t.Helper()
	s, ip, err := tw.w.MX(host, opts)
	if err != nil {
		tw.t.Fatal(err)
	}
	if domain != "" {
		if err := tw.w.DNS.Add(domain + ". 300 IN MX " + itoa(pref) + " " + host + "."); err != nil {
			tw.t.Fatal(err)
		}
	}
	return s, ip
}

// cert issues a valid certificate for names.
func (tw *testWorld) cert(names ...string) *tls.Certificate {
	c := tw.w.CA.MustLeaf(testenv.LeafOptions{}, names...)
	return &c
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// sessionLog is a Recorder that keeps every session.
type sessionLog struct {
	mu       sync.Mutex
	sessions []tlsrpt.Session
}

func (l *sessionLog) Record(s tlsrpt.Session) {
	l.mu.Lock()
	l.sessions = append(l.sessions, s)
	l.mu.Unlock()
}

func (l *sessionLog) all() []tlsrpt.Session {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]tlsrpt.Session(nil), l.sessions...)
}

// msg builds a small message to rcpts.
func msg(rcpts ...string) *Message {
	body := "From: a@sender.example\r\nSubject: test\r\n\r\nhello\r\n"
	m := &Message{From: "a@sender.example", Body: strings.NewReader(body), Size: int64(len(body))}
	for _, r := range rcpts {
		m.Recipients = append(m.Recipients, Recipient{Address: r})
	}
	return m
}

func deliver(t *testing.T, c *Client, m *Message) []Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := c.Deliver(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// want checks one result's status and enhanced code ("" skips the code).
func want(t *testing.T, r Result, status Status, enhanced string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %v, want %v (%d %v %s; err %v)", r.Recipient, r.Status, status, r.Code, r.Enhanced, r.Text, r.Err)
	}
	if enhanced != "" {
		got := itoa(r.Enhanced[0]) + "." + itoa(r.Enhanced[1]) + "." + itoa(r.Enhanced[2])
		if got != enhanced {
			t.Fatalf("%s: enhanced code %s, want %s (%d %s; err %v)", r.Recipient, got, enhanced, r.Code, r.Text, r.Err)
		}
	}
}
