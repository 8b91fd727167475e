package delivery

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/sts"
	"github.com/sealpost/sealpost/tlsrpt"
)

// Config configures a Client. The zero value delivers with the system's
// resolvers and roots, applies DANE and MTA-STS, records nothing and logs
// nothing. A Config must not be changed once a Client uses it.
type Config struct {
	// Hostname is the name sent in EHLO (RFC 5321 §4.1.1.1); it should be
	// a fully qualified name whose address records point back at the
	// sending address. Empty means os.Hostname when it is fully qualified
	// (has a dot), else "localhost".
	Hostname string

	// Resolver makes every DNS look-up (MX, addresses, TLSA; when MTASTS
	// is nil, the MTA-STS TXT record and the policy host's addresses). Nil means a dane.Resolver reading
	// /etc/resolv.conf. DANE works only with a resolver that validates
	// DNSSEC (see dane.Resolver.CheckHealth).
	Resolver *dane.Resolver
	// DANE decides the TLSA requirement of each MX host. Nil means a
	// dane.Discovery on Resolver with its defaults.
	DANE *dane.Discovery
	// MTASTS looks up, caches and checks MTA-STS policies (RFC 8461), and
	// checks WebPKI certificates (RFC 8461 §4.2) for the local rule
	// RequireAuthenticated and REQUIRETLS too. Nil means an sts.Client of
	// the Client's own, on Resolver, Dial, RootCAs, Now and Logger, with an
	// in-memory cache: without Dial, it looks the policy host up through
	// Resolver and connects from SourceIPv4 or SourceIPv6. An application
	// should share one with a persistent cache and its refresher instead.
	MTASTS *sts.Client
	// RootCAs are the roots WebPKI certificates must chain to, for the
	// default MTASTS client (one given in MTASTS has its own). Nil means
	// the system's roots.
	RootCAs *x509.CertPool

	// Dial connects to "ip:port". Nil means a net.Dialer bound to
	// SourceIPv4 or SourceIPv6 when set. A custom Dial chooses its own
	// source address; the one the connection reports (LocalAddr) is what
	// TLS-RPT records.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// SourceIPv4 and SourceIPv6 are the local addresses connections leave
	// from, per family, with the default Dial. Invalid (zero) means the
	// system chooses. DomainPolicy can choose others per domain.
	SourceIPv4, SourceIPv6 netip.Addr
	// DisableIPv6 skips IPv6 addresses of MX hosts, for a sender without
	// IPv6 connectivity. False tries both families, IPv6 first.
	DisableIPv6 bool
	// AllowAddressLiterals accepts recipients at address literals
	// ("user@[192.0.2.1]"). False refuses them permanently: most senders
	// never need them and they bypass every DNS-based policy.
	AllowAddressLiterals bool

	// TLSRPT receives every TLS session (RFC 8460), successful or not,
	// except those of report mail. Nil records nothing.
	TLSRPT Recorder
	// Policy holds the operator's rules: per-domain requirements, next
	// hops, preloaded policies and overrides. The zero value has none.
	Policy LocalPolicy

	// Timeouts bound each step of a session; zero fields take RFC 5321
	// §4.5.3.2's values.
	Timeouts Timeouts

	// MaxConnsPerHost bounds the sessions open at once to one MX host,
	// busy or idle. Zero means 10. A delivery that finds the limit reached
	// waits for a session to come free (or its context to end).
	MaxConnsPerHost int
	// IdleTimeout is how long an idle authenticated session is kept for
	// reuse. Zero means 30 seconds; negative disables reuse.
	IdleTimeout time.Duration
	// MaxMessagesPerConn bounds the messages sent over one session before
	// it is closed. Zero means 100.
	MaxMessagesPerConn int

	// Logger receives what an operator wants to know: hosts skipped and
	// why, overrides used, sessions that failed. Nil discards.
	Logger *slog.Logger
	// Observer receives events for metrics. The zero value observes
	// nothing.
	Observer Observer
	// Trace, when set, receives every line of every SMTP dialogue (AUTH
	// payloads masked), for debugging a peer. It is called synchronously
	// and must be safe for concurrent use.
	Trace func(t TraceLine)

	// Shuffle orders MX hosts of equal preference; nil shuffles them
	// randomly (RFC 5321 §5.1). Tests set it to keep the order fixed.
	Shuffle func(hosts []MXHost)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Recorder receives the TLS sessions for TLS-RPT; *tlsrpt.Recorder
// implements it. Record must not block.
type Recorder interface {
	Record(s tlsrpt.Session)
}

// Timeouts bound the steps of a session. Zero fields take the values of
// RFC 5321 §4.5.3.2 (or, for those it does not name, the ones noted).
type Timeouts struct {
	// Connect bounds the TCP connection to one address; zero means 30s.
	Connect time.Duration
	// Greeting (5m), Mail (5m), Rcpt (5m), DataInit (2m), DataBlock (3m)
	// and DataTerm (10m) are RFC 5321 §4.5.3.2's; Command (5m) bounds
	// EHLO, STARTTLS, RSET, NOOP and QUIT; TLSHandshake (1m) the TLS
	// handshake.
	Greeting, Mail, Rcpt, DataInit, DataBlock, DataTerm, Command, TLSHandshake time.Duration
}

// Observer receives events for metrics. Every field may be nil. The
// functions are called synchronously from the delivering goroutines: they
// must be quick and safe for concurrent use.
type Observer struct {
	// HostSkipped: a host was not used because its requirement could not
	// be met, decided before or after connecting (err says why).
	HostSkipped func(domain, host string, err error)
	// SessionStarted: a new session is ready for mail (after TLS and its
	// verification), or failed to become so (err set).
	SessionStarted func(s Session, d time.Duration, err error)
	// Transaction: one mail transaction ended, with the results of the
	// recipients it carried.
	Transaction func(s Session, results []Result, d time.Duration)
}

// TraceLine is one line of an SMTP dialogue.
type TraceLine struct {
	// Host and IP say which session the line belongs to.
	Host string
	IP   netip.Addr
	// Sent is true for a line we sent, false for one the server sent.
	Sent bool
	// Line is the text, without its CRLF; AUTH payloads are masked.
	Line string
}
