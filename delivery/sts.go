package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/sealpost/sealpost/internal/dnsname"
	"github.com/sealpost/sealpost/sts"
)

// lookupSTS finds the MTA-STS policy that applies to domain for this
// attempt: the domain's own, whatever its mode; else the operator's
// preloaded policy; else none. A policy the domain publishes (or that is
// cached) in mode none is its word that no policy applies (RFC 8461 §5),
// and the preloaded policy gives way to it as it does to enforce and
// testing: the preloaded policy is for a domain that publishes nothing, or
// whose policy cannot be had. A failed look-up that leaves no policy is
// kept, to be reported with the sessions that go ahead without one (RFC
// 8461 §5: without a valid policy, deliver as without MTA-STS).
func (c *Client) lookupSTS(ctx context.Context, domain string, local DomainPolicy) *stsState {
	st := &stsState{}
	p, source, err := c.stsLookup(ctx, domain)
	switch {
	case err == nil && p != nil && p.Mode == sts.ModeNone:
		st.source = "mode none, from " + source
		return st
	case err == nil && p != nil:
		st.policy, st.source = p, source
		st.report = c.reports.sts(domain, p)
		return st
	case err != nil && !errors.Is(err, sts.ErrNoRecord) && !errors.Is(err, sts.ErrInvalidDomain):
		st.err = err
		st.report = c.reports.sts(domain, nil)
		c.log.Info("delivery: MTA-STS policy not available", slog.String("domain", domain), slog.String("error", err.Error()))
	}
	if local.Preloaded != nil {
		// Issue 6: the preloaded policy protects the first contact, and any
		// contact while the domain publishes nothing usable.
		st.policy, st.preloaded, st.source = local.Preloaded, true, "preloaded by the operator"
		st.report = c.reports.noPolicy(domain)
	}
	return st
}

// defaultSTS is the MTA-STS client of a Config that names none.
func (c *Client) defaultSTS() *sts.Client {
	// The policy host is found and fetched the way MX hosts are: through
	// the same resolver (DNSSEC-aware, cached) and dialer. Config.Dial is
	// given "ip:port" only, so that a dialer which would resolve a name
	// (a net.Dialer asks the system's resolver) never sees one.
	return &sts.Client{Resolver: c.resolver, DialContext: c.dialPolicyHost, RootCAs: c.cfg.RootCAs, Now: c.cfg.Now, Logger: c.log}
}

// dialPolicyHost connects the default MTA-STS client to a policy host
// ("mta-sts.<domain>:443"). A net.Dialer would ask the system's resolver;
// the host is looked up through the Client's resolver instead, the one
// every other look-up uses, and its addresses are tried in the order MX
// hosts' are, each within the connect timeout, through Config.Dial or from
// the source address the policy domain's rules or the Config choose.
func (c *Client) dialPolicyHost(ctx context.Context, network, addr string) (net.Conn, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := parsePort(p)
	if err != nil {
		return nil, fmt.Errorf("delivery: dialing %s: bad port: %w", addr, err)
	}
	host = dnsname.Fold(host)
	local := c.cfg.Policy.lookup(strings.TrimPrefix(host, "mta-sts."))
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		ans, err := c.resolver.LookupHost(ctx, host)
		if err != nil {
			return nil, err
		}
		addrs = ans.Addrs()
	}
	var errs []error
	for _, ip := range c.dialOrder(addrs) {
		if (network == "tcp4" && !ip.Is4()) || (network == "tcp6" && !ip.Is6()) {
			continue
		}
		conn, err := c.dialIP(ctx, ip, port, local)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("delivery: dialing %s: no usable %s address", addr, network)
	}
	return nil, errors.Join(errs...)
}

// stsLookup asks the MTA-STS client for domain's policy: cached, fetched,
// or a cached one standing in after a failure (RFC 8461 §5.1).
func (c *Client) stsLookup(ctx context.Context, domain string) (*sts.Policy, string, error) {
	r, err := c.sts.Lookup(ctx, domain)
	if err != nil {
		return nil, "", err
	}
	source := r.Source.String()
	if r.Source == sts.SourceStale && r.Err != nil {
		source += " (" + r.Err.Error() + ")"
	}
	return r.Policy, source, nil
}

// refetchSTS fetches domain's policy again after a delivery failed under
// its enforced policy (RFC 8461 §5: the domain may have changed its MX
// hosts and its policy with them); the sts client rate-limits it. It
// returns the new state when the policy changed, nil otherwise.
func (c *Client) refetchSTS(ctx context.Context, domain string, old *stsState, local DomainPolicy) *stsState {
	r, err := c.sts.Refetch(ctx, domain)
	if err != nil || r.Policy == nil || (old.policy != nil && slices.Equal(r.Policy.PolicyString, old.policy.PolicyString)) {
		return nil
	}
	c.log.Info("delivery: MTA-STS policy changed after a failed delivery", slog.String("domain", domain))
	return c.lookupSTS(ctx, domain, local)
}
