package dane

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Answer is the result of one look-up, after the CNAME chain (if any) has
// been followed.
//
// Answers may be shared between callers through the cache: treat an Answer
// and its Records as read-only.
type Answer struct {
	// Name is the name asked, lower-case and fully qualified ("mx.example.com.").
	Name string
	// Canonical is the name at the end of the CNAME chain; it equals Name
	// when there was none.
	Canonical string
	// Chain holds the CNAME targets followed, in order; empty when none.
	Chain []string
	// Secure reports that every RRset involved — each CNAME of the chain and
	// the final records, or the proof that there are none — came with the AD
	// bit from a resolver the configuration trusts to validate DNSSEC.
	Secure bool
	// Records holds the records of the asked type found at Canonical
	// (for LookupHost, both A and AAAA records).
	Records []dns.RR
	// TTL is the smallest TTL of the RRsets involved, in seconds.
	TTL uint32
}

// MX returns the answer's MX records.
func (a *Answer) MX() []*dns.MX { return recordsOf[*dns.MX](a) }

// TLSA returns the answer's TLSA records.
func (a *Answer) TLSA() []*dns.TLSA { return recordsOf[*dns.TLSA](a) }

// TXT returns the answer's TXT records, one string per record with its
// character-strings concatenated (RFC 7208 §3.3 and RFC 8461 §3.1 both
// read a record split into several strings this way).
func (a *Answer) TXT() []string {
	var out []string
	for _, t := range recordsOf[*dns.TXT](a) {
		out = append(out, strings.Join(t.Txt, ""))
	}
	return out
}

// Addrs returns the addresses of the answer's A and AAAA records.
func (a *Answer) Addrs() []netip.Addr {
	var out []netip.Addr
	for _, rr := range a.Records {
		var ip netip.Addr
		var ok bool
		switch rr := rr.(type) {
		case *dns.A:
			ip, ok = netip.AddrFromSlice(rr.A.To4())
		case *dns.AAAA:
			ip, ok = netip.AddrFromSlice(rr.AAAA.To16())
		}
		if ok {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

func recordsOf[T dns.RR](a *Answer) []T {
	if a == nil {
		return nil
	}
	out := make([]T, 0, len(a.Records))
	for _, rr := range a.Records {
		if t, ok := rr.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// The kinds of DNS failure. A *DNSError matches exactly one of them with
// errors.Is.
var (
	// ErrNXDomain: the name does not exist.
	ErrNXDomain = errors.New("no such domain")
	// ErrNoData: the name exists but has no records of the asked type.
	ErrNoData = errors.New("no records of that type")
	// ErrTemporary: no answer could be had now — SERVFAIL, REFUSED, a
	// timeout or a network error from every configured resolver.
	ErrTemporary = errors.New("temporary DNS failure")
	// ErrBogus: a validating resolver found the answer's DNSSEC signatures
	// invalid (SERVFAIL with an RFC 8914 extended DNSSEC error code). It is
	// what an attacker who tampers with a signed zone's answers produces.
	ErrBogus = errors.New("DNSSEC validation failed (bogus)")
)

// DNSError describes a failed look-up. Its Kind is one of ErrNXDomain,
// ErrNoData, ErrTemporary and ErrBogus.
type DNSError struct {
	Name  string // the name asked
	Qtype uint16 // the type asked (dns.TypeMX, ...)
	Kind  error  // ErrNXDomain, ErrNoData, ErrTemporary or ErrBogus
	// Secure reports, for ErrNXDomain and ErrNoData, that the denial of
	// existence was validated: DANE may rely on it.
	Secure bool
	Server string // the resolver that gave the last answer, if any
	Err    error  // the underlying cause (a timeout, an rcode), may be nil
}

func (e *DNSError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dns: %s %s: %v", dns.TypeToString[e.Qtype], strings.TrimSuffix(e.Name, "."), e.Kind)
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Server != "" {
		fmt.Fprintf(&b, " (resolver %s)", e.Server)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNXDomain) and its siblings work.
func (e *DNSError) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying cause.
func (e *DNSError) Unwrap() error { return e.Err }

// NotFound reports whether the name does not exist or has no records of the
// asked type. Packages that define their own small resolver interface test
// for this method, so that both *Resolver and *net.Resolver satisfy them.
func (e *DNSError) NotFound() bool { return e.Kind == ErrNXDomain || e.Kind == ErrNoData }

// Temporary reports whether asking again later may succeed: true for
// ErrTemporary and ErrBogus (a bogus answer means "not now", never "no").
func (e *DNSError) Temporary() bool { return e.Kind == ErrTemporary || e.Kind == ErrBogus }
