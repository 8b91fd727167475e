package dane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
)

// Server is one recursive resolver the Resolver asks.
type Server struct {
	// Addr is "host:port" or a bare IP address (port 53).
	Addr string
	// Trust says whether this resolver's AD bit may be believed.
	Trust Trust
}

// Trust says whether a resolver's AD bit — its statement that it validated
// an answer with DNSSEC — may be believed. An AD bit from a resolver that
// is not trusted is ignored: every answer from it is insecure.
type Trust int

const (
	// TrustLoopback, the zero value, trusts a resolver on a loopback
	// address (nothing on the path can tamper with its answers) and no
	// other.
	TrustLoopback Trust = iota
	// TrustAlways trusts the resolver: set it only when it validates and
	// the path to it is protected (glibc's "options trust-ad" makes the
	// same promise for every resolver in resolv.conf).
	TrustAlways
	// TrustNever ignores the resolver's AD bit even on loopback, e.g. for
	// a local forwarder known not to validate.
	TrustNever
)

// Resolver looks up DNS records through recursive resolvers and says of
// every answer whether it is DNSSEC-secure. It is safe for concurrent use and
// meant to be shared: its cache and the collapsing of identical in-flight
// queries are what keep a busy sender from asking the same question
// thousands of times.
//
// The zero value reads /etc/resolv.conf on first use.
type Resolver struct {
	// Servers are asked in order; on a timeout, a network error, SERVFAIL,
	// REFUSED or any other failure the next one is tried. While any of them
	// is trusted, the others are never asked (see IgnoredServers): an
	// answer from a resolver whose AD bit is not believed reads as
	// insecure, and failing over to one would let whoever makes the
	// trusted resolver fail turn DANE off. Nil means the nameservers of
	// ResolvConf.
	Servers []Server
	// ResolvConf is the resolv.conf(5) file read when Servers is nil;
	// empty means "/etc/resolv.conf". Its "options trust-ad" marks every
	// server trusted, as glibc does.
	ResolvConf string
	// Timeout bounds one query to one server; zero means 2 seconds.
	Timeout time.Duration
	// Attempts is how many times the server list is gone through; zero
	// means 2.
	Attempts int
	// UDPSize is the EDNS0 buffer size advertised; zero means 1232, the
	// size that avoids IP fragmentation (DNS Flag Day 2020). Larger answers
	// come back truncated and are asked again over TCP.
	UDPSize uint16
	// MaxCNAMEs bounds the CNAME chain followed; zero means 8.
	MaxCNAMEs int
	// CacheSize bounds the number of answers kept; zero means 10000,
	// negative disables the cache.
	CacheSize int
	// MaxTTL caps how long any answer is cached; zero means one day.
	// Negative answers are cached for the SOA minimum (RFC 2308 §5), at
	// most MaxTTL and at most an hour.
	MaxTTL time.Duration
	// FailureTTL is how long a temporary failure or a bogus answer is
	// remembered, so that a broken zone is not asked again for every
	// message (RFC 2308 §7 allows up to five minutes); zero means 5
	// seconds, negative means failures are not cached.
	FailureTTL time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives debug records of failovers; nil discards them.
	Logger *slog.Logger

	once    sync.Once
	servers []resolvedServer // the servers asked
	ignored []IgnoredServer
	initErr error
	cache   *cache
	flight  singleflight.Group
}

type resolvedServer struct {
	addr    string
	trusted bool
	trust   Trust // as configured, for IgnoredServers' reasons
}

// IgnoredServer is a configured resolver that is never asked, and why.
type IgnoredServer struct {
	Addr   string // "ip:port"
	Reason string
}

// partition keeps the servers that are asked: the trusted ones when there
// are any, else all of them (every answer is insecure then, and failing
// over among equals costs nothing).
func partition(all []resolvedServer) (asked []resolvedServer, ignored []IgnoredServer) {
	for _, s := range all {
		if s.trusted {
			asked = append(asked, s)
		}
	}
	if len(asked) == 0 {
		return all, nil
	}
	for _, s := range all {
		if s.trusted {
			continue
		}
		why := "it is not on loopback, so its AD bit is not believed"
		if s.trust == TrustNever {
			why = "it is marked TrustNever, so its AD bit is not believed"
		}
		ignored = append(ignored, IgnoredServer{Addr: s.addr, Reason: fmt.Sprintf(
			"%s; while the trusted resolver %s is configured, an answer from it could make a DNSSEC-signed domain look unsigned and turn DANE off, so it is never asked",
			why, asked[0].addr)})
	}
	return asked, ignored
}

// IgnoredServers returns the configured resolvers that are never asked
// because a trusted one is configured beside them — the everyday
// resolv.conf of a local validating resolver followed by the router's. A
// program should show them at start-up: the operator may have meant them
// as a fallback, and they are not one. It is nil when the configuration
// cannot be read (Lookup returns that error).
func (r *Resolver) IgnoredServers() []IgnoredServer {
	if r.init() != nil {
		return nil
	}
	return slices.Clone(r.ignored)
}

const (
	defaultTimeout    = 2 * time.Second
	defaultAttempts   = 2
	defaultUDPSize    = 1232
	defaultMaxCNAMEs  = 8
	defaultCacheSize  = 10000
	defaultMaxTTL     = 24 * time.Hour
	maxNegativeTTL    = time.Hour
	defaultFailureTTL = 5 * time.Second
)

func (r *Resolver) init() error {
	r.once.Do(func() {
		servers := r.Servers
		if servers == nil {
			path := r.ResolvConf
			if path == "" {
				path = "/etc/resolv.conf"
			}
			servers, r.initErr = readResolvConf(path)
			if r.initErr != nil {
				return
			}
		}
		var parsed []resolvedServer
		for _, s := range servers {
			addr, trusted, err := parseServer(s)
			if err != nil {
				r.initErr = err
				return
			}
			parsed = append(parsed, resolvedServer{addr: addr, trusted: trusted, trust: s.Trust})
		}
		if len(parsed) == 0 {
			r.initErr = errors.New("dane: no DNS resolver configured")
			return
		}
		r.servers, r.ignored = partition(parsed)
		if size := r.CacheSize; size >= 0 {
			if size == 0 {
				size = defaultCacheSize
			}
			r.cache = newCache(size)
		}
	})
	return r.initErr
}

func parseServer(s Server) (addr string, trusted bool, err error) {
	ap, err := netip.ParseAddrPort(s.Addr)
	if err != nil {
		ip, err2 := netip.ParseAddr(s.Addr)
		if err2 != nil {
			return "", false, fmt.Errorf("dane: resolver address %q: want an IP address with an optional port", s.Addr)
		}
		ap = netip.AddrPortFrom(ip, 53)
	}
	trusted = s.Trust == TrustAlways || s.Trust == TrustLoopback && ap.Addr().IsLoopback()
	return ap.String(), trusted, nil
}

func (r *Resolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Resolver) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Lookup asks for the records of type qtype at name, following CNAMEs.
//
// On NXDOMAIN and no-data answers it returns both a non-nil Answer without
// records (whose Secure field says whether the denial was validated) and a
// *DNSError of kind ErrNXDomain or ErrNoData. Temporary failures and bogus
// answers return a nil Answer and a *DNSError.
func (r *Resolver) Lookup(ctx context.Context, name string, qtype uint16) (*Answer, error) {
	if err := r.init(); err != nil {
		return nil, err
	}
	name, err := canonicalName(name, qtype)
	if err != nil {
		return nil, err
	}
	key := cacheKey{name: name, qtype: qtype}
	if r.cache != nil {
		if e, ok := r.cache.get(key, r.now()); ok {
			return e.answer, e.err
		}
	}
	// Identical concurrent look-ups share one query. The shared query must
	// not die with the first caller's context, so it runs on a detached one
	// bounded by the configured timeouts; each caller still returns as soon
	// as its own context is done.
	ch := r.flight.DoChan(key.String(), func() (any, error) {
		e := r.resolve(context.WithoutCancel(ctx), name, qtype)
		if r.cache != nil {
			r.cache.put(key, e, r.now(), r.cacheLifetime(e))
		}
		return e, nil
	})
	select {
	case res := <-ch:
		e := res.Val.(cacheEntry)
		return e.answer, e.err
	case <-ctx.Done():
		return nil, &DNSError{Name: name, Qtype: qtype, Kind: ErrTemporary, Err: ctx.Err()}
	}
}

// FlushCache forgets every cached answer, for an operator who has just fixed
// a zone and does not want to wait for its TTLs.
func (r *Resolver) FlushCache() {
	if r.init() == nil && r.cache != nil {
		r.cache.purge()
	}
}

// canonicalName turns a host or domain name into the lower-case, fully
// qualified form used for queries and cache keys. A name that cannot exist
// in the DNS is reported as NXDOMAIN: it is as permanent a failure.
func canonicalName(name string, qtype uint16) (string, error) {
	fq := dns.Fqdn(strings.ToLower(name))
	if len(fq) > 254 {
		return "", &DNSError{Name: fq, Qtype: qtype, Kind: ErrNXDomain, Err: errors.New("invalid domain name")}
	}
	for i := 0; i < len(fq); i++ {
		// Internationalised names must arrive as A-labels (RFC 5890);
		// anything else outside letters, digits, '-', '_' and '.' cannot
		// be a host name we send mail to.
		c := fq[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "", &DNSError{Name: fq, Qtype: qtype, Kind: ErrNXDomain, Err: fmt.Errorf("invalid character %q in domain name", c)}
		}
	}
	if _, ok := dns.IsDomainName(fq); !ok {
		return "", &DNSError{Name: fq, Qtype: qtype, Kind: ErrNXDomain, Err: errors.New("invalid domain name")}
	}
	return fq, nil
}

// resolve performs one uncached look-up, following the CNAME chain across
// as many queries as the resolvers need.
func (r *Resolver) resolve(ctx context.Context, name string, qtype uint16) cacheEntry {
	maxCNAMEs := r.MaxCNAMEs
	if maxCNAMEs <= 0 {
		maxCNAMEs = defaultMaxCNAMEs
	}
	return followChain(ctx, name, qtype, maxCNAMEs, r.exchange)
}

// exchangeFunc asks the resolvers one question; resolve's is r.exchange,
// the fuzz test's returns hostile messages.
type exchangeFunc func(ctx context.Context, name string, qtype uint16) (*dns.Msg, resolvedServer, *DNSError)

// followChain interprets the answers to name's question, asking again for
// the target of a CNAME chain the resolver did not follow itself.
func followChain(ctx context.Context, name string, qtype uint16, maxCNAMEs int, exchange exchangeFunc) cacheEntry {
	ans := &Answer{Name: name, Canonical: name, Secure: true, TTL: ^uint32(0)}
	seen := map[string]bool{name: true}
	for {
		msg, srv, err := exchange(ctx, ans.Canonical, qtype)
		if err != nil {
			err.Name = name
			return cacheEntry{err: err}
		}
		ans.Secure = ans.Secure && srv.trusted && msg.AuthenticatedData
		asked := ans.Canonical
		for {
			if rrs := rrsetAt(msg.Answer, ans.Canonical, qtype); len(rrs) > 0 {
				ans.Records = rrs
				ans.TTL = min(ans.TTL, minTTL(rrs))
				return cacheEntry{answer: ans}
			}
			cname := cnameAt(msg.Answer, ans.Canonical)
			if cname == nil {
				break
			}
			target := strings.ToLower(cname.Target)
			if seen[target] || len(ans.Chain) >= maxCNAMEs {
				return cacheEntry{err: &DNSError{Name: name, Qtype: qtype, Kind: ErrTemporary, Server: srv.addr,
					Err: fmt.Errorf("CNAME chain longer than %d or looping at %s", maxCNAMEs, target)}}
			}
			seen[target] = true
			ans.Chain = append(ans.Chain, target)
			ans.Canonical = target
			ans.TTL = min(ans.TTL, cname.Hdr.Ttl)
		}
		// RFC 6604 §3: the rcode speaks of the last name of the chain. A
		// response that followed a CNAME to a name it says nothing about
		// (no records, no SOA) came from a resolver that did not chase the
		// chain: ask for the target ourselves.
		soa := soaOf(msg.Ns)
		if ans.Canonical != asked && soa == nil && msg.Rcode == dns.RcodeSuccess {
			continue
		}
		kind := ErrNoData
		if msg.Rcode == dns.RcodeNameError {
			kind = ErrNXDomain
		}
		if soa != nil {
			ans.TTL = min(ans.TTL, soa.Hdr.Ttl, soa.Minttl)
		} else {
			ans.TTL = min(ans.TTL, 60) // no SOA to go by: remember it briefly
		}
		return cacheEntry{answer: ans, err: &DNSError{Name: name, Qtype: qtype, Kind: kind, Secure: ans.Secure, Server: srv.addr}}
	}
}

// cacheLifetime says how long an entry may be served from the cache.
func (r *Resolver) cacheLifetime(e cacheEntry) time.Duration {
	maxTTL := r.MaxTTL
	if maxTTL <= 0 {
		maxTTL = defaultMaxTTL
	}
	switch {
	case e.answer == nil: // temporary or bogus
		if r.FailureTTL < 0 {
			return 0
		}
		if r.FailureTTL == 0 {
			return defaultFailureTTL
		}
		return r.FailureTTL
	case e.err != nil: // NXDOMAIN or no data
		return min(time.Duration(e.answer.TTL)*time.Second, maxTTL, maxNegativeTTL)
	default:
		return min(time.Duration(e.answer.TTL)*time.Second, maxTTL)
	}
}

func rrsetAt(rrs []dns.RR, owner string, qtype uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		h := rr.Header()
		if h.Rrtype == qtype && strings.EqualFold(h.Name, owner) {
			out = append(out, rr)
		}
	}
	return out
}

func cnameAt(rrs []dns.RR, owner string) *dns.CNAME {
	for _, rr := range rrs {
		if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, owner) {
			return c
		}
	}
	return nil
}

func soaOf(rrs []dns.RR) *dns.SOA {
	for _, rr := range rrs {
		if s, ok := rr.(*dns.SOA); ok {
			return s
		}
	}
	return nil
}

func minTTL(rrs []dns.RR) uint32 {
	t := ^uint32(0)
	for _, rr := range rrs {
		t = min(t, rr.Header().Ttl)
	}
	return t
}

// LookupTXT returns the TXT records at name, one string per record with its
// character-strings concatenated, following CNAMEs. It has the signature of
// net.Resolver's LookupTXT, so the sts and tlsrpt packages take either.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	ans, err := r.Lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	return ans.TXT(), nil
}

// LookupHost asks for the A and AAAA records of host at once. The Answer
// holds the records of both; it is Secure only when every part obtained is
// secure. A bogus answer for either family is an error: an attacker who
// tampers with one must not steer the sender to the other. When one family
// fails temporarily and the other answers, the addresses that were found
// are returned.
func (r *Resolver) LookupHost(ctx context.Context, host string) (*Answer, error) {
	type result struct {
		ans *Answer
		err error
	}
	aaaa := make(chan result, 1)
	go func() {
		ans, err := r.Lookup(ctx, host, dns.TypeAAAA)
		aaaa <- result{ans, err}
	}()
	a4, err4 := r.Lookup(ctx, host, dns.TypeA)
	a6 := <-aaaa
	return mergeHost(a4, err4, a6.ans, a6.err)
}

// LookupNetIP returns the addresses of host for network ("ip", "ip4" or
// "ip6"), with the meaning and signature of net.Resolver.LookupNetIP, so
// that a Resolver can stand wherever one is asked for (sts.AddrResolver).
// Whether the answer was DNSSEC-secure is not reported: use LookupHost
// where it matters.
func (r *Resolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	var ans *Answer
	var err error
	switch network {
	case "ip":
		ans, err = r.LookupHost(ctx, host)
	case "ip4":
		ans, err = r.Lookup(ctx, host, dns.TypeA)
	case "ip6":
		ans, err = r.Lookup(ctx, host, dns.TypeAAAA)
	default:
		return nil, fmt.Errorf("dane: LookupNetIP: network %q, want ip, ip4 or ip6", network)
	}
	if err != nil {
		return nil, err
	}
	return ans.Addrs(), nil
}

func mergeHost(a4 *Answer, err4 error, a6 *Answer, err6 error) (*Answer, error) {
	switch {
	case errors.Is(err4, ErrBogus):
		return nil, err4
	case errors.Is(err6, ErrBogus):
		return nil, err6
	}
	ok4, ok6 := err4 == nil, err6 == nil
	if !ok4 && !ok6 {
		if a4 == nil || a6 == nil { // at least one temporary failure
			if a4 == nil {
				return nil, err4
			}
			return nil, err6
		}
		// Both families denied: NXDOMAIN only if the name does not exist.
		merged := *a4
		merged.Secure = a4.Secure && a6.Secure
		de := *err4.(*DNSError)
		de.Secure = merged.Secure
		if !errors.Is(err6, ErrNXDomain) {
			de.Kind = ErrNoData
		}
		return &merged, &de
	}
	var merged Answer
	switch {
	case ok4 && ok6:
		merged = *a4
		merged.Records = append(append([]dns.RR(nil), a6.Records...), a4.Records...)
		merged.Secure = a4.Secure && a6.Secure
		merged.TTL = min(a4.TTL, a6.TTL)
	case ok4:
		merged = *a4
		if a6 != nil { // a validated "no AAAA" keeps the host secure
			merged.Secure = a4.Secure && a6.Secure
		}
	default:
		merged = *a6
		if a4 != nil {
			merged.Secure = a4.Secure && a6.Secure
		}
	}
	return &merged, nil
}
