package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/hostdial"
)

// defaultTimeout bounds one network step when Env.Timeout is zero.
const defaultTimeout = 10 * time.Second

// Env is the world the checks look at: every way they reach the network,
// and the clock. Tests fill it with the loopback world of
// internal/testenv; main fills it with the real one.
type Env struct {
	// Resolver answers every DNS question and says whether the answer is
	// DNSSEC-secure. Nil means a dane.Resolver reading /etc/resolv.conf.
	Resolver *dane.Resolver
	// Dial connects to MX hosts ("tcp", "192.0.2.1:25") and, when
	// HTTPClient is nil, to the MTA-STS policy host. Nil means a
	// net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// HTTPClient fetches the MTA-STS policy. Nil means a client that dials
	// through Dial and trusts RootCAs. The check never follows redirects,
	// whatever the client's CheckRedirect says (RFC 8461 §3.3).
	HTTPClient *http.Client
	// RootCAs are the WebPKI roots that the certificates of the policy
	// host (when HTTPClient is nil) and of the MX hosts must chain to. Nil
	// means the system's roots.
	RootCAs *x509.CertPool
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Timeout bounds each network step: one DNS look-up, one policy fetch,
	// one SMTP conversation with an MX host. Zero means 10 seconds.
	Timeout time.Duration
	// HeloName is the name the check gives in EHLO to MX hosts. Empty
	// means "localhost".
	HeloName string
	// Stderr receives usage and fatal errors of run. Nil discards them.
	Stderr io.Writer
}

func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Env) timeout() time.Duration {
	if e.Timeout > 0 {
		return e.Timeout
	}
	return defaultTimeout
}

func (e *Env) heloName() string {
	if e.HeloName != "" {
		return e.HeloName
	}
	return "localhost"
}

func (e *Env) resolver() *dane.Resolver {
	if e.Resolver != nil {
		return e.Resolver
	}
	e.Resolver = &dane.Resolver{}
	return e.Resolver
}

// dial connects through Dial, or else directly, to an address: a host
// name (the policy host's) is resolved first through the env's resolver,
// not the system's, so that -resolver answers every question the check
// asks and Dial is only ever given "ip:port".
func (e *Env) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return (&hostdial.Dialer{Resolver: e.resolver(), Dial: e.Dial}).DialContext(ctx, network, addr)
}

// httpClient returns the client for policy fetches: HTTPClient, or one
// that dials through Dial and checks certificates against RootCAs at the
// env's time. The sts package turns redirects off in its copy.
func (e *Env) httpClient() *http.Client {
	if e.HTTPClient != nil {
		return e.HTTPClient
	}
	return &http.Client{
		Transport: &http.Transport{
			DialContext: e.dial,
			TLSClientConfig: &tls.Config{
				RootCAs:    e.RootCAs,
				MinVersion: tls.VersionTLS12,
				Time:       e.Now,
			},
			TLSHandshakeTimeout: e.timeout(),
			DisableKeepAlives:   true, // one fetch per run: nothing to keep alive
			// No Proxy: RFC 8461 §3.3 fetches go to the policy host.
		},
	}
}

// peerCertificates remembers the certificate chain of the last HTTPS
// answer a client received, so that the check can say when the policy
// host's certificate expires; the sts package only says whether it is
// valid. It is safe for concurrent use.
type peerCertificates struct {
	mu    sync.Mutex
	chain []*x509.Certificate
}

// client returns a copy of c whose transport records the chains.
func (p *peerCertificates) client(c *http.Client) *http.Client {
	cp := *c
	next := cp.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	cp.Transport = roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if resp != nil && resp.TLS != nil {
			p.mu.Lock()
			p.chain = resp.TLS.PeerCertificates
			p.mu.Unlock()
		}
		return resp, err
	})
	return &cp
}

// leaf returns the leaf certificate last seen, or nil.
func (p *peerCertificates) leaf() *x509.Certificate {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.chain) == 0 {
		return nil
	}
	return p.chain[0]
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// dnsQueryTimeout caps the wait for one DNS answer from one resolver: a
// resolver slower than that is better given up for the next attempt.
const dnsQueryTimeout = 3 * time.Second
