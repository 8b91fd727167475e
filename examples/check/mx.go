package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/dnsname"
)

// mxHost is one MX host of the domain and its addresses.
type mxHost struct {
	Name       string // lower-case, no trailing dot
	Preference uint16
	Addrs      []netip.Addr
	// Canonical is the name Name's CNAME chain ends at ("" when Name is
	// no alias).
	Canonical string
}

// mxSet is where the domain's mail goes.
type mxSet struct {
	Hosts []mxHost
	// Secure: the MX RRset (or, for an implicit MX, its denial) is
	// DNSSEC-secure. DANE needs it (RFC 7672 §2.2.1).
	Secure bool
	// NullMX: the domain publishes "MX 0 ." alone: it accepts no mail
	// (RFC 7505), and there is nothing to secure.
	NullMX bool
}

// maxMXHosts bounds the hosts checked: real domains have a handful, and
// each costs DNS look-ups and an SMTP connection.
const maxMXHosts = 10

// checkMX looks up the domain's MX records (RFC 5321 §5.1, RFC 7505) and
// the addresses of its hosts. It returns nil when the domain has nowhere
// to deliver to, which ends the MX-dependent checks.
func checkMX(ctx context.Context, env *Env, domain string, rep *Report) *mxSet {
	r := env.resolver()
	ans, err := r.Lookup(ctx, domain, dns.TypeMX)
	switch {
	case ans == nil:
		rep.add(AreaMX, domain, Error, "MX look-up failed: "+dnsProblem(err), dnsFix(err, domain))
		return nil
	case errors.Is(err, dane.ErrNXDomain):
		rep.add(AreaMX, domain, Error, "the domain does not exist (NXDOMAIN)",
			"check the spelling, or publish the domain's zone")
		return nil
	case errors.Is(err, dane.ErrNoData):
		return implicitMX(ctx, env, domain, ans.Secure, rep)
	}
	set := &mxSet{Secure: ans.Secure}
	var null, literal []string
	for _, mx := range ans.MX() {
		name := dnsname.Fold(mx.Mx)
		switch {
		case name == "." || name == "":
			null = append(null, fmt.Sprintf("MX %d .", mx.Preference))
		case isAddress(name):
			literal = append(literal, name)
		case !slices.ContainsFunc(set.Hosts, func(h mxHost) bool { return h.Name == name }):
			set.Hosts = append(set.Hosts, mxHost{Name: name, Preference: mx.Preference})
		}
	}
	slices.SortStableFunc(set.Hosts, func(a, b mxHost) int { return cmp.Compare(a.Preference, b.Preference) })
	for _, l := range literal {
		// RFC 5321 §5.1 and RFC 7505 §3: an MX target is a host name;
		// senders ignore a record naming an address.
		rep.add(AreaMX, domain, Error, fmt.Sprintf("an MX record names the address %s, which senders ignore", l),
			"give the host a name with an A/AAAA record, and name that in the MX record")
	}
	switch {
	case len(null) > 0 && len(set.Hosts) == 0 && len(literal) == 0:
		set.NullMX = true
		msg := "null MX (RFC 7505): the domain accepts no mail, so there is no inbound TLS to secure"
		if null[0] != "MX 0 ." || len(null) > 1 {
			// RFC 7505 §3: the null MX is the single record "0 .".
			rep.add(AreaMX, domain, Warning, fmt.Sprintf("null MX published as %s; RFC 7505 §3 defines it as the single record MX 0 .", strings.Join(null, ", ")),
				fmt.Sprintf("publish exactly %s. MX 0 .", domain))
			return set
		}
		rep.add(AreaMX, domain, OK, msg, "")
		return set
	case len(null) > 0:
		// RFC 7505 §3: a domain that advertises a null MX MUST NOT
		// advertise any other MX RR.
		rep.add(AreaMX, domain, Error, "null MX (MX 0 .) published beside other MX records: senders disagree on whether the domain takes mail",
			"remove MX 0 . if the domain receives mail, or the other MX records if it does not")
	case len(set.Hosts) == 0:
		return nil // only literals, reported above
	}
	if len(set.Hosts) > maxMXHosts {
		rep.add(AreaMX, domain, Warning, fmt.Sprintf("%d MX hosts; only the first %d are checked", len(set.Hosts), maxMXHosts), "")
		set.Hosts = set.Hosts[:maxMXHosts]
	}
	rep.add(AreaMX, domain, OK, describeMX(set), "")
	for i := range set.Hosts {
		resolveHost(ctx, env, &set.Hosts[i], rep)
	}
	return set
}

// implicitMX handles a domain without MX records: RFC 5321 §5.1 has
// senders use the domain's own address.
func implicitMX(ctx context.Context, env *Env, domain string, secure bool, rep *Report) *mxSet {
	host := mxHost{Name: domain}
	ans, err := env.resolver().LookupHost(ctx, domain)
	if ans == nil || err != nil || len(ans.Addrs()) == 0 {
		if ans == nil && !isNotFound(err) {
			rep.add(AreaMX, domain, Error, "no MX records, and the address look-up failed: "+dnsProblem(err), dnsFix(err, domain))
			return nil
		}
		rep.add(AreaMX, domain, Warning, "no MX records and no address: the domain cannot receive mail, but senders retry for days before they give up",
			fmt.Sprintf("if the domain takes no mail, publish a null MX (RFC 7505):\n%s. MX 0 .", domain))
		return nil
	}
	host.Addrs = ans.Addrs()
	rep.add(AreaMX, domain, Warning, "no MX records: senders deliver to the domain's own address (implicit MX, RFC 5321 §5.1)",
		fmt.Sprintf("publish an MX record (%s. MX 10 <mail host>.), or a null MX (MX 0 .) if the domain takes no mail", domain))
	return &mxSet{Hosts: []mxHost{host}, Secure: secure}
}

// resolveHost looks up the addresses of one MX host.
func resolveHost(ctx context.Context, env *Env, h *mxHost, rep *Report) {
	ans, err := env.resolver().LookupHost(ctx, h.Name)
	switch {
	case ans == nil:
		rep.add(AreaMX, h.Name, Error, "address look-up failed: "+dnsProblem(err), dnsFix(err, h.Name))
		return
	case len(ans.Addrs()) == 0:
		rep.add(AreaMX, h.Name, Error, "the MX host has no A or AAAA record: senders cannot reach it",
			fmt.Sprintf("publish the address of %s, or remove its MX record", h.Name))
		return
	}
	h.Addrs = ans.Addrs()
	if len(ans.Chain) > 0 {
		h.Canonical = strings.TrimSuffix(ans.Canonical, ".")
		// RFC 2181 §10.3: the target of an MX record must not be an
		// alias. Senders follow it anyway, but MTA-STS matches and
		// certificates must then name the alias, not its target.
		rep.add(AreaMX, h.Name, Warning, fmt.Sprintf("the MX host is a CNAME for %s (RFC 2181 §10.3: MX targets must not be aliases)", h.Canonical),
			fmt.Sprintf("name %s in the MX record instead", h.Canonical))
	}
}

// describeMX lists the hosts in one line.
func describeMX(set *mxSet) string {
	var b strings.Builder
	for i, h := range set.Hosts {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d %s", h.Preference, h.Name)
	}
	if set.Secure {
		b.WriteString(" (DNSSEC-signed)")
	} else {
		b.WriteString(" (not DNSSEC-signed)")
	}
	return b.String()
}

func isAddress(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// isNotFound reports whether a look-up's error says the name or the
// records do not exist.
func isNotFound(err error) bool {
	var de *dane.DNSError
	return errors.As(err, &de) && de.NotFound()
}

// dnsProblem describes a failed look-up in words.
func dnsProblem(err error) string {
	switch {
	case errors.Is(err, dane.ErrBogus):
		return "DNSSEC validation fails (bogus answer)"
	case errors.Is(err, dane.ErrTemporary):
		return "no answer (SERVFAIL, timeout or refused)"
	case err == nil:
		return "no answer"
	}
	return err.Error()
}

// dnsFix says what to do about a failed look-up of name.
func dnsFix(err error, name string) string {
	if errors.Is(err, dane.ErrBogus) {
		return fmt.Sprintf("validating senders cannot use %s at all: check its DS, DNSKEY and signatures (e.g. with dnsviz.net)", name)
	}
	return "check that the domain's name servers answer; run the check again if the failure was passing"
}
