package dane

import (
	"errors"
	"fmt"
	"strings"
)

// RFC 8460 §4.3 result types for the failures this package detects. They
// are plain strings so that dane need not import tlsrpt; tlsrpt's own
// result type values carry the same text.
const (
	ResultTLSAInvalid             = "tlsa-invalid"
	ResultDNSSECInvalid           = "dnssec-invalid"
	ResultValidationFailure       = "validation-failure"
	ResultCertificateExpired      = "certificate-expired"
	ResultCertificateHostMismatch = "certificate-host-mismatch"
)

// Why a connection to a DANE host was refused: the Kind of a VerifyError,
// for errors.Is.
var (
	// ErrNoUsableRecord: the host's secure TLSA RRset holds no record usable
	// for SMTP (RFC 7672 §3.1), so the server cannot be authenticated.
	ErrNoUsableRecord = errors.New("no usable TLSA record")
	// ErrNoMatchingRecord: no usable record matches the certificate chain
	// the server presented.
	ErrNoMatchingRecord = errors.New("no TLSA record matches the server's certificate chain")
	// ErrChainInvalid: a DANE-TA record matched a trust anchor, but the
	// chain from the leaf up to it does not verify, or the server sent too
	// many certificates to consider.
	ErrChainInvalid = errors.New("certificate chain does not verify up to the DANE-TA trust anchor")
	// ErrCertificateExpired: under a DANE-TA record, a certificate of the
	// chain up to the trust anchor has expired.
	ErrCertificateExpired = errors.New("certificate expired")
	// ErrCertificateHostMismatch: under a DANE-TA record, the leaf
	// certificate names neither the TLSA base domain nor the MX host.
	ErrCertificateHostMismatch = errors.New("certificate does not name the MX host")
	// ErrNoPeerCertificate: the server presented no certificate.
	ErrNoPeerCertificate = errors.New("server presented no certificate")
)

// VerifyError says why a TLS connection did not satisfy the TLSA records of
// its MX host. It is temporary: RFC 7672 §2.2 has the client treat the host
// as unreachable, try the next MX host, and keep the message queued if none
// is left; the records or the certificate may be fixed later.
type VerifyError struct {
	// Kind is one of the Err... values of this package (ErrNoMatchingRecord,
	// ErrCertificateExpired, ...).
	Kind error
	// Host is the MX host name, BaseDomain the TLSA base domain.
	Host, BaseDomain string
	// Record is, for a failure under a DANE-TA record, the record whose trust
	// anchor matched; nil otherwise.
	Record *TLSARecord
	// Detail says what was found, in words (e.g. which names the leaf has).
	Detail string
	// Err is the underlying cause, such as an x509 verification error; may
	// be nil.
	Err error
}

func (e *VerifyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dane: %s", e.Host)
	if e.BaseDomain != "" && e.BaseDomain != e.Host {
		fmt.Fprintf(&b, " (TLSA base domain %s)", e.BaseDomain)
	}
	fmt.Fprintf(&b, ": %v", e.Kind)
	if e.Record != nil {
		fmt.Fprintf(&b, " [TLSA %.40s]", e.Record.String())
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap gives errors.Is and errors.As both the Kind and the cause.
func (e *VerifyError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Temporary reports true: see the type's documentation.
func (e *VerifyError) Temporary() bool { return true }

// ResultType returns the RFC 8460 §4.3 result type of the failure.
func (e *VerifyError) ResultType() string {
	switch e.Kind {
	case ErrNoUsableRecord:
		return ResultTLSAInvalid
	case ErrCertificateExpired:
		return ResultCertificateExpired
	case ErrCertificateHostMismatch:
		return ResultCertificateHostMismatch
	}
	return ResultValidationFailure
}
