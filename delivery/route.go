package delivery

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/dnsname"
)

// target is where one domain's recipients go in one attempt: the MX route
// (of the recipient domain or of its next hop) and what the security
// decision needs to know about it.
type target struct {
	// domain is the policy domain: the recipient domain, or the next hop's
	// own domain. Its DANE records, MTA-STS policy and LocalPolicy rules
	// apply.
	domain string
	route  *MXRoute
	port   uint16
	// mxSecure says whether the host names came from a DNSSEC-secure MX
	// answer (or, for a configured "[host]" next hop, from the
	// configuration, which is as trustworthy): RFC 7672 §2.2.1 and RFC 8689
	// §4.2.1 depend on it.
	mxSecure bool
	// literal is set for an address-literal destination: no DNS-based
	// policy can apply.
	literal bool
}

// daneName returns the name whose TLSA base domain DANE discovery starts
// from for host. For an implicit MX it is the initial name, the domain
// itself, not the end of its CNAME chain that the route's host carries (RFC
// 5321 §5.1): RFC 7672 §2.2.2 and §2.2.3 try the expanded name first and
// the initial one second, and when the chain leaves the signed zone after a
// secure first CNAME the initial name is the only base domain. Starting
// from the target would find an unsigned host and no DANE at all.
func (t *target) daneName(host string) string {
	if t.route.Implicit && t.route.Domain != "" {
		return t.route.Domain
	}
	return host
}

// nextHop is a parsed smart host: "relay.example", "[smtp.relay.example]",
// either with ":port".
type nextHop struct {
	name    string // lower-case, no trailing dot; an IP address for "[192.0.2.1]"
	port    uint16
	noMX    bool // bracketed: the host itself, no MX look-up
	literal netip.Addr
}

// parseNextHop reads a next hop as Message.NextHop documents it.
func parseNextHop(s string) (nextHop, error) {
	nh := nextHop{port: 25}
	host := s
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return nh, failure(451, codeBadNextHop, nil, "next hop %q: missing ']'", s)
		}
		host, nh.noMX = s[1:end], true
		rest := s[end+1:]
		if rest != "" {
			p, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return nh, failure(451, codeBadNextHop, nil, "next hop %q: unexpected %q after ']'", s, rest)
			}
			port, err := parsePort(p)
			if err != nil {
				return nh, failure(451, codeBadNextHop, err, "next hop %q: bad port", s)
			}
			nh.port = port
		}
	} else if h, p, err := net.SplitHostPort(s); err == nil {
		port, err := parsePort(p)
		if err != nil {
			return nh, failure(451, codeBadNextHop, err, "next hop %q: bad port", s)
		}
		host, nh.port = h, port
	}
	if a, err := netip.ParseAddr(strings.TrimPrefix(strings.ToLower(host), "ipv6:")); err == nil {
		if !nh.noMX {
			return nh, failure(451, codeBadNextHop, nil, "next hop %q: an address must be written in brackets", s)
		}
		nh.literal = a.Unmap()
		nh.name = strings.ToLower(host)
		return nh, nil
	}
	name, err := dnsname.Canonical(host)
	if err != nil {
		return nh, failure(451, codeBadNextHop, err, "next hop %q is not a host name", s)
	}
	nh.name = name
	return nh, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err == nil && n == 0 {
		err = errors.New("port 0")
	}
	return uint16(n), err
}

// target finds where the recipients of domain go: through the next hop if
// one is configured, else to the domain's MX hosts.
func (c *Client) target(ctx context.Context, domain, hop string) (*target, error) {
	if hop == "" {
		route, err := resolveMX(ctx, c.resolver, domain, c.cfg.AllowAddressLiterals, c.cfg.Shuffle)
		if err != nil {
			return nil, err
		}
		return &target{domain: route.Domain, route: route, port: 25, mxSecure: route.Secure, literal: route.Literal.IsValid()}, nil
	}
	nh, err := parseNextHop(hop)
	if err != nil {
		return nil, err
	}
	switch {
	case nh.literal.IsValid():
		route := &MXRoute{Domain: nh.name, Hosts: []MXHost{{Name: nh.literal.String()}}, Literal: nh.literal}
		return &target{domain: nh.name, route: route, port: nh.port, literal: true}, nil
	case nh.noMX:
		// The configured host stands for its own domain, as an implicit MX
		// does; its name did not come from DNS, so no MX answer can have
		// been forged (RFC 7672 §2.2.1 is about MX answers).
		route := &MXRoute{Domain: nh.name, Hosts: []MXHost{{Name: nh.name}}, Secure: true, Implicit: true}
		return &target{domain: nh.name, route: route, port: nh.port, mxSecure: true}, nil
	}
	route, err := resolveMX(ctx, c.resolver, nh.name, false, c.cfg.Shuffle)
	if err != nil {
		var de *Error
		if errors.As(err, &de) && !de.Temporary {
			// A next hop that does not exist is our configuration's fault,
			// not the recipient's: retry rather than bounce.
			return nil, failure(451, codeBadNextHop, err, "next hop %s is not usable", nh.name)
		}
		return nil, err
	}
	return &target{domain: route.Domain, route: route, port: nh.port, mxSecure: route.Secure}, nil
}

// addresses returns the addresses of host in the order to try them (see
// dialOrder).
func (c *Client) addresses(ctx context.Context, t *target, host MXHost) ([]netip.Addr, error) {
	if t.literal {
		return []netip.Addr{t.route.Literal}, nil
	}
	ans, err := c.resolver.LookupHost(ctx, host.Name)
	if err != nil {
		if errors.Is(err, dane.ErrNXDomain) || errors.Is(err, dane.ErrNoData) {
			return nil, failure(451, codeNoAddress, err, "MX host %s has no address", host.Name)
		}
		return nil, dnsFailure(host.Name, err)
	}
	out := c.dialOrder(ans.Addrs())
	if len(out) == 0 {
		return nil, failure(451, codeNoAddress, nil, "MX host %s has no usable address", host.Name)
	}
	return out, nil
}

// dialOrder returns addrs in the order to try them: IPv6 and IPv4
// interleaved, IPv6 first (RFC 8305 §4, tried one after the other), each
// family in the order given, without the addresses no packet should go to
// (unspecified, multicast) and without IPv6 when Config.DisableIPv6 says so.
func (c *Client) dialOrder(addrs []netip.Addr) []netip.Addr {
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		switch {
		case !a.IsValid() || a.IsUnspecified() || a.IsMulticast():
		case a.Is4():
			v4 = append(v4, a)
		case !c.cfg.DisableIPv6:
			v6 = append(v6, a)
		}
	}
	out := make([]netip.Addr, 0, len(v4)+len(v6))
	for i := 0; i < max(len(v4), len(v6)); i++ {
		if i < len(v6) {
			out = append(out, v6[i])
		}
		if i < len(v4) {
			out = append(out, v4[i])
		}
	}
	return out
}
