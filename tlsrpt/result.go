package tlsrpt

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"slices"
	"time"

	"github.com/sealpost/sealpost/internal/dnsname"
)

// ResultType is the "result-type" of a failed session (RFC 8460 §4.3).
type ResultType string

// The result types RFC 8460 §4.3 defines (and §6.6 registers).
const (
	// RFC 8460 §4.3.1: negotiation failures.
	ResultSTARTTLSNotSupported    ResultType = "starttls-not-supported"
	ResultCertificateHostMismatch ResultType = "certificate-host-mismatch"
	ResultCertificateExpired      ResultType = "certificate-expired"
	ResultCertificateNotTrusted   ResultType = "certificate-not-trusted"
	ResultValidationFailure       ResultType = "validation-failure"

	// RFC 8460 §4.3.2.1: DANE-specific policy failures.
	ResultTLSAInvalid   ResultType = "tlsa-invalid"
	ResultDNSSECInvalid ResultType = "dnssec-invalid"
	ResultDANERequired  ResultType = "dane-required"

	// RFC 8460 §4.3.2.2: MTA-STS-specific policy failures.
	ResultSTSPolicyFetchError ResultType = "sts-policy-fetch-error"
	ResultSTSPolicyInvalid    ResultType = "sts-policy-invalid"
	ResultSTSWebPKIInvalid    ResultType = "sts-webpki-invalid"
)

// resultTypes is every result type RFC 8460 §4.3 defines, in the order the
// RFC lists them: the one list ResultTypes and Known read.
var resultTypes = [...]ResultType{
	ResultSTARTTLSNotSupported, ResultCertificateHostMismatch,
	ResultCertificateExpired, ResultCertificateNotTrusted,
	ResultValidationFailure, ResultTLSAInvalid, ResultDNSSECInvalid,
	ResultDANERequired, ResultSTSPolicyFetchError, ResultSTSPolicyInvalid,
	ResultSTSWebPKIInvalid,
}

// ResultTypes returns every result type RFC 8460 §4.3 defines, in the
// order the RFC lists them.
func ResultTypes() []ResultType { return slices.Clone(resultTypes[:]) }

// Known reports whether t is one of the result types RFC 8460 defines.
// Received reports may carry others (a later registration, a sender's
// own); they are kept as they are.
func (t ResultType) Known() bool { return slices.Contains(resultTypes[:], t) }

// PolicyType is the "policy-type" of a report entry (RFC 8460 §4.4).
type PolicyType string

// The policy types RFC 8460 §4.4 allows.
const (
	PolicyTypeSTS           PolicyType = "sts"
	PolicyTypeTLSA          PolicyType = "tlsa"
	PolicyTypeNoPolicyFound PolicyType = "no-policy-found"
)

// Known reports whether t is one of the three policy types of RFC 8460 §4.4.
func (t PolicyType) Known() bool {
	return t == PolicyTypeSTS || t == PolicyTypeTLSA || t == PolicyTypeNoPolicyFound
}

// Policy is the policy a session was held to: the "policy" object of an
// RFC 8460 §4.4 report. Sessions are aggregated per Policy, so two
// sessions under the same MTA-STS policy (or the same TLSA RRset) count
// together, and a changed policy starts a new entry.
//
// Build policies with [NewPolicy]: it normalises the names and computes the
// policy's [PolicyID] once, which is what makes [Recorder.Record] cheap. A
// Policy must not be modified after NewPolicy returned it.
type Policy struct {
	// Type is "sts", "tlsa" or "no-policy-found".
	Type PolicyType `json:"policy-type"`
	// Strings is the "policy-string" (RFC 8460 §4.5): for MTA-STS the lines
	// of the policy ("version: STSv1", "mode: enforce", "mx: ...", ...),
	// one "mx" line each; for DANE the TLSA records in presentation format,
	// "3 1 1 <hex>" each. Empty for no-policy-found.
	Strings []string `json:"policy-string,omitempty"`
	// Domain is the policy domain, in A-labels (RFC 8460 §4.4): the
	// recipient domain, whose _smtp._tls record receives the report.
	Domain string `json:"policy-domain"`
	// MXHosts is the "mx-host": the MX patterns of an MTA-STS policy, or
	// the MX host whose TLSA records were applied. May be empty.
	MXHosts []string `json:"mx-host,omitempty"`

	id    PolicyID
	hasID bool
}

// PolicyID identifies a Policy by its content: the same type, domain,
// policy strings and mx hosts give the same ID on every node and after a
// restart, so a persistent store can key counts by it.
type PolicyID [16]byte

// String returns the ID in hexadecimal.
func (id PolicyID) String() string { return hex.EncodeToString(id[:]) }

// NewPolicy returns the policy with the domain and mx hosts lower-cased and
// without trailing dots, and its ID computed. The slices are kept, not
// copied: the caller must not modify them afterwards.
func NewPolicy(typ PolicyType, domain string, policyStrings, mxHosts []string) Policy {
	p := Policy{Type: typ, Domain: normalizeDomain(domain), Strings: policyStrings, MXHosts: mxHosts}
	for _, h := range mxHosts {
		if normalizeDomain(h) != h {
			// Copy rather than rewrite the caller's slice.
			p.MXHosts = make([]string, len(mxHosts))
			for i, h := range mxHosts {
				p.MXHosts[i] = normalizeDomain(h)
			}
			break
		}
	}
	p.id, p.hasID = p.computeID(), true
	return p
}

// ID returns the policy's content ID. It is computed on each call for a
// Policy not built by NewPolicy.
func (p Policy) ID() PolicyID {
	if p.hasID {
		return p.id
	}
	return p.computeID()
}

// computeID hashes an unambiguous encoding of the policy: every string
// length-prefixed, every list count-prefixed.
func (p *Policy) computeID() PolicyID {
	var buf [512]byte
	b := appendString(buf[:0], string(p.Type))
	b = appendString(b, normalizeDomain(p.Domain))
	b = binary.AppendUvarint(b, uint64(len(p.Strings)))
	for _, s := range p.Strings {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(p.MXHosts)))
	for _, h := range p.MXHosts {
		b = appendString(b, normalizeDomain(h))
	}
	sum := sha256.Sum256(b)
	var id PolicyID
	copy(id[:], sum[:])
	return id
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// clone returns a deep copy that shares nothing with the caller's slices.
func (p *Policy) clone() Policy {
	c := *p
	c.Domain = normalizeDomain(p.Domain)
	c.Strings = append([]string(nil), p.Strings...)
	c.MXHosts = make([]string, len(p.MXHosts))
	for i, h := range p.MXHosts {
		c.MXHosts[i] = normalizeDomain(h)
	}
	if len(c.MXHosts) == 0 {
		c.MXHosts = nil
	}
	if len(c.Strings) == 0 {
		c.Strings = nil
	}
	c.id, c.hasID = p.ID(), true
	return c
}

// Failure describes why a session failed: the fields of a "failure-details"
// entry of RFC 8460 §4.4 other than the count. Failed sessions are counted
// per distinct Failure, so every field is part of the grouping.
type Failure struct {
	// ResultType is the RFC 8460 §4.3 result type. Required.
	ResultType ResultType
	// SendingMTAIP is the local address the session left from.
	SendingMTAIP netip.Addr
	// ReceivingMXHostname is the MX host name the session was for.
	ReceivingMXHostname string
	// ReceivingMXHelo is the host name the server announced in its banner
	// or EHLO reply (optional in RFC 8460 §4.4).
	ReceivingMXHelo string
	// ReceivingIP is the address the session connected to.
	ReceivingIP netip.Addr
	// AdditionalInformation is a URI pointing to more about the failure
	// (optional).
	AdditionalInformation string
	// FailureReasonCode is a short TLS error code or message (RFC 8460
	// §4.3.3 asks for one with validation-failure).
	FailureReasonCode string
}

// Limits on the text fields of a Failure: longer values are cut, so that
// a server's banner cannot make a report (or the store) grow.
const (
	maxHostLen   = 255
	maxReasonLen = 256
	maxURILen    = 1024
)

// normalized returns f with its names lower-cased and its free text cut to
// the limits above.
func (f *Failure) normalized() Failure {
	n := *f
	n.ReceivingMXHostname = truncate(normalizeDomain(f.ReceivingMXHostname), maxHostLen)
	n.ReceivingMXHelo = truncate(f.ReceivingMXHelo, maxHostLen)
	n.AdditionalInformation = truncate(f.AdditionalInformation, maxURILen)
	n.FailureReasonCode = truncate(f.FailureReasonCode, maxReasonLen)
	n.SendingMTAIP = f.SendingMTAIP.Unmap()
	n.ReceivingIP = f.ReceivingIP.Unmap()
	return n
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// normalizeDomain is the project's one folding of domain names for keys
// (see internal/dnsname): ASCII lower case, one trailing dot dropped.
func normalizeDomain(s string) string { return dnsname.Fold(s) }

// Day is a UTC calendar day, the period of an RFC 8460 §4.1 report,
// counted in days since 1970-01-01.
type Day int32

// DayOf returns the UTC day t falls in.
func DayOf(t time.Time) Day {
	s := t.Unix()
	d := s / 86400
	if s%86400 < 0 {
		d--
	}
	return Day(d)
}

// Start returns the first instant of the day, 00:00:00 UTC.
func (d Day) Start() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// End returns the last second of the day, 23:59:59 UTC: the end of the
// date-range in the reports this package writes (RFC 8460 §4.4, as in the
// RFC's own example and in what Google sends).
func (d Day) End() time.Time { return time.Unix(int64(d)*86400+86399, 0).UTC() }

// String returns the day as YYYY-MM-DD.
func (d Day) String() string { return d.Start().Format(time.DateOnly) }
