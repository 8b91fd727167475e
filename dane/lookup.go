package dane

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/miekg/dns"
	"github.com/sealpost/sealpost/internal/dnsname"
)

// InsecureMXPolicy says whether DANE applies to an MX host named by an MX
// RRset that is not DNSSEC-secure (RFC 7672 §2.2.1).
type InsecureMXPolicy int

const (
	// InsecureMXDANE, the zero value, looks up the host's TLSA records as
	// for a secure MX RRset and enforces them when they are secure. RFC 7672
	// §2.2.1 allows it ("MAY proceed to use DANE TLS even with MX hosts
	// obtained via an insecure MX RRSet") so that unsigned domains hosted
	// by a provider whose zone is signed benefit from the provider's
	// records; Postfix does the same (smtp_tls_dane_insecure_mx_policy=dane).
	InsecureMXDANE InsecureMXPolicy = iota
	// InsecureMXIgnore treats every host named by an insecure MX RRset as
	// one DANE does not apply to, without asking the DNS (mox's choice,
	// Postfix's "may").
	InsecureMXIgnore
)

func (p InsecureMXPolicy) String() string {
	switch p {
	case InsecureMXDANE:
		return "dane"
	case InsecureMXIgnore:
		return "ignore"
	}
	return fmt.Sprintf("InsecureMXPolicy(%d)", int(p))
}

// Discovery decides, one MX host at a time, which TLSA records apply
// (RFC 7672 §2.2). It is safe for concurrent use.
type Discovery struct {
	// Resolver makes the DNSSEC-aware look-ups. It must not be nil.
	Resolver *Resolver
	// InsecureMX says what an insecure MX RRset means for the hosts it
	// names; the zero value, InsecureMXDANE, honours their secure TLSA
	// records.
	InsecureMX InsecureMXPolicy
}

// RequirementError says that the DANE requirement of an MX host could not
// be decided: a look-up it depends on failed or was bogus. The host must
// not be used now, and the failure is temporary — never a reason to fall
// back to weaker security (RFC 7672 §2.1.1, §2.2). errors.Is(err, ErrBogus)
// and errors.Is(err, ErrTemporary) tell the two apart.
type RequirementError struct {
	Host string // the MX host
	Name string // the name whose look-up failed, e.g. "_25._tcp.mx.example.com"
	Err  error  // the *DNSError (or the resolver's configuration error)
}

func (e *RequirementError) Error() string {
	return fmt.Sprintf("dane: %s: cannot decide whether DANE applies: %v", e.Host, e.Err)
}

// Unwrap returns the look-up's error.
func (e *RequirementError) Unwrap() error { return e.Err }

// Temporary reports true: see the type's documentation.
func (e *RequirementError) Temporary() bool { return true }

// ResultType returns "dnssec-invalid", the RFC 8460 §4.3.3 result type for
// a DANE policy whose records could not be obtained or validated.
func (e *RequirementError) ResultType() string { return ResultDNSSECInvalid }

// Lookup decides the DANE requirement of the MX host host for SMTP on
// port 25. mxSecure says whether the MX RRset that named it was secure; for
// a domain without MX records whose own address is used (RFC 5321 §5.1),
// it says whether the denial of the MX records was secure (RFC 7672
// §2.2.2).
//
// It returns a Requirement whose Outcome is NotApplicable,
// AuthenticationRequired or TLSRequired, or a *RequirementError when a
// look-up failed or was bogus and the host must not be used now.
func (d *Discovery) Lookup(ctx context.Context, host string, mxSecure bool) (*Requirement, error) {
	return d.LookupPort(ctx, host, 25, mxSecure)
}

// LookupPort is Lookup for an SMTP server on another TCP port, such as a
// smart host taking mail on 587: the TLSA owner name carries the port
// (RFC 6698 §3: _<port>._tcp.<base domain>), so the records
// of port 25 say nothing about it. Port 0 means 25.
func (d *Discovery) LookupPort(ctx context.Context, host string, port uint16, mxSecure bool) (*Requirement, error) {
	if port == 0 {
		port = 25
	}
	host = dnsname.Fold(host)
	req := &Requirement{Outcome: NotApplicable, Host: host, Port: port, MXSecure: mxSecure}
	if !mxSecure && d.InsecureMX == InsecureMXIgnore {
		return req, nil
	}
	if d.Resolver == nil {
		return nil, &RequirementError{Host: host, Name: host, Err: errors.New("no resolver configured")}
	}
	bases, ttl, err := d.baseDomains(ctx, host)
	if err != nil {
		return nil, err
	}
	req.TTL = ttl
	prefix := "_" + strconv.Itoa(int(port)) + "._tcp."
	for _, base := range bases {
		name := prefix + base
		req.TLSANames = append(req.TLSANames, name)
		ans, err := d.Resolver.Lookup(ctx, name, dns.TypeTLSA)
		if ans == nil {
			// SERVFAIL, timeout, bogus: reached only for a host whose
			// address records are secure, so a signed zone's broken TLSA
			// answers stop delivery to this host rather than downgrade it.
			return nil, &RequirementError{Host: host, Name: name, Err: err}
		}
		req.TTL = min(req.TTL, ans.TTL)
		if err != nil || !ans.Secure || len(ans.Records) == 0 {
			// RFC 7672 §2.2.3: no TLSA records here (a denial, or records
			// that are not secure and so count for nothing); the next base
			// domain, if any, is tried.
			continue
		}
		req.BaseDomain = base
		req.Records = tlsaRecords(ans)
		req.Outcome = TLSRequired
		if len(UsableRecords(req.Records)) > 0 {
			req.Outcome = AuthenticationRequired
		}
		return req, nil
	}
	return req, nil
}

// baseDomains returns the candidate TLSA base domains of host, in the order
// they are tried, without the final dot; none when DANE cannot apply.
//
// RFC 7672 §2.2.3: TLSA records are looked up only for a host whose address
// records are secure. This also keeps the providers whose name servers
// answer TLSA questions for unsigned zones with SERVFAIL or NOTIMP from
// stalling mail: an unsigned host is never asked for TLSA records.
//
// RFC 7672 §2.2.3 and RFC 7671 §7: when host is a CNAME whose chain is
// secure to its end, the expanded name is the preferred base domain and
// host itself the second. When only the first link is secure (the chain
// leads into an unsigned zone), the expanded name cannot be trusted and
// host alone is tried.
func (d *Discovery) baseDomains(ctx context.Context, host string) ([]string, uint32, error) {
	addr, err := d.Resolver.LookupHost(ctx, host)
	if err != nil {
		var de *DNSError
		if errors.As(err, &de) && de.NotFound() {
			// No address at all: the host cannot be reached, whatever
			// its TLSA records say; connecting to it fails on its own.
			return nil, 0, nil
		}
		return nil, 0, &RequirementError{Host: host, Name: host, Err: err}
	}
	expanded := strings.TrimSuffix(addr.Canonical, ".")
	switch {
	case addr.Secure && len(addr.Chain) > 0 && expanded != host:
		return []string{expanded, host}, addr.TTL, nil
	case addr.Secure:
		return []string{host}, addr.TTL, nil
	case len(addr.Chain) == 0:
		return nil, addr.TTL, nil // insecure: DANE does not apply
	}
	// An insecure chain: is its first link, the CNAME at host, secure?
	link, err := d.Resolver.Lookup(ctx, host, dns.TypeCNAME)
	if link == nil {
		return nil, 0, &RequirementError{Host: host, Name: host, Err: err}
	}
	if err != nil || !link.Secure {
		return nil, addr.TTL, nil
	}
	return []string{host}, min(addr.TTL, link.TTL), nil
}

// tlsaRecords converts the TLSA records of an answer. A record whose data
// cannot be read (which a record decoded from the wire never is) is kept as
// an unusable record rather than dropped, so that an RRset of nothing else
// still means "TLS required".
func tlsaRecords(ans *Answer) []TLSARecord {
	var out []TLSARecord
	for _, rr := range ans.TLSA() {
		r, err := TLSARecordFromRR(rr)
		if err != nil {
			// Without data, the record is unusable whatever its type.
			r = TLSARecord{Usage: Usage(rr.Usage), Selector: Selector(rr.Selector), MatchingType: MatchingType(rr.MatchingType)}
		}
		out = append(out, r)
	}
	return out
}
