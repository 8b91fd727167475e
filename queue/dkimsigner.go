package queue

import (
	"bytes"
	"errors"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/sealpost/sealpost/internal/dnsname"
)

// DKIMSigner is a Signer on go-msgauth's dkim package: one key (RSA or
// Ed25519, as dkim.SignOptions.Signer) of one domain and selector.
type DKIMSigner struct {
	opts dkim.SignOptions
}

var _ Signer = (*DKIMSigner)(nil)

// NewDKIMSigner returns a signer with opts, which must name a Domain, a
// Selector and a Signer; the other fields keep go-msgauth's defaults
// (relaxed/relaxed canonicalization, SHA-256, its recommended header
// fields).
func NewDKIMSigner(opts *dkim.SignOptions) (*DKIMSigner, error) {
	switch {
	case opts == nil:
		return nil, errors.New("queue: DKIM options are nil")
	case opts.Domain == "" || opts.Selector == "":
		return nil, errors.New("queue: DKIM options need a Domain and a Selector")
	case opts.Signer == nil:
		return nil, errors.New("queue: DKIM options need a key (Signer)")
	}
	s := &DKIMSigner{opts: *opts}
	s.opts.Domain = dnsname.Fold(opts.Domain)
	// Check the key now rather than at the first message.
	if _, err := dkim.NewSigner(&s.opts); err != nil {
		return nil, err
	}
	return s, nil
}

// Domain implements Signer.
func (s *DKIMSigner) Domain() string { return s.opts.Domain }

// Sign implements Signer.
func (s *DKIMSigner) Sign(msg []byte) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(len(msg) + 1024)
	if err := dkim.Sign(&b, bytes.NewReader(msg), &s.opts); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
