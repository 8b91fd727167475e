package delivery

import (
	"net/netip"
	"strings"
	"time"

	"github.com/sealpost/sealpost/sts"
)

// LocalPolicy is the operator's own rules. Rules only tighten what DANE
// and MTA-STS demand; the one way to loosen a domain's requirement is an
// Override, explicit and logged.
type LocalPolicy struct {
	// Domains maps a policy domain (lower-case A-labels, no trailing dot)
	// to its rules. A key that starts with a dot applies to every
	// subdomain: ".example.com" covers "mx.example.com", not
	// "example.com". The longest match wins. The map must not change once
	// a Client uses it.
	Domains map[string]DomainPolicy
	// Default applies to every domain that Domains does not name.
	Default DomainPolicy
}

// DomainPolicy is the operator's rules for one domain. The zero value adds
// nothing to what the domain itself publishes.
type DomainPolicy struct {
	// RequireTLS makes TLS mandatory for every host of the domain.
	RequireTLS bool
	// RequireAuthenticated makes TLS with an authenticated server
	// mandatory: through DANE where the host has usable TLSA records,
	// otherwise through the WebPKI as RFC 8461 §4.2 checks it (TLS 1.2 or
	// newer, a trusted chain naming the MX host).
	RequireAuthenticated bool
	// DANEOnly uses only hosts with DNSSEC-secure, usable TLSA records
	// named by a DNSSEC-secure MX answer (or, for a domain without MX
	// records, a secure denial of them): the others are skipped with a
	// temporary 4.7.5 failure and recorded for TLS-RPT as
	// "dane-required". The server must be authenticated by the records
	// even when they are not enforced for a message ("TLS-Required: No",
	// a TLS-RPT report) or by an Override.
	DANEOnly bool
	// Preloaded is an MTA-STS-style policy (mode and mx patterns; max_age
	// is ignored) applied when the domain publishes no MTA-STS policy, or
	// its policy cannot be fetched and none is cached, so that the first
	// contact is protected too. A policy the domain publishes takes
	// precedence in every mode, none included.
	// Build it with sts.ParsePolicy. Sessions under it are reported to
	// TLS-RPT as "no-policy-found": the domain published nothing.
	Preloaded *sts.Policy

	// NextHop routes the domain's mail through a smart host, written as
	// Message.NextHop is (which takes precedence). RequireTLS,
	// RequireAuthenticated, DANEOnly and Preloaded written beside it apply
	// to the connection to the next hop, on top of the next hop domain's
	// own rules; Config.Validate refuses those it can never meet (an
	// address next hop has no name to authenticate) and an Override beside
	// it (the domain's own policies are not used then).
	NextHop string
	// SourceIPv4 and SourceIPv6 override Config's for this domain (default
	// Dial only).
	SourceIPv4, SourceIPv6 netip.Addr

	// Override loosens the domain's published requirement.
	Override Override
}

// Override loosens the requirement a domain publishes, for a domain whose
// DANE records or MTA-STS policy are broken and whose mail must flow
// meanwhile. The loosened policy is still checked and its failures
// reported, as in MTA-STS testing mode, unless another policy takes its
// place (see IgnoreDANE); every delivery that uses the override is logged
// at warning level with its Reason. An Override without
// a Reason, or past its Until, is not applied.
type Override struct {
	// IgnoreDANE does not enforce the TLSA records of the domain's hosts.
	// It drops DANE only: the domain's MTA-STS policy (or the preloaded
	// one) then applies to those hosts as to hosts without TLSA records;
	// where no such policy applies, the records are checked and reported,
	// not enforced. Under DANEOnly the server must still match them.
	IgnoreDANE bool
	// IgnoreMTASTS does not enforce its MTA-STS policy (nor a preloaded
	// one).
	IgnoreMTASTS bool
	// Reason says why, for the log and for whoever reads the configuration
	// next. Required.
	Reason string
	// Until ends the override; zero means it has no end.
	Until time.Time
}

// active reports whether the override applies at now.
func (o Override) active(now time.Time) bool {
	return (o.IgnoreDANE || o.IgnoreMTASTS) && o.Reason != "" && (o.Until.IsZero() || now.Before(o.Until))
}

// forHop returns the rules that apply when the mail of domain goes to the
// next hop's domain hop: the next hop's own rules, made stricter by the
// requirements written for domain. An operator who writes
// RequireAuthenticated beside a NextHop means the connection to that next
// hop; looking the requirement up under the next hop's name alone left it
// silently dead. Requirements add up (each one only tightens); Preloaded,
// NextHop, SourceIPv4 and SourceIPv6 of domain take the place of the next
// hop's when set; an Override is the next hop's own only, since an override
// loosens and one written for the recipient domain loosens that domain's
// policy, which a next hop does not have.
func (p *LocalPolicy) forHop(domain, hop string) DomainPolicy {
	own, beside := p.lookup(hop), p.lookup(domain)
	if hop == domain {
		return own
	}
	own.RequireTLS = own.RequireTLS || beside.RequireTLS
	own.RequireAuthenticated = own.RequireAuthenticated || beside.RequireAuthenticated
	own.DANEOnly = own.DANEOnly || beside.DANEOnly
	if beside.Preloaded != nil {
		own.Preloaded = beside.Preloaded
	}
	if beside.SourceIPv4.IsValid() {
		own.SourceIPv4 = beside.SourceIPv4
	}
	if beside.SourceIPv6.IsValid() {
		own.SourceIPv6 = beside.SourceIPv6
	}
	return own
}

// lookup returns the rules for domain: an exact entry, else the longest
// ".suffix" entry, else Default.
func (p *LocalPolicy) lookup(domain string) DomainPolicy {
	if len(p.Domains) == 0 {
		return p.Default
	}
	if dp, ok := p.Domains[domain]; ok {
		return dp
	}
	for i := strings.IndexByte(domain, '.'); i >= 0; {
		if dp, ok := p.Domains[domain[i:]]; ok {
			return dp
		}
		next := strings.IndexByte(domain[i+1:], '.')
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return p.Default
}
