package sts

import (
	"fmt"
	"strings"
)

// Match reports whether the MX host name matches one of the policy's mx
// patterns (RFC 8461 §4.1). The comparison ignores ASCII case and a trailing
// dot. A pattern "*.example.com" matches a host with exactly one more label
// on the left ("mx.example.com"), not "example.com" nor "a.b.example.com".
// A host that looks like an IP address never matches, whatever the patterns
// say: an MX record names a host, and a policy cannot vouch for an address.
//
// Match does not allocate; it is meant to be called for every MX host of
// every delivery.
func (p *Policy) Match(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if host == "" || looksLikeAddress(host) {
		return false
	}
	for _, pat := range p.MX {
		if matchPattern(pat, host) {
			return true
		}
	}
	return false
}

// matchPattern applies one pattern (lower-case, see parseMXPattern) to a
// host without trailing dot.
func matchPattern(pat, host string) bool {
	pat = strings.TrimSuffix(pat, ".")
	parent, wild := strings.CutPrefix(pat, "*.")
	if !wild {
		return equalFoldASCII(pat, host)
	}
	// RFC 8461 §4.1: the wildcard stands for exactly one label, the
	// leftmost one: the host is "<label>.<parent>" with a non-empty label
	// that contains no dot.
	if len(host) < len(parent)+2 {
		return false
	}
	label, rest := host[:len(host)-len(parent)-1], host[len(host)-len(parent)-1:]
	return rest[0] == '.' && equalFoldASCII(rest[1:], parent) &&
		!strings.Contains(label, ".")
}

// looksLikeAddress reports whether a host is written as an IP address rather
// than a name: IPv6 (it has a colon), an address literal ("[...]"), or
// IPv4 (its last label is all digits, which no top-level domain is,
// RFC 3696 §2).
func looksLikeAddress(host string) bool {
	if strings.ContainsAny(host, ":[]") {
		return true
	}
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	for i := 0; i < len(last); i++ {
		if last[i] < '0' || last[i] > '9' {
			return false
		}
	}
	return true
}

// equalFoldASCII is strings.EqualFold restricted to ASCII: DNS names
// compare case-insensitively only for A-Z (RFC 4343), and Unicode folding
// would let "\u212a" (Kelvin sign) equal "k".
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// normalizeDomain returns a policy domain lower-case and without trailing
// dot, or an error when it is not an ASCII domain name. It does not allocate
// for a domain that is already lower-case.
func normalizeDomain(domain string) (string, error) {
	d := toLowerASCII(strings.TrimSuffix(domain, "."))
	// The TXT name "_mta-sts.<domain>." must fit the 253 octets a name
	// can have in presentation form.
	if !validDomain(d) || len(d) > 253-len("_mta-sts.") || looksLikeAddress(d) {
		return "", &Error{Domain: domain, Kind: ErrInvalidDomain,
			Err: fmt.Errorf("%s is not an ASCII host name (IDNs must be given as A-labels)", quote(domain))}
	}
	return d, nil
}
