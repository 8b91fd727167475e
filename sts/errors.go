package sts

import (
	"errors"
	"fmt"
	"strings"
)

// The kinds of failure, for errors.Is. Every error this package returns from
// a look-up, a fetch or a certificate check is an *Error whose Kind is one
// of these; a parse error (*RecordError, *PolicyError) matches its kind too.
var (
	// ErrInvalidDomain: the domain is not a syntactically valid ASCII
	// domain name (U-labels must be converted to A-labels first).
	ErrInvalidDomain = errors.New("invalid domain name")
	// ErrNoRecord: no _mta-sts TXT record starts with v=STSv1. The domain
	// has no MTA-STS policy; this is not a failure to report.
	ErrNoRecord = errors.New("no MTA-STS TXT record")
	// ErrSeveralRecords: more than one _mta-sts TXT record starts with
	// v=STSv1 (RFC 8461 §3.1: the domain then has no available policy).
	ErrSeveralRecords = errors.New("several MTA-STS TXT records")
	// ErrInvalidRecord: the one v=STSv1 TXT record is syntactically
	// invalid (RFC 8461 §3.1: the domain then has no available policy).
	ErrInvalidRecord = errors.New("invalid MTA-STS TXT record")
	// ErrTemporaryDNS: the TXT look-up failed for a reason other than
	// "no such record" (timeout, SERVFAIL, DNSSEC bogus, ...).
	ErrTemporaryDNS = errors.New("temporary DNS failure")
	// ErrFetch: the HTTPS policy fetch failed (connection, timeout, status
	// other than 200, redirect, media type other than text/plain).
	ErrFetch = errors.New("policy fetch failed")
	// ErrWebPKI: the policy host's certificate failed WebPKI validation.
	// An error of this kind also matches ErrFetch.
	ErrWebPKI = errors.New("policy host certificate invalid")
	// ErrInvalidPolicy: the fetched policy is not a valid RFC 8461 §3.2
	// policy (or is larger than MaxPolicySize).
	ErrInvalidPolicy = errors.New("invalid MTA-STS policy")

	// ErrHostMismatch: the MX host's certificate is not valid for its
	// name (RFC 8461 §4.2).
	ErrHostMismatch = errors.New("certificate does not match the MX host")
	// ErrCertificateExpired: a certificate of the MX host's chain has
	// expired (RFC 8461 §4.2).
	ErrCertificateExpired = errors.New("certificate expired")
	// ErrCertificateNotTrusted: the MX host's certificate does not chain
	// to a trusted root (RFC 8461 §4.2).
	ErrCertificateNotTrusted = errors.New("certificate not trusted")
	// ErrValidationFailure: any other failure of the RFC 8461 §4.2 rules
	// (TLS older than 1.2, no certificate, not yet valid, wrong key usage).
	ErrValidationFailure = errors.New("MTA-STS validation failure")
)

// RFC 8460 §4.3 result types, as ResultType returns them.
const (
	resultFetchError       = "sts-policy-fetch-error"
	resultPolicyInvalid    = "sts-policy-invalid"
	resultWebPKIInvalid    = "sts-webpki-invalid"
	resultHostMismatch     = "certificate-host-mismatch"
	resultExpired          = "certificate-expired"
	resultNotTrusted       = "certificate-not-trusted"
	resultValidationFailed = "validation-failure"
)

// Error is a failure to obtain or apply a domain's MTA-STS policy.
type Error struct {
	// Domain is the policy domain (lower-case, no trailing dot).
	Domain string
	// Host is the MX host whose TLS session failed the certificate rule;
	// empty for look-up and fetch failures.
	Host string
	// Kind is one of the Err* variables of this package.
	Kind error
	// Err is the cause: a *RecordError, a *PolicyError, a DNS or HTTP
	// error, an x509 error. It may be nil.
	Err error

	temporary bool
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("sts: ")
	if e.Domain != "" {
		b.WriteString(e.Domain)
		b.WriteString(": ")
	}
	if e.Host != "" {
		b.WriteString("MX host ")
		b.WriteString(e.Host)
		b.WriteString(": ")
	}
	b.WriteString(e.Kind.Error())
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the error's kind. A WebPKI failure is also a
// fetch failure.
func (e *Error) Is(target error) bool {
	return target == e.Kind || (e.Kind == ErrWebPKI && target == ErrFetch)
}

// Temporary reports whether trying again later may succeed: DNS failures,
// network failures and server errors of a fetch, and certificate failures of
// an MX host (RFC 8461 §5: a delivery failing the policy is retried, not
// bounced). Missing or invalid records and policies are permanent until the
// domain changes them.
func (e *Error) Temporary() bool { return e.temporary }

// ResultType is the RFC 8460 §4.3 result type under which a TLS-RPT report
// records this failure:
//
//	ErrTemporaryDNS, ErrFetch                      sts-policy-fetch-error
//	ErrWebPKI                                      sts-webpki-invalid
//	ErrInvalidPolicy, ErrInvalidRecord,
//	ErrSeveralRecords                              sts-policy-invalid
//	ErrHostMismatch                                certificate-host-mismatch
//	ErrCertificateExpired                          certificate-expired
//	ErrCertificateNotTrusted                       certificate-not-trusted
//	ErrValidationFailure                           validation-failure
//	ErrNoRecord, ErrInvalidDomain                  "" (nothing to report)
//
// A domain without a record has no policy, so there is nothing to report
// for it under MTA-STS.
func (e *Error) ResultType() string {
	switch e.Kind {
	case ErrTemporaryDNS, ErrFetch:
		return resultFetchError
	case ErrWebPKI:
		return resultWebPKIInvalid
	case ErrInvalidPolicy, ErrInvalidRecord, ErrSeveralRecords:
		return resultPolicyInvalid
	case ErrHostMismatch:
		return resultHostMismatch
	case ErrCertificateExpired:
		return resultExpired
	case ErrCertificateNotTrusted:
		return resultNotTrusted
	case ErrValidationFailure:
		return resultValidationFailed
	}
	return ""
}

// RecordError says why a _mta-sts TXT record is invalid (RFC 8461 §3.1).
// It matches ErrInvalidRecord.
type RecordError struct {
	Record string // the record, truncated to 100 bytes
	Reason string
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("TXT record %s: %s", quote(e.Record), e.Reason)
}

// Is reports whether target is ErrInvalidRecord.
func (e *RecordError) Is(target error) bool { return target == ErrInvalidRecord }

// ResultType is "sts-policy-invalid".
func (e *RecordError) ResultType() string { return resultPolicyInvalid }

// PolicyError says why a policy is invalid (RFC 8461 §3.2). It matches
// ErrInvalidPolicy.
type PolicyError struct {
	// Line is the 1-based line at fault, or 0 when the policy as a whole
	// is (a required field is missing, it is too large).
	Line   int
	Reason string
}

func (e *PolicyError) Error() string {
	if e.Line == 0 {
		return "policy: " + e.Reason
	}
	return fmt.Sprintf("policy line %d: %s", e.Line, e.Reason)
}

// Is reports whether target is ErrInvalidPolicy.
func (e *PolicyError) Is(target error) bool { return target == ErrInvalidPolicy }

// ResultType is "sts-policy-invalid".
func (e *PolicyError) ResultType() string { return resultPolicyInvalid }

// quote quotes s for an error message, truncated so that hostile input
// cannot make errors and logs arbitrarily large.
func quote(s string) string {
	const max = 100
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
