package tlsrpt

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"

	"github.com/emersion/go-msgauth/dkim"
)

// DKIMKey is a key report mail is signed with.
//
// Publish the key's DNS record without an s= tag ("v=DKIM1; k=ed25519;
// p=..."). RFC 8460 §3 asks for the service type "tlsrpt", and
// "s=email:tlsrpt" says so in RFC 6376 §3.6.1's colon-separated list, but
// real verifiers disagree on that list: go-msgauth accepts only keys whose
// types include "email", and Debian's dkimpy 1.1.4 (dkimpy-milter) reads
// "email:tlsrpt" as one unknown type and fails every signature. A record
// without s= means every service type (RFC 6376 §3.6.1's default "*"),
// which both and every other verifier tried accept.
type DKIMKey struct {
	// Domain is the signing domain (d=): the reporting domain.
	Domain string
	// Selector is the selector (s=) the key is published under.
	Selector string
	// Signer is the private key: an *rsa.PrivateKey of at least 1024 bits
	// (RFC 8301 §3.2; 2048 recommended) or an ed25519.PrivateKey
	// (RFC 8463). Keys held elsewhere (an HSM) work through crypto.Signer.
	Signer crypto.Signer
}

// headersToSign are the header fields DKIM covers: RFC 6376 §5.4.1's
// recommendations and the TLS-RPT fields (RFC 8460 §5.3: they SHOULD be
// signed).
var headersToSign = []string{
	"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
	"TLS-Report-Domain", "TLS-Report-Submitter", "TLS-Required", "Auto-Submitted",
}

// DKIMSigner signs report mail with go-msgauth, once per key: with an
// RSA and an Ed25519 key, the mail carries both signatures, for verifiers
// that know only one. It is safe for concurrent use.
type DKIMSigner struct {
	keys []DKIMKey
}

var _ MailSigner = (*DKIMSigner)(nil)

// NewDKIMSigner returns a signer for the keys, which it checks.
func NewDKIMSigner(keys ...DKIMKey) (*DKIMSigner, error) {
	if len(keys) == 0 {
		return nil, errors.New("tlsrpt: DKIM: expected at least one key, found none")
	}
	for i, k := range keys {
		if k.Domain == "" || k.Selector == "" || k.Signer == nil {
			return nil, fmt.Errorf("tlsrpt: DKIM key %d: expected a domain, a selector and a signer", i)
		}
		switch pub := k.Signer.Public().(type) {
		case *rsa.PublicKey:
			// RFC 8301 §3.2: verifiers MUST NOT accept RSA keys under 1024 bits.
			if pub.Size()*8 < 1024 {
				return nil, fmt.Errorf("tlsrpt: DKIM key %d: expected an RSA key of at least 1024 bits, found %d", i, pub.Size()*8)
			}
		case ed25519.PublicKey:
		default:
			return nil, fmt.Errorf("tlsrpt: DKIM key %d: expected an RSA or Ed25519 key, found %T", i, pub)
		}
	}
	return &DKIMSigner{keys: append([]DKIMKey(nil), keys...)}, nil
}

// Sign implements MailSigner. The signatures use relaxed/relaxed
// canonicalization and never the "l=" tag (RFC 8460 §3 forbids limiting
// the signed body length).
func (s *DKIMSigner) Sign(msg []byte) ([]byte, error) {
	var sigs bytes.Buffer
	for _, k := range s.keys {
		sig, err := signature(k, msg)
		if err != nil {
			return nil, fmt.Errorf("tlsrpt: DKIM signing as %s._domainkey.%s: %w", k.Selector, k.Domain, err)
		}
		sigs.WriteString(sig)
	}
	return append(sigs.Bytes(), msg...), nil
}

// signature returns the DKIM-Signature header field of msg by k.
func signature(k DKIMKey, msg []byte) (string, error) {
	signer, err := dkim.NewSigner(&dkim.SignOptions{
		Domain:                 k.Domain,
		Selector:               k.Selector,
		Signer:                 k.Signer,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             headersToSign,
	})
	if err != nil {
		return "", err
	}
	if _, err := signer.Write(msg); err != nil {
		signer.Close()
		return "", err
	}
	if err := signer.Close(); err != nil {
		return "", err
	}
	return signer.Signature(), nil
}
