package delivery

import (
	"fmt"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/sts"
	"github.com/sealpost/sealpost/tlsrpt"
)

// Level is what a session to an MX host must achieve before a message is
// sent over it.
type Level int

const (
	// Opportunistic: STARTTLS when the server offers it, whatever its
	// certificate; plaintext when it does not, or when the handshake fails
	// (then the host is tried again without STARTTLS, as established MTAs
	// do). Checks of a policy that is not enforced are still made and
	// reported.
	Opportunistic Level = iota
	// Encrypted: TLS is mandatory; the certificate is not checked.
	Encrypted
	// Authenticated: TLS is mandatory and the server must be authenticated
	// by the requirement's Check: its TLSA records or the WebPKI.
	Authenticated
)

func (l Level) String() string {
	switch l {
	case Opportunistic:
		return "opportunistic"
	case Encrypted:
		return "TLS required"
	case Authenticated:
		return "authenticated TLS required"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// Check is how a server's TLS session is verified, whether or not the
// result is enforced.
type Check int

const (
	// CheckNone: any certificate is accepted.
	CheckNone Check = iota
	// CheckDANE: the certificate chain must match the host's usable TLSA
	// records (RFC 7672 §3).
	CheckDANE
	// CheckWebPKI: TLS 1.2 or newer, and a certificate that chains to a
	// trusted root, is valid now and names the MX host (RFC 8461 §4.2).
	CheckWebPKI
)

func (c Check) String() string {
	switch c {
	case CheckNone:
		return "none"
	case CheckDANE:
		return "DANE"
	case CheckWebPKI:
		return "WebPKI"
	}
	return fmt.Sprintf("Check(%d)", int(c))
}

// Basis names the rule that decided a host's requirement, in the order of
// precedence the package doc gives ("One attempt", step 3).
type Basis int

const (
	// NoPolicy: nothing applies; opportunistic STARTTLS.
	NoPolicy Basis = iota
	// BasisDANE: DNSSEC-secure TLSA records, at least one usable (RFC 7672
	// §2.2).
	BasisDANE
	// BasisDANEUnusable: DNSSEC-secure TLSA records, none usable: TLS is
	// mandatory but cannot be authenticated (RFC 7672 §2.2).
	BasisDANEUnusable
	// BasisMTASTS: the domain's MTA-STS policy (RFC 8461 §4), in enforce
	// mode, or in testing mode (then not enforced).
	BasisMTASTS
	// BasisPreloaded: a policy the operator preloaded for a domain that
	// publishes none, or whose policy is not cached yet.
	BasisPreloaded
	// BasisLocal: an operator's rule (require TLS, require an
	// authenticated peer, DANE only).
	BasisLocal
	// BasisREQUIRETLS: the message asked for REQUIRETLS (RFC 8689).
	BasisREQUIRETLS
)

func (b Basis) String() string {
	switch b {
	case NoPolicy:
		return "no policy"
	case BasisDANE:
		return "DANE"
	case BasisDANEUnusable:
		return "DANE (no usable TLSA record)"
	case BasisMTASTS:
		return "MTA-STS"
	case BasisPreloaded:
		return "preloaded policy"
	case BasisLocal:
		return "local policy"
	case BasisREQUIRETLS:
		return "REQUIRETLS"
	}
	return fmt.Sprintf("Basis(%d)", int(b))
}

// Requirement is the security requirement of one MX host for one
// message, decided before connecting and never relaxed afterwards.
type Requirement struct {
	// Host is the MX host name.
	Host string
	// Level is what is enforced: a session that falls short is not used.
	Level Level
	// Check is how the server is verified. When Level is below
	// Authenticated (an MTA-STS policy in testing mode, a message with
	// "TLS-Required: No"), the check is still made and its failure
	// recorded for TLS-RPT, but the message is sent.
	Check Check
	// Basis is the rule that decided Level, or, when nothing is enforced,
	// the policy that was checked.
	Basis Basis
	// REQUIRETLS says the server must advertise REQUIRETLS and receives the
	// message with MAIL FROM ... REQUIRETLS (RFC 8689 §4.2.1).
	REQUIRETLS bool
	// DANE is the host's TLSA requirement; nil when no look-up was made.
	DANE *dane.Requirement
	// STS is the domain's MTA-STS policy (or the operator's preloaded one,
	// when Basis is BasisPreloaded) that applies to this host; nil when
	// none does. STSMatch says whether the host matches its mx patterns.
	STS      *sts.Policy
	STSMatch bool
	// Reason says, in words, why this requirement and not a weaker one.
	Reason string

	// report is the policy sessions are recorded under; record says
	// whether they are recorded at all (not for TLS-RPT report mail).
	report tlsrpt.Policy
	record bool
	// stsErr is the failure to obtain the domain's MTA-STS policy, which
	// sessions that go ahead without one report.
	stsErr error
}

func (r *Requirement) String() string {
	return fmt.Sprintf("%s: %s, check %s (%s)", r.Host, r.Level, r.Check, r.Basis)
}
