package hostdial

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Resolver finds a host's addresses. *net.Resolver and sealpost's
// *dane.Resolver are Resolvers.
type Resolver interface {
	// LookupNetIP returns the addresses of host for network ("ip",
	// "ip4" or "ip6"), as net.Resolver.LookupNetIP does.
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Dialer connects to host names through Resolver. Its DialContext has the
// shape of http.Transport.DialContext.
type Dialer struct {
	// Resolver looks up the host names given to DialContext. It must be
	// set: a Dialer without one refuses names rather than fall back to
	// the machine's resolver.
	Resolver Resolver
	// Dial opens one connection to "ip:port". Nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DialContext connects to addr ("host:port"). network is "tcp", "tcp4"
// or "tcp6"; the latter two only look up and dial addresses of their
// family.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	dial := d.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return dial(ctx, network, addr)
	}
	if d.Resolver == nil {
		return nil, &net.OpError{Op: "dial", Net: network,
			Err: fmt.Errorf("hostdial: no resolver to look up %q with", host)}
	}
	family := "ip"
	switch network {
	case "tcp4":
		family = "ip4"
	case "tcp6":
		family = "ip6"
	}
	addrs, err := d.Resolver.LookupNetIP(ctx, family, host)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	var errs []error
	for _, ip := range addrs {
		ip = ip.Unmap()
		if (family == "ip4" && !ip.Is4()) || (family == "ip6" && !ip.Is6()) {
			continue
		}
		conn, err := dial(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, &net.OpError{Op: "dial", Net: network,
			Err: fmt.Errorf("hostdial: %s has no %s address", host, family)}
	}
	return nil, errors.Join(errs...)
}
