package delivery

import (
	"crypto/tls"
	"fmt"
	"net/netip"

	"github.com/emersion/go-smtp"
)

// Status is the outcome of a delivery attempt for one recipient.
type Status int

const (
	// Delivered: a server accepted responsibility for the message (a 2xx
	// reply to the end of DATA, RFC 5321 §4.1.1.4).
	Delivered Status = iota + 1
	// TemporaryFailure: not delivered now; the same attempt may succeed
	// later (a 4xx reply, no host reachable, a security requirement no
	// host met, a DNS failure). The queue retries.
	TemporaryFailure
	// PermanentFailure: the message will never be delivered as it is (a
	// 5xx reply, null MX, REQUIRETLS impossible). The queue bounces.
	PermanentFailure
)

func (s Status) String() string {
	switch s {
	case Delivered:
		return "delivered"
	case TemporaryFailure:
		return "temporary failure"
	case PermanentFailure:
		return "permanent failure"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Result is the outcome of a delivery attempt for one recipient.
type Result struct {
	// Recipient is the address as given in the Message.
	Recipient string
	// Status says whether the message was delivered, and if not whether
	// to retry.
	Status Status
	// Code and Enhanced are the SMTP reply code and RFC 3463 enhanced
	// status code: the server's, when Remote is set, or ours for a
	// decision of our own, chosen as large providers do (4.4.8/5.4.8 MX
	// not allowed by policy, 4.7.5/5.7.5 certificate failures, 5.7.30
	// REQUIRETLS impossible, 5.1.10 null MX, 4.4.3 DNS failure).
	Code     int
	Enhanced smtp.EnhancedCode
	// Text is the reply text. For a delivered message it is the server's
	// final reply to DATA, which usually carries its queue id.
	Text string
	// Remote says that Code, Enhanced and Text are a remote server's reply
	// (an RFC 3464 Diagnostic-Code from Session.MXHost), not our own.
	Remote bool
	// Err is nil for a delivered message; otherwise an *Error with the
	// same code and its cause, for errors.Is and errors.As (a
	// *dane.VerifyError, a *sts.Error, a network error ...).
	Err error
	// Session describes the connection on which the outcome was decided,
	// or, for a failure decided without one (every host failed), the last
	// connection tried. Its MXHost is empty when no connection was made.
	Session Session
}

// Session describes one SMTP session with an MX host.
type Session struct {
	// Domain is the policy domain: the recipient domain, or the next hop's
	// domain for a smart host.
	Domain string
	// MXHost is the host name (as the MX record named it) and IP the
	// address connected to; Port is the TCP port.
	MXHost string
	IP     netip.Addr
	Port   uint16
	// HELO is the name the server gave in its EHLO (or HELO) reply, the
	// RFC 8460 receiving-mx-helo; empty when none was learned.
	HELO string
	// LocalIP is the address the connection left from (RFC 8460
	// sending-mta-ip).
	LocalIP netip.Addr
	// TLSVersion and CipherSuite describe the TLS connection (tls.VersionTLS13,
	// tls.TLS_AES_128_GCM_SHA256, ...); both are 0 in plaintext.
	TLSVersion  uint16
	CipherSuite uint16
	// Auth says how the server was authenticated.
	Auth Authentication
	// CheckErr is why the certificate check of Requirement.Check failed:
	// a *dane.VerifyError or an *sts.Error, whose ResultType method gives
	// the RFC 8460 result type. Over a session whose requirement did not
	// enforce the check (an MTA-STS policy in testing mode, a message with
	// "TLS-Required: No", an Override) the message went anyway, with Auth
	// UnauthenticatedTLS; where it was enforced the session was not used
	// and the Result's Err carries the failure too. Nil when the check
	// passed or none was made. A host outside a policy's mx patterns is not
	// a check failure: Requirement.STSMatch says so.
	CheckErr error
	// Requirement is the security requirement the session was held to.
	Requirement Requirement
	// Reused says the session carried an earlier message too (connection
	// reuse): its TLS handshake and verification happened then.
	Reused bool
	// DSN says the server advertised DSN (RFC 3461), so the message's DSN
	// parameters (NOTIFY, ORCPT, RET, ENVID) were passed on with it; the
	// next hop took the DSN request on. When false they were dropped, and
	// a sender that honours NOTIFY=SUCCESS sends a "relayed" DSN itself
	// for a delivered recipient (RFC 3461 §5.2.2).
	DSN bool
}

// TLSVersionName returns "TLS 1.3" and the like, or "plaintext".
func (s Session) TLSVersionName() string {
	if s.TLSVersion == 0 {
		return "plaintext"
	}
	return tls.VersionName(s.TLSVersion)
}

// Authentication says how the peer of a session was authenticated.
type Authentication int

const (
	// NoSession: no session was established with the host (the outcome
	// was decided before or without one).
	NoSession Authentication = iota
	// Plaintext: no TLS; nothing is protected.
	Plaintext
	// UnauthenticatedTLS: encrypted, but the certificate was not checked
	// or did not verify (opportunistic TLS, secure TLSA records of which
	// none is usable, an MTA-STS policy in testing mode that failed).
	UnauthenticatedTLS
	// WebPKI: the certificate chains to a trusted root and names the MX
	// host, as MTA-STS (RFC 8461 §4.2) or a local rule demanded.
	WebPKI
	// DANETA: a DANE-TA(2) TLSA record matched a trust anchor of the
	// chain (RFC 7672 §3.1.2).
	DANETA
	// DANEEE: a DANE-EE(3) TLSA record matched the server's certificate or
	// key (RFC 7672 §3.1.1).
	DANEEE
)

func (a Authentication) String() string {
	switch a {
	case NoSession:
		return "no session"
	case Plaintext:
		return "plaintext"
	case UnauthenticatedTLS:
		return "unauthenticated TLS"
	case WebPKI:
		return "WebPKI"
	case DANETA:
		return "DANE-TA"
	case DANEEE:
		return "DANE-EE"
	}
	return fmt.Sprintf("Authentication(%d)", int(a))
}

// Authenticated reports whether the peer's identity was verified.
func (a Authentication) Authenticated() bool { return a >= WebPKI }
