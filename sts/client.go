package sts

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Client answers the question the delivery engine asks for every recipient
// domain: what does its MTA-STS policy demand right now? It discovers,
// fetches, caches and refreshes policies, and checks MX certificates.
//
// The zero value is ready to use. A Client is safe for concurrent use and
// meant to be shared; it must not be copied after first use, and its fields
// must not change once it is in use.
type Client struct {
	// Resolver looks up _mta-sts TXT records. Nil means the system's
	// resolver (net.DefaultResolver), which neither validates DNSSEC nor
	// caches; sealpost's *dane.Resolver does both.
	Resolver TXTResolver

	// HTTPClient fetches policies. Its CheckRedirect is replaced (a copy
	// is made) so that redirects are never followed (RFC 8461 §3.3); its
	// transport must verify certificates against the WebPKI, as the
	// default one does. Nil means a client that verifies against RootCAs,
	// dials with DialContext, uses no proxy and no idle connections.
	HTTPClient *http.Client

	// DialContext opens the TCP connections of policy fetches when
	// HTTPClient is nil; when Resolver is an AddrResolver (as
	// *dane.Resolver is) the policy host is looked up through it and
	// DialContext is only given "ip:port". Nil means a net.Dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// RootCAs are the roots the certificates of MX hosts (and of policy
	// hosts, when HTTPClient is nil) must chain to. Nil means the system's
	// roots.
	RootCAs *x509.CertPool

	// Timeout bounds one policy fetch: connecting, TLS, the answer and its
	// body. Zero means DefaultTimeout.
	Timeout time.Duration

	// Now is the clock, for cache expiry and certificate validity. Nil
	// means time.Now.
	Now func() time.Time

	// Store keeps cached policies across restarts (RFC 8461 §10.2); the
	// client reads it once, on first use, and writes every change
	// through. Nil means policies are cached in memory only.
	Store Store

	// RecordCheckInterval is how long a cached policy is served without
	// looking up the TXT record again to see whether its id changed.
	// Zero means every Lookup looks it up, which is what RFC 8461 §5.1
	// describes; with a caching resolver that is cheap.
	RecordCheckInterval time.Duration

	// RefetchInterval is the least time between two Refetch calls that
	// fetch one domain's policy. Zero means DefaultRefetchInterval (five
	// minutes, the least RFC 8461 §3.3 wants between attempts after a
	// failed fetch).
	RefetchInterval time.Duration

	// RefreshInterval is how often Run looks for policies due for
	// renewal. Zero means DefaultRefreshInterval.
	RefreshInterval time.Duration

	// Logger receives what the client does on its own: policies fetched,
	// fetches that failed while a cached policy stood in, refreshes.
	// Nil means no logging.
	Logger *slog.Logger

	httpOnce sync.Once
	http     *http.Client

	cache  cache
	flight singleflight.Group

	failMu   sync.Mutex
	failures map[string]fetchFailure // recent failed fetches, by domain
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return discardLogger
}

// discardLogger is immutable, so sharing it is not global state.
var discardLogger = slog.New(slog.DiscardHandler)
