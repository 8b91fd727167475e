package dane

import "fmt"

// Outcome is what the TLSA look-up for one MX host decided (RFC 7672 §2.2).
// A look-up that failed has no Outcome: it returns an error, and the host
// must not be used now.
type Outcome int

const (
	// NotApplicable: DANE does not apply to the host — there are no TLSA
	// records (securely denied), or they, the host's address records or
	// (by configuration) the MX RRset that named it are not DNSSEC-secure.
	// Other policies (MTA-STS, local policy, opportunistic TLS) decide.
	NotApplicable Outcome = iota
	// AuthenticationRequired: secure TLSA records, at least one of them
	// usable. TLS is mandatory and the server must be authenticated by the
	// records (Requirement.Verify), not by the WebPKI.
	AuthenticationRequired
	// TLSRequired: secure TLSA records, none of them usable. TLS is still
	// mandatory, but the server cannot be authenticated (RFC 7672 §2.2).
	TLSRequired
)

func (o Outcome) String() string {
	switch o {
	case NotApplicable:
		return "not applicable"
	case AuthenticationRequired:
		return "authentication required"
	case TLSRequired:
		return "TLS required"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Requirement is what DANE asks of the connection to one MX host. It is
// immutable once made and safe for concurrent use.
type Requirement struct {
	Outcome Outcome
	// Host is the MX host name as the MX record gave it; BaseDomain is the
	// TLSA base domain the records were found at: Host, or the name Host's
	// secure CNAME chain ends at (RFC 7672 §2.2.3). Both are lower-case,
	// without the final dot, as sent in SNI. BaseDomain is empty when
	// Outcome is NotApplicable.
	Host, BaseDomain string
	// Records is the secure TLSA RRset at BaseDomain as published, usable
	// records and others (RFC 8460 reports list them all).
	Records []TLSARecord
	// Port is the TCP port the records are for: 25 for Lookup, the one
	// given to LookupPort otherwise.
	Port uint16
	// TLSANames are the TLSA owner names asked, in order
	// ("_25._tcp.mx.example.com"); empty when DANE could not apply without
	// asking one: an insecure MX RRset under InsecureMXIgnore, a host
	// without address records, or address records that are not
	// DNSSEC-secure (RFC 7672 §2.2.3).
	TLSANames []string
	// MXSecure records whether the MX RRset that named Host was secure; a
	// requirement found through an insecure one exists only when the
	// Discovery's InsecureMX allows it (RFC 7672 §2.2.1).
	MXSecure bool
	// TTL is the smallest TTL of the DNS answers the requirement rests on,
	// in seconds; 0 when no look-up was made.
	TTL uint32
}

// UsableRecords returns the records Verify uses: see the function of the
// same name.
func (req *Requirement) UsableRecords() []TLSARecord { return UsableRecords(req.Records) }

// PolicyStrings returns the records in presentation format, one string
// each: the policy-string of an RFC 8460 §4.2 "tlsa" policy.
func (req *Requirement) PolicyStrings() []string {
	out := make([]string, len(req.Records))
	for i, r := range req.Records {
		out[i] = r.String()
	}
	return out
}
