package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/sealpost/sealpost/internal/smtpclient"
)

// attempt is one delivery attempt of a message to the recipients of one
// domain: the walk over the MX hosts in order, each address of a host
// before the next host (RFC 5321 §5.1), until every recipient has an
// outcome or no host is left.
type attempt struct {
	c       *Client
	msg     *Message
	domain  string
	results []Result // shared with the other domains' attempts; only pending entries are written
	pending []int    // indices into results (and msg.Recipients) without an outcome yet
	d       *decision
	src     DomainPolicy // where the source-address choice comes from

	failures []hostFailure
	last     Session // the last session tried, for failures decided without one
}

// hostFailure is why one host (or one address of it) was not used.
type hostFailure struct {
	host string
	ip   netip.Addr
	err  *Error
	// policy marks a failure of the host's security requirement, after
	// which an enforced MTA-STS policy is re-fetched.
	policy bool
}

func newAttempt(c *Client, msg *Message, domain string, idx []int, results []Result) *attempt {
	return &attempt{c: c, msg: msg, domain: domain, results: results, pending: idx}
}

func (a *attempt) run(ctx context.Context) {
	c := a.c
	local := c.cfg.Policy.lookup(a.domain)
	a.src = local
	hop := a.msg.NextHop
	if hop == "" {
		hop = local.NextHop
	}
	t, err := c.target(ctx, a.domain, hop)
	if err != nil {
		a.finish(asError(err))
		return
	}
	// The next hop's rules, with those written for the domain beside them.
	local = c.cfg.Policy.forHop(a.domain, t.domain)
	var st *stsState
	if !t.literal {
		st = c.lookupSTS(ctx, t.domain, local)
	}
	a.d = &decision{t: t, sts: st, local: local, msg: a.msg, now: c.now()}
	a.walk(ctx)
	if len(a.pending) > 0 && st != nil && st.enforced() && !st.preloaded && a.policyFailed() && ctx.Err() == nil {
		// RFC 8461 §5: before giving up under an enforced policy, check
		// for an updated one (rate-limited by the sts client); a changed
		// policy gets one more walk over the hosts.
		if fresh := c.refetchSTS(ctx, t.domain, st, local); fresh != nil {
			a.d.sts = fresh
			a.walk(ctx)
		}
	}
	if len(a.pending) == 0 {
		return
	}
	if ctx.Err() != nil {
		a.failures = append(a.failures, hostFailure{err: failure(451, codeExpired, ctx.Err(), "delivery attempt abandoned")})
	}
	a.finish(a.summary())
}

// walk tries the hosts of the route in order until no recipient is left.
func (a *attempt) walk(ctx context.Context) {
	for _, host := range a.d.t.route.Hosts {
		if len(a.pending) == 0 || ctx.Err() != nil {
			return
		}
		req, err := a.c.decide(ctx, a.d, host)
		if err != nil {
			a.hostFailed(host.Name, netip.Addr{}, err, true)
			continue
		}
		a.tryHost(ctx, host, req)
	}
}

// tryHost delivers the pending recipients through host: over an idle
// session of the same requirement when one is pooled, else over a new one
// to each address in turn (RFC 5321 §5.1: every address of a host before
// the next host). A session that is lost, or closed with 421, before the
// message was taken leaves the recipients pending, and the next session
// or address is tried.
func (a *attempt) tryHost(ctx context.Context, host MXHost, req *Requirement) {
	c := a.c
	key := a.poolKey(host, req)
	var addrs []netip.Addr
	next := 0 // the next address to dial
	for len(a.pending) > 0 {
		g, err := c.pool.acquire(ctx, key)
		if err != nil {
			a.hostFailed(host.Name, netip.Addr{}, failure(451, codeConnect, err, "waiting for a free session to %s", host.Name), false)
			return
		}
		s, reused := g.session, g.session != nil
		if reused {
			// The pool key vouches that the session was set up and verified
			// as req demands, but the session still carries the requirement
			// of the message that opened it. What the key leaves out is this
			// message's own — above all REQUIRETLS, which the envelope is
			// built from: an ordinary message's session must not carry a
			// REQUIRETLS message without the MAIL parameter (RFC 8689
			// §4.2.1), nor the reverse.
			s.info.Requirement = *req
		} else {
			// The pool gave a slot: dial until an address answers.
			if addrs == nil {
				if addrs, err = c.addresses(ctx, a.d.t, host); err != nil {
					c.pool.release(g.key)
					a.hostFailed(host.Name, netip.Addr{}, err, false)
					return
				}
			}
			for s == nil && next < len(addrs) && ctx.Err() == nil {
				ip := addrs[next]
				next++
				if s, err = a.connect(ctx, host, ip, req, g.key); err != nil {
					var ce *connectError
					a.hostFailed(host.Name, ip, err, errors.As(err, &ce) && ce.policy)
				}
			}
			if s == nil {
				c.pool.release(g.key)
				return
			}
		}
		if !a.transfer(ctx, s, reused) {
			return
		}
	}
}

// transfer runs the transaction over s and gives s back to the pool (or
// closes it). It reports whether the recipients should be tried over
// another session of the same host: s was a pooled session found dead
// before the server saw anything (not a failure of the host), or the
// connection was lost or closed (421) before the message was taken.
func (a *attempt) transfer(ctx context.Context, s *session, reused bool) bool {
	out := a.transact(ctx, s)
	if out.stale && reused {
		a.c.pool.discard(s)
		return true
	}
	if out.err != nil {
		a.hostFailed(s.info.MXHost, s.info.IP, out.err, false)
	}
	if out.reusable {
		a.c.pool.put(ctx, s)
	} else {
		a.c.pool.discard(s)
	}
	return errors.Is(out.err, smtpclient.ErrConnLost)
}

// hostFailed notes why a host or address was not used.
func (a *attempt) hostFailed(host string, ip netip.Addr, err error, policy bool) {
	de := asError(err)
	a.failures = append(a.failures, hostFailure{host: host, ip: ip, err: de, policy: policy})
	attrs := []any{slog.String("domain", a.domain), slog.String("host", host), slog.String("error", de.Error())}
	if ip.IsValid() {
		attrs = append(attrs, slog.String("ip", ip.String()))
	}
	a.c.log.Info("delivery: host not used", attrs...)
	if f := a.c.cfg.Observer.HostSkipped; f != nil {
		f(a.domain, host, de)
	}
}

// policyFailed reports whether some host failed its security requirement.
func (a *attempt) policyFailed() bool {
	for _, f := range a.failures {
		if f.policy {
			return true
		}
	}
	return false
}

// summary is the failure the pending recipients get when no host took the
// message: permanent only when every host failed permanently (REQUIRETLS
// impossible everywhere, say); otherwise temporary, naming the most telling
// failure — a security failure before a server's reply before a network
// error, the most preferred host first.
func (a *attempt) summary() *Error {
	if len(a.failures) == 0 {
		return failure(451, codeNoAddress, nil, "no MX host to try for %s", a.domain)
	}
	if len(a.failures) == 1 {
		// Wrapping the one failure would say it twice: "X: X".
		return a.failures[0].err
	}
	var best *Error
	bestRank, permanent := -1, true
	errs := make([]error, 0, len(a.failures))
	for _, f := range a.failures {
		errs = append(errs, f.err)
		if f.err.Temporary {
			permanent = false
		}
	}
	for _, f := range a.failures {
		if f.err.Temporary == permanent {
			continue
		}
		if r := failureRank(f); r > bestRank {
			best, bestRank = f.err, r
		}
	}
	msg := fmt.Sprintf("%s (and %d more failures)", best.Message, len(a.failures)-1)
	return &Error{Temporary: best.Temporary, Code: best.Code, Enhanced: best.Enhanced, Message: msg,
		Remote: best.Remote, Err: errors.Join(errs...)}
}

func failureRank(f hostFailure) int {
	switch {
	case f.policy || f.err.Enhanced[1] == 7 || (f.err.Enhanced[1] == 4 && f.err.Enhanced[2] == 8):
		return 2
	case f.err.Remote:
		return 1
	}
	return 0
}

// finish gives every pending recipient the outcome err.
func (a *attempt) finish(err *Error) {
	for _, i := range a.pending {
		setFailure(&a.results[i], err)
		a.results[i].Session = a.last
	}
	a.pending = nil
}

// asError returns err as an *Error, wrapping errors that are not one as a
// temporary failure.
func asError(err error) *Error {
	var de *Error
	if errors.As(err, &de) {
		return de
	}
	return failure(451, codeNetwork, err, "%v", err)
}

// decide returns the requirement of host, or an *Error saying why the host
// must not be used now, for a delivery: it looks the host's TLSA records
// up, decides (decideHost), logs the overrides used and records for
// TLS-RPT a refusal that makes no session.
func (c *Client) decide(ctx context.Context, d *decision, host MXHost) (*Requirement, error) {
	v := decideHost(c.hostFacts(ctx, d, host.Name))
	for _, what := range v.overrides {
		c.log.Warn("delivery: "+what+" not enforced by operator override", slog.String("domain", d.t.domain),
			slog.String("host", host.Name), slog.String("reason", d.local.Override.Reason))
	}
	if v.err != nil {
		if f := v.failure; f != nil && !d.msg.TLSReport {
			c.recordFailure(f.policy, f.result, host.Name, f.reason)
		}
		return nil, v.err
	}
	return v.req, nil
}

// hostFacts looks up what host's requirement depends on beyond its
// domain's decision: its TLSA records (from the cache while they last).
func (c *Client) hostFacts(ctx context.Context, d *decision, host string) *hostFacts {
	f := &hostFacts{d: d, host: host, noPolicy: c.reports.noPolicy(d.t.domain)}
	if !d.t.literal {
		f.dane, f.daneReport, f.daneErr = c.daneRequirement(ctx, d.t.domain, d.t.daneName(host), d.t.port, d.t.mxSecure)
	}
	f.tlsaReport = c.reports.tlsa(d.t.domain, host, f.dane)
	return f
}
