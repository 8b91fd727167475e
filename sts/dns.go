package sts

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// TXTResolver looks up TXT records. *net.Resolver satisfies it, and so does
// sealpost's DNSSEC-aware *dane.Resolver, the one meant for production (it
// caches, which makes the TXT check of every Lookup cheap).
type TXTResolver interface {
	// LookupTXT returns the TXT records of name, a fully qualified name
	// with a trailing dot, following CNAMEs: one string per record, its
	// character-strings concatenated. An error for which errors.As finds
	// a NotFound() bool method returning true, or a *net.DNSError with
	// IsNotFound set, means that name has no TXT records; any other error
	// is a failure to find out. The resolver bounds its own queries in
	// time.
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// LookupRecord looks up domain's MTA-STS TXT record at _mta-sts.<domain>
// (CNAMEs followed by the resolver) and selects the one record RFC 8461
// §3.1 allows. The error is an *Error of kind ErrInvalidDomain, ErrNoRecord,
// ErrSeveralRecords, ErrInvalidRecord or ErrTemporaryDNS.
func (c *Client) LookupRecord(ctx context.Context, domain string) (Record, error) {
	d, err := normalizeDomain(domain)
	if err != nil {
		return Record{}, err
	}
	return c.lookupRecord(ctx, d, txtName(d))
}

// txtName is the name of domain's MTA-STS TXT record, fully qualified so
// that no resolver appends a search domain to it.
func txtName(domain string) string { return "_mta-sts." + domain + "." }

// lookupRecord is LookupRecord for a normalised domain whose TXT name the
// caller already has (the cache keeps it, so a cached look-up does not
// build it again).
func (c *Client) lookupRecord(ctx context.Context, domain, name string) (Record, error) {
	txts, err := c.resolver().LookupTXT(ctx, name)
	if err != nil {
		if isNotFound(err) {
			return Record{}, &Error{Domain: domain, Kind: ErrNoRecord, Err: err}
		}
		return Record{}, &Error{Domain: domain, Kind: ErrTemporaryDNS, Err: fmt.Errorf("TXT %s: %w", name, err), temporary: true}
	}
	rec, n, err := selectRecord(txts)
	switch {
	case n == 0:
		return Record{}, &Error{Domain: domain, Kind: ErrNoRecord,
			Err: fmt.Errorf("none of the %d TXT records of %s starts with %s", len(txts), name, recordVersion)}
	case n > 1:
		return Record{}, &Error{Domain: domain, Kind: ErrSeveralRecords,
			Err: fmt.Errorf("%d TXT records of %s start with %s, exactly one must", n, name, recordVersion)}
	case err != nil:
		return Record{}, &Error{Domain: domain, Kind: ErrInvalidRecord, Err: err}
	}
	return rec, nil
}

// isNotFound classifies a resolver error as "no such record" the way both
// *net.Resolver and *dane.Resolver report it.
func isNotFound(err error) bool {
	var nf interface{ NotFound() bool }
	if errors.As(err, &nf) && nf.NotFound() {
		return true
	}
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

func (c *Client) resolver() TXTResolver {
	if c.Resolver != nil {
		return c.Resolver
	}
	return net.DefaultResolver
}

// AddrResolver is a TXTResolver that also finds a host's addresses. When
// Client.Resolver is one, the policy host is looked up through it and
// DialContext is only given "ip:port", so that one resolver answers every
// question the Client asks (a net.Dialer would ask the system's).
// *dane.Resolver and *net.Resolver are AddrResolvers.
type AddrResolver interface {
	TXTResolver
	// LookupNetIP returns the addresses of host for network ("ip",
	// "ip4" or "ip6"), as net.Resolver.LookupNetIP does.
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}
