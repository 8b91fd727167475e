package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
)

// ErrNoRoute is returned (wrapped in a *net.OpError) when a Dialer is asked
// for an address nobody routed: the test world has no such host, and the
// dialer never falls back to the real network.
var ErrNoRoute = errors.New("testenv: no route to address")

// maxDialLog bounds the dial log a Dialer keeps.
const maxDialLog = 10000

// Dialer maps the addresses the library dials ("127.0.0.2:25",
// "[::1]:25", "mta-sts.example.com:443") to loopback listeners, so the
// library's own code paths run unchanged in tests. It dials nothing else.
// Per address it can refuse connections, swallow them (blackhole) or add
// latency. It is safe for concurrent use; routes and faults may change
// while connections are being made.
type Dialer struct {
	mu     sync.Mutex
	routes map[string]*route
	log    []string
	counts map[string]int
}

// route is what a Dialer knows about one dialed address.
type route struct {
	to        string // loopback listener address; empty when only faults are set
	refuse    bool
	blackhole bool
	latency   time.Duration
}

// NewDialer returns a Dialer with no routes.
func NewDialer() *Dialer {
	return &Dialer{routes: make(map[string]*route), counts: make(map[string]int)}
}

// routeKey normalizes a dialed address: host names lower-cased without a
// trailing dot, IP addresses in canonical form ("[::1]:25",
// "127.0.0.2:25"), so that equal addresses written differently match.
func routeKey(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().String()
	} else {
		host = normalizeName(host)
	}
	return net.JoinHostPort(host, port), nil
}

// entry returns the route for addr, creating it; it panics on an address
// without a port, which is a bug in the test.
func (d *Dialer) entry(addr string) *route {
	key, err := routeKey(addr)
	if err != nil {
		panic(fmt.Sprintf("testenv: Dialer: bad address %q: %v", addr, err))
	}
	r := d.routes[key]
	if r == nil {
		r = &route{}
		d.routes[key] = r
	}
	return r
}

// Route makes connections to addr (host:port, host a name or an IP
// address) go to the loopback listener at to, such as a sink's Addr().
// Faults set on addr stay in place. Route, like the fault setters, panics
// when addr has no port: that is a bug in the test.
func (d *Dialer) Route(addr, to string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.entry(addr).to = to
}

// Target returns the listener address that addr is routed to.
func (d *Dialer) Target(addr string) (string, bool) {
	key, err := routeKey(addr)
	if err != nil {
		return "", false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.routes[key]
	if r == nil || r.to == "" {
		return "", false
	}
	return r.to, true
}

// Refuse makes dials of addr fail at once with "connection refused"
// (syscall.ECONNREFUSED), as a host with nothing listening does.
func (d *Dialer) Refuse(addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.entry(addr).refuse = true
}

// Blackhole makes dials of addr hang until their context is done, as a
// host behind a firewall that drops packets does.
func (d *Dialer) Blackhole(addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.entry(addr).blackhole = true
}

// Latency delays every dial of addr by l (or until the context is done).
func (d *Dialer) Latency(addr string, l time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.entry(addr).latency = l
}

// Heal removes the faults set on addr; its route stays.
func (d *Dialer) Heal(addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.entry(addr)
	r.refuse, r.blackhole, r.latency = false, false, 0
}

// Dials returns how many times addr was dialed, whatever the outcome.
func (d *Dialer) Dials(addr string) int {
	key, err := routeKey(addr)
	if err != nil {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.counts[key]
}

// Dialed returns the addresses dialed so far, normalized, in order (the
// first 10000), so tests can check the order MX hosts were tried in.
func (d *Dialer) Dialed() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.log...)
}

// DialContext connects to the listener addr is routed to. It fails with
// ErrNoRoute for an unrouted address, with ECONNREFUSED for a refused one,
// and with the context's error when ctx ends first (a blackholed address
// always ends so). network must be "tcp", "tcp4" or "tcp6".
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	opErr := func(err error) error { return &net.OpError{Op: "dial", Net: network, Err: err} }
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, opErr(fmt.Errorf("testenv: network %q not supported, want tcp", network))
	}
	key, err := routeKey(addr)
	if err != nil {
		return nil, opErr(err)
	}
	d.mu.Lock()
	d.counts[key]++
	if len(d.log) < maxDialLog {
		d.log = append(d.log, key)
	}
	r, ok := d.routes[key]
	var rt route
	if ok {
		rt = *r
	}
	d.mu.Unlock()

	if rt.latency > 0 || rt.blackhole {
		var wait <-chan time.Time
		if !rt.blackhole {
			t := time.NewTimer(rt.latency)
			defer t.Stop()
			wait = t.C
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, opErr(ctx.Err())
		}
	}
	switch {
	case rt.refuse:
		return nil, opErr(&os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED})
	case rt.to == "" && !isIPKey(key):
		// The library resolves names through its resolver and dials
		// addresses; a name here went around the resolver.
		return nil, opErr(fmt.Errorf("%w %s: the dialer was given a host name, not an address (code under test must look it up through its resolver; a test that means it routes the name with Dialer.Route)", ErrNoRoute, key))
	case rt.to == "":
		return nil, opErr(fmt.Errorf("%w %s (route it with Dialer.Route)", ErrNoRoute, key))
	}
	// The network rule: whatever a test routes, only loopback is dialed.
	to, err := netip.ParseAddrPort(rt.to)
	if err != nil || !to.Addr().Unmap().IsLoopback() {
		return nil, opErr(fmt.Errorf("testenv: %s is routed to %q, which is not a loopback address", key, rt.to))
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", rt.to)
}

// isIPKey reports whether a routeKey's host is an IP address.
func isIPKey(key string) bool {
	host, _, err := net.SplitHostPort(key)
	if err != nil {
		return false
	}
	_, err = netip.ParseAddr(host)
	return err == nil
}

// Dial is DialContext under the name some configuration structs use; it
// has the shape of http.Transport.DialContext.
func (d *Dialer) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return d.DialContext(ctx, network, addr)
}

// HTTPClient returns a client that dials through d, trusts only roots,
// uses no proxy and follows redirects as net/http does by default. Code
// under test takes its own client; this one is for tests' convenience.
func (d *Dialer) HTTPClient(roots *x509.CertPool) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         d.DialContext,
			TLSClientConfig:     &tls.Config{RootCAs: roots},
			TLSHandshakeTimeout: 10 * time.Second,
			DisableKeepAlives:   true, // no idle connections outliving a test's servers
		},
	}
}
