package sts

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// VerifyConnection applies the certificate rule of RFC 8461 §4.2 to a TLS
// session with the MX host mxHost: TLS 1.2 or newer, a certificate chain to
// one of c.RootCAs valid at c.Now(), and a subjectAltName DNS-ID matching
// mxHost (a wildcard "*.example.com" certificate covers "mx.example.com").
// It does not check the host against the policy's mx patterns: that is
// Policy.Match.
//
// The error is an *Error of kind ErrHostMismatch, ErrCertificateExpired,
// ErrCertificateNotTrusted or ErrValidationFailure, whose ResultType is the
// RFC 8460 §4.3 result type to report.
func (c *Client) VerifyConnection(cs tls.ConnectionState, mxHost string) error {
	host := strings.TrimSuffix(mxHost, ".")
	fail := func(kind error, err error) error {
		return &Error{Host: host, Kind: kind, Err: err, temporary: true}
	}
	// cs.HandshakeComplete is not checked: tls.Config.VerifyConnection
	// runs before the handshake completes.
	switch {
	case cs.Version < tls.VersionTLS12:
		// RFC 8461 §4.2 (via RFC 7525): TLS 1.2 or newer.
		return fail(ErrValidationFailure, fmt.Errorf("negotiated %s, want TLS 1.2 or newer", tls.VersionName(cs.Version)))
	case len(cs.PeerCertificates) == 0:
		return fail(ErrValidationFailure, errors.New("the server sent no certificate"))
	}
	leaf := cs.PeerCertificates[0]
	now := c.now()
	opts := x509.VerifyOptions{
		Roots:         c.RootCAs,
		Intermediates: x509.NewCertPool(),
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, cert := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(cert)
	}
	if _, err := leaf.Verify(opts); err != nil {
		return fail(classifyChainError(err, cs.PeerCertificates, now), err)
	}
	// RFC 8461 §4.2: a DNS-ID (RFC 6125) matching the MX host; Go's
	// VerifyHostname uses subjectAltName only and lets a wildcard stand
	// for exactly the leftmost label.
	if err := leaf.VerifyHostname(host); err != nil {
		return fail(ErrHostMismatch, err)
	}
	return nil
}

// VerifyConnectionFunc returns VerifyConnection for mxHost in the shape of
// tls.Config.VerifyConnection. Set it together with InsecureSkipVerify
// (crypto/tls's own check uses Config.ServerName and cannot tell expired
// from untrusted), so that the handshake fails with this package's typed
// error in enforce mode. In testing mode, complete the handshake without it
// and call VerifyConnection afterwards to learn what to report.
func (c *Client) VerifyConnectionFunc(mxHost string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error { return c.VerifyConnection(cs, mxHost) }
}

// classifyChainError maps a chain verification error to the kind RFC 8460
// §4.3 distinguishes.
func classifyChainError(err error, chain []*x509.Certificate, now time.Time) error {
	var invalid x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	var system x509.SystemRootsError
	switch {
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		// x509 says Expired for "not yet valid" too; only a certificate
		// past its NotAfter is "certificate-expired".
		for _, cert := range chain {
			if now.After(cert.NotAfter) {
				return ErrCertificateExpired
			}
		}
		return ErrValidationFailure
	case errors.As(err, &unknown), errors.As(err, &system):
		return ErrCertificateNotTrusted
	}
	return ErrValidationFailure
}
