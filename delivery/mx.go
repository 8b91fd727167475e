package delivery

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/dnsname"
)

// MXHost is one host a domain's mail may be delivered to.
type MXHost struct {
	// Name is the host name, lower-case, without the trailing dot. For an
	// address literal it is the address.
	Name string
	// Preference is the MX preference (0 for an implicit MX).
	Preference uint16
}

// MXRoute is where a domain's mail goes: its MX hosts in the order to try
// them (RFC 5321 §5.1).
type MXRoute struct {
	// Domain is the recipient domain, lower-case, as an A-label.
	Domain string
	// Hosts in the order to try them: by preference, equal preferences
	// shuffled.
	Hosts []MXHost
	// Secure reports that the MX RRset — or, for an implicit MX, the proof
	// that the domain has none — was DNSSEC-secure. DANE needs it (RFC 7672
	// §2.2.1) and so does REQUIRETLS (RFC 8689 §4.2.1).
	Secure bool
	// Implicit reports that the domain has no MX records and its own
	// address records stand in for them (RFC 5321 §5.1).
	Implicit bool
	// Literal is set for an address-literal domain ("[192.0.2.1]"): mail
	// goes to that address, with no MX look-up and no DNS-based policy.
	Literal netip.Addr
}

// mxResolver is what MX resolution needs of the DNS layer.
type mxResolver interface {
	Lookup(ctx context.Context, name string, qtype uint16) (*dane.Answer, error)
	LookupHost(ctx context.Context, host string) (*dane.Answer, error)
}

// resolveMX finds where mail for domain goes. shuffle orders hosts of equal
// preference; nil means randomly (RFC 5321 §5.1 asks senders to spread the
// load). allowLiterals says whether address-literal domains are accepted.
//
// Failures are *Error values: NXDOMAIN and a null MX are permanent, a DNS
// failure of any other kind is temporary — never a bounce.
func resolveMX(ctx context.Context, r mxResolver, domain string, allowLiterals bool, shuffle func([]MXHost)) (*MXRoute, error) {
	if strings.HasPrefix(domain, "[") {
		return literalRoute(domain, allowLiterals)
	}
	domain = dnsname.Fold(domain)
	route := &MXRoute{Domain: domain}
	ans, err := r.Lookup(ctx, domain, dns.TypeMX)
	switch {
	case err == nil:
		route.Secure = ans.Secure
		if err := route.addMX(ans.MX()); err != nil {
			return nil, err
		}
	case errors.Is(err, dane.ErrNXDomain):
		return nil, failure(550, codeBadDomain, err, "domain %s does not exist", domain)
	case errors.Is(err, dane.ErrNoData):
		// RFC 5321 §5.1: no MX records, so the domain (after any CNAME,
		// which the answer has followed) is its own implicit MX, provided
		// it has an address.
		route.Secure, route.Implicit = ans.Secure, true
		host := strings.TrimSuffix(ans.Canonical, ".")
		if _, err := r.LookupHost(ctx, host); err != nil {
			if errors.Is(err, dane.ErrNXDomain) || errors.Is(err, dane.ErrNoData) {
				return nil, failure(550, codeBadDomain, err, "domain %s has neither MX nor address records", domain)
			}
			return nil, dnsFailure(domain, err)
		}
		route.Hosts = []MXHost{{Name: host}}
		return route, nil
	default:
		return nil, dnsFailure(domain, err)
	}
	if shuffle == nil {
		shuffle = shuffleEqual
	}
	shuffle(route.Hosts)
	return route, nil
}

// addMX takes the MX records into the route, sorted by preference, and
// recognises a null MX.
func (route *MXRoute) addMX(records []*dns.MX) error {
	nullMX := false
	var literals int
	for _, mx := range records {
		host := dnsname.Fold(mx.Mx)
		switch {
		case host == "." || host == "":
			// RFC 7505 §3: "MX 0 ." says the domain accepts no mail. A
			// domain must not publish it beside other MX records; when one
			// does, the other records are the usable ones.
			nullMX = true
			continue
		case isIPAddress(host):
			// RFC 5321 §5.1: an MX target is a host name, never an
			// address; such records are ignored.
			literals++
			continue
		}
		if i := slices.IndexFunc(route.Hosts, func(h MXHost) bool { return h.Name == host }); i >= 0 {
			route.Hosts[i].Preference = min(route.Hosts[i].Preference, mx.Preference)
			continue
		}
		route.Hosts = append(route.Hosts, MXHost{Name: host, Preference: mx.Preference})
	}
	switch {
	case len(route.Hosts) > 0:
	case nullMX:
		return failure(556, codeNullMX, nil, "domain %s accepts no mail (null MX, RFC 7505)", route.Domain)
	case literals > 0:
		return failure(550, codeUnroutable, nil, "the MX records of %s name IP addresses instead of hosts (RFC 5321 §5.1)", route.Domain)
	default:
		return failure(550, codeUnroutable, nil, "domain %s has no usable MX records", route.Domain)
	}
	slices.SortStableFunc(route.Hosts, func(a, b MXHost) int { return cmp.Compare(a.Preference, b.Preference) })
	return nil
}

// shuffleEqual shuffles runs of hosts of equal preference in place.
func shuffleEqual(hosts []MXHost) {
	for start := 0; start < len(hosts); {
		end := start + 1
		for end < len(hosts) && hosts[end].Preference == hosts[start].Preference {
			end++
		}
		run := hosts[start:end]
		rand.Shuffle(len(run), func(i, j int) { run[i], run[j] = run[j], run[i] })
		start = end
	}
}

func dnsFailure(domain string, err error) error {
	if errors.Is(err, dane.ErrBogus) {
		return failure(451, codeDNSFailure, err, "DNSSEC validation of %s failed: not delivering until its DNS is fixed", domain)
	}
	return failure(451, codeDNSFailure, err, "DNS look-up for %s failed", domain)
}

func isIPAddress(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}

// literalRoute handles "[192.0.2.1]" and "[IPv6:2001:db8::1]" (RFC 5321
// §4.1.3).
func literalRoute(domain string, allow bool) (*MXRoute, error) {
	inner, ok := strings.CutSuffix(strings.TrimPrefix(domain, "["), "]")
	var addr netip.Addr
	var err error
	if v6, isV6 := cutPrefixFold(inner, "IPv6:"); isV6 {
		addr, err = netip.ParseAddr(v6)
		ok = ok && err == nil && addr.Is6() && !addr.Is4In6()
	} else {
		addr, err = netip.ParseAddr(inner)
		ok = ok && err == nil && addr.Is4()
	}
	if !ok {
		return nil, failure(550, codeBadDomain, err, "malformed address literal %s", domain)
	}
	if !allow {
		return nil, failure(550, codeLiteralRefuse, nil, "address literal %s refused: this sender is configured not to deliver to addresses without a domain", domain)
	}
	return &MXRoute{Domain: domain, Hosts: []MXHost{{Name: addr.String()}}, Literal: addr}, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
