package delivery

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/dnsname"
	"github.com/sealpost/sealpost/sts"
)

// Explanation says where mail for a domain would go and what each host
// would be held to, as Deliver would decide it now, without sending.
type Explanation struct {
	// Domain is the recipient domain asked about; PolicyDomain the domain
	// whose policies apply (the next hop's, when NextHop is set).
	Domain, PolicyDomain string
	// NextHop is the smart host the message or the domain's rules route
	// through, if any.
	NextHop string
	// Route is the MX route; nil when it could not be found (Err says why).
	Route *MXRoute
	// MTASTS is the MTA-STS policy that applies, nil when none does;
	// MTASTSSource says where it came from (cache, fresh fetch, stale after
	// an error, preloaded by the operator), or, with MTASTS nil, where the
	// domain's policy in mode none came from; MTASTSErr says why the
	// domain's own policy could not be had, if that is the case.
	MTASTS       *sts.Policy
	MTASTSSource string
	MTASTSErr    error
	// Hosts are the MX hosts in the order they would be tried.
	Hosts []HostExplanation
	// Err is why the domain cannot be delivered to at all (null MX,
	// NXDOMAIN, DNS failure); Hosts is then empty.
	Err error
}

// HostExplanation is the decision for one MX host.
type HostExplanation struct {
	Host MXHost
	// Addrs are the addresses in the order they would be tried.
	Addrs []netip.Addr
	// Requirement is what a session to the host would be held to; nil when
	// the host would not be used (Err says why).
	Requirement *Requirement
	Err         error
	// TLSASource says whether the DANE decision (the TLSA records, or
	// their absence) came from the Client's cache, and until when, or from
	// a look-up made now, and then which TLSA names were asked for it or
	// why none was: "DNS look-up now; asked _25._tcp.mx.example.com", "cache,
	// until 2025-06-01T12:00:00Z; no TLSA look-up: the address records of
	// mx.example.net are not DNSSEC-secure". Empty for an address literal.
	TLSASource string
}

// Explain tells, for each MX host of domain in order, the requirement it
// would be held to and why (which TLSA records, which MTA-STS policy and
// from where, which local rule), as for a message without REQUIRETLS. It
// makes the DNS look-ups and the MTA-STS fetch a delivery would make (and
// warms the same caches), but connects to no MX host and records nothing
// for TLS-RPT. The error is only for a canceled context.
func (c *Client) Explain(ctx context.Context, domain string) (*Explanation, error) {
	return c.ExplainMessage(ctx, domain, nil)
}

// ExplainMessage is Explain for msg's recipients at domain: the hosts are
// decided as Deliver decides them for msg, with its RequireTLS (hosts
// REQUIRETLS rules out fail with 5.7.30; the server's REQUIRETLS support
// is only known once connected), TLSOptional, TLSReport and NextHop. The
// other fields of msg are not read; nil is a message with none of these.
func (c *Client) ExplainMessage(ctx context.Context, domain string, msg *Message) (*Explanation, error) {
	if msg == nil {
		msg = &Message{}
	}
	ex := &Explanation{Domain: domain, PolicyDomain: domain}
	if !strings.HasPrefix(domain, "[") {
		d, err := dnsname.Canonical(domain)
		if err != nil {
			ex.Err = failure(550, codeBadDomain, err, "%v", err)
			return ex, ctx.Err()
		}
		domain, ex.Domain, ex.PolicyDomain = d, d, d
	}
	local := c.cfg.Policy.lookup(domain)
	ex.NextHop = msg.NextHop
	if ex.NextHop == "" {
		ex.NextHop = local.NextHop
	}
	t, err := c.target(ctx, domain, ex.NextHop)
	if err != nil {
		ex.Err = err
		return ex, ctx.Err()
	}
	ex.Route, ex.PolicyDomain = t.route, t.domain
	local = c.cfg.Policy.forHop(domain, t.domain)
	var st *stsState
	if !t.literal {
		st = c.lookupSTS(ctx, t.domain, local)
		ex.MTASTS, ex.MTASTSSource, ex.MTASTSErr = st.policy, st.source, st.err
	}
	d := &decision{t: t, sts: st, local: local, msg: msg, now: c.now()}
	for _, host := range t.route.Hosts {
		he := HostExplanation{Host: host}
		source := "DNS look-up now"
		if until, ok := c.daneCachedUntil(t.domain, t.daneName(host.Name), t.port, t.mxSecure); ok {
			source = "cache, until " + until.UTC().Format(time.RFC3339)
		}
		// The decision a delivery would make, without its side effects:
		// nothing is recorded for TLS-RPT and no override use is logged.
		v := decideHost(c.hostFacts(ctx, d, host.Name))
		he.Requirement, he.Err = v.req, v.err
		if he.Err == nil {
			he.Addrs, he.Err = c.addresses(ctx, t, host)
		}
		if !t.literal {
			he.TLSASource = c.tlsaSource(source, t, &he)
		}
		ex.Hosts = append(ex.Hosts, he)
	}
	return ex, ctx.Err()
}

// tlsaSource completes the source of a host's DANE decision with what was
// asked for it: the TLSA names, or why none was (dane.Discovery asks only
// for hosts whose address records are DNSSEC-secure, RFC 7672 §2.2.3).
func (c *Client) tlsaSource(source string, t *target, he *HostExplanation) string {
	if he.Requirement == nil || he.Requirement.DANE == nil {
		// The host was ruled out; its DANE decision may not have been made.
		return source
	}
	dr := he.Requirement.DANE
	name := t.daneName(he.Host.Name)
	switch {
	case len(dr.TLSANames) > 0:
		return source + "; asked " + strings.Join(dr.TLSANames, ", ")
	case !t.mxSecure && c.dane.InsecureMX == dane.InsecureMXIgnore:
		// No look-up at all, so nothing was cached either.
		return "no TLSA look-up: the MX answer is not DNSSEC-secure and DANE is not applied to the hosts it names (dane.InsecureMXIgnore)"
	case he.Err != nil && len(he.Addrs) == 0:
		return source + "; no TLSA look-up: " + name + " has no address records"
	}
	return source + "; no TLSA look-up: the address records of " + name + " are not DNSSEC-secure (RFC 7672 §2.2.3)"
}

// String renders the explanation for a person, one host per paragraph.
func (ex *Explanation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "domain %s", ex.Domain)
	if ex.NextHop != "" {
		fmt.Fprintf(&b, " via next hop %s (policy domain %s)", ex.NextHop, ex.PolicyDomain)
	}
	b.WriteString("\n")
	if ex.Err != nil {
		fmt.Fprintf(&b, "  not deliverable: %v\n", ex.Err)
		return b.String()
	}
	if ex.Route != nil {
		sec := "insecure"
		if ex.Route.Secure {
			sec = "DNSSEC-secure"
		}
		kind := "MX"
		if ex.Route.Implicit {
			kind = "implicit MX (no MX records, RFC 5321 §5.1)"
		}
		fmt.Fprintf(&b, "  %s, %s\n", kind, sec)
	}
	switch {
	case ex.MTASTS != nil:
		fmt.Fprintf(&b, "  MTA-STS: mode %s, mx %s (%s)\n", ex.MTASTS.Mode, strings.Join(ex.MTASTS.MX, ", "), ex.MTASTSSource)
	case ex.MTASTSErr != nil:
		fmt.Fprintf(&b, "  MTA-STS: no policy available: %v\n", ex.MTASTSErr)
	case ex.MTASTSSource != "":
		// The domain's own policy in mode none, which the preloaded one
		// gives way to.
		fmt.Fprintf(&b, "  MTA-STS: no policy (%s)\n", ex.MTASTSSource)
	default:
		b.WriteString("  MTA-STS: no policy\n")
	}
	for _, h := range ex.Hosts {
		fmt.Fprintf(&b, "  %d %s", h.Host.Preference, h.Host.Name)
		for _, a := range h.Addrs {
			fmt.Fprintf(&b, " [%s]", a)
		}
		b.WriteString("\n")
		if h.Err != nil {
			fmt.Fprintf(&b, "    not used: %v\n", h.Err)
			continue
		}
		r := h.Requirement
		fmt.Fprintf(&b, "    %s, check %s (%s)\n", r.Level, r.Check, r.Basis)
		if r.Reason != "" {
			fmt.Fprintf(&b, "    why: %s\n", r.Reason)
		}
		if r.DANE != nil {
			for _, s := range r.DANE.PolicyStrings() {
				fmt.Fprintf(&b, "    TLSA %s\n", s)
			}
		}
		if h.TLSASource != "" {
			fmt.Fprintf(&b, "    DANE decision: %s\n", h.TLSASource)
		}
	}
	return b.String()
}
