package delivery

import (
	"crypto/tls"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/tlsrpt"
)

// verification checks one TLS handshake against a requirement's Check and
// remembers the outcome, enforced or not.
type verification struct {
	c    *Client
	req  *Requirement
	host string

	done  bool        // the check ran
	match *dane.Match // the TLSA record that authenticated the server
	err   error       // why the check failed, enforced or not
}

// tlsConfig returns the configuration of the STARTTLS handshake with host.
//
// Certificates are never checked by crypto/tls itself: the check is
// VerifyConnection's, which applies the requirement's own rule (TLSA
// records, RFC 7672 §3, or RFC 8461 §4.2's WebPKI rule) and fails the
// handshake only when the requirement enforces it. An opportunistic
// session accepts any certificate and any TLS version down to 1.0, since
// any encryption beats the plaintext it would otherwise fall back to (RFC
// 7525 §5.2); an authenticated one wants TLS 1.2 or newer (RFC 8461 §4.2).
func (c *Client) tlsConfig(req *Requirement, host string, v *verification) *tls.Config {
	cfg := &tls.Config{
		ServerName:         host,
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionTLS10,
		VerifyConnection:   v.verify,
	}
	if req.Level == Authenticated {
		cfg.MinVersion = tls.VersionTLS12
	}
	if req.Check == CheckDANE && req.DANE != nil && req.DANE.BaseDomain != "" {
		// RFC 7672 §8.1: SNI carries the TLSA base domain.
		cfg.ServerName = req.DANE.BaseDomain
	}
	return cfg
}

// verify is the tls.Config.VerifyConnection hook.
func (v *verification) verify(cs tls.ConnectionState) error {
	v.done = true
	switch v.req.Check {
	case CheckDANE:
		v.match, v.err = v.req.DANE.Verify(cs.PeerCertificates, v.c.now())
	case CheckWebPKI:
		v.err = v.c.sts.VerifyConnection(cs, v.host)
	}
	if v.err != nil && v.req.Level == Authenticated {
		return v.err
	}
	return nil
}

// auth says how the server was authenticated, after a handshake that
// completed.
func (v *verification) auth() Authentication {
	switch {
	case !v.done || v.err != nil:
		return UnauthenticatedTLS
	case v.match != nil && v.match.Record.Usage == dane.DANEEE:
		return DANEEE
	case v.match != nil:
		return DANETA
	case v.req.Check == CheckWebPKI:
		return WebPKI
	}
	return UnauthenticatedTLS
}

// reportFailure is what TLS-RPT records about the session: nil for a
// session that met its policy (RFC 8460 §4.2.1); the check's failure,
// enforced or not; or, for a session that went ahead without the MTA-STS
// policy that could not be fetched, that failure (§4.3.2.2).
func (v *verification) reportFailure() *tlsrpt.Failure {
	switch {
	case v.err != nil:
		return &tlsrpt.Failure{ResultType: resultTypeOf(v.err, tlsrpt.ResultValidationFailure)}
	case v.req.STS != nil && !v.req.STSMatch:
		return &tlsrpt.Failure{ResultType: tlsrpt.ResultValidationFailure, FailureReasonCode: reasonMXNotInPolicy}
	case v.req.stsErr != nil:
		return &tlsrpt.Failure{ResultType: resultTypeOf(v.req.stsErr, tlsrpt.ResultSTSPolicyFetchError)}
	}
	return nil
}
