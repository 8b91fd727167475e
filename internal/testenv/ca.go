package testenv

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"sync/atomic"
	"time"
)

// CA is a test certificate authority: a self-signed root that issues leaf
// and intermediate certificates for any name. It is safe for concurrent use.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer

	serial atomic.Int64
}

// NewCA returns a fresh root CA with the given common name, valid from a day
// ago for ten years.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ca := &CA{Key: key}
	ca.serial.Store(1)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"sealpost test"}},
		NotBefore:             time.Now().Add(-24 * time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	if ca.Cert, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	return ca, nil
}

// Pool returns a certificate pool holding only this CA's root.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// LeafOptions says how a leaf certificate deviates from a valid one.
// The zero value issues a certificate valid now, for a year, signed by the
// CA itself.
type LeafOptions struct {
	// NotBefore and NotAfter override the validity period; zero means
	// "an hour ago" and "a year from now". Use Expired or NotYetValid for
	// the common cases.
	NotBefore, NotAfter time.Time
	// Expired issues a certificate that expired an hour ago.
	Expired bool
	// NotYetValid issues a certificate that becomes valid in a day.
	NotYetValid bool
	// SelfSigned issues a certificate signed by its own key, not by the CA.
	SelfSigned bool
	// Issuer signs the leaf instead of the CA (an intermediate made by
	// Intermediate). The chain then holds the leaf, the intermediate and
	// nothing else, as servers send it.
	Issuer *Intermediate
	// Key is the leaf's key; nil generates a fresh ECDSA P-256 key. Reusing a
	// key lets a test pin it in a TLSA record across certificates.
	Key crypto.Signer
	// RSA generates a 2048-bit RSA key instead of ECDSA (ignored when Key is set).
	RSA bool
}

// Intermediate is an intermediate CA issued by a root CA.
type Intermediate struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	ca   *CA
}

// Intermediate issues an intermediate CA certificate under the root.
func (ca *CA) Intermediate(name string) (*Intermediate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(ca.serial.Add(1)),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"sealpost test"}},
		NotBefore:             time.Now().Add(-24 * time.Hour),
		NotAfter:              time.Now().Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Intermediate{Cert: cert, Key: key, ca: ca}, nil
}

// Leaf issues a server certificate for the given DNS names (or IP addresses
// written as text). Wildcard names such as "*.example.com" are allowed. The
// returned tls.Certificate carries the chain a server sends: the leaf, and
// the intermediate when opts.Issuer is set; its Leaf field is filled in.
func (ca *CA) Leaf(opts LeafOptions, names ...string) (tls.Certificate, error) {
	key := opts.Key
	if key == nil {
		var err error
		if key, err = newKey(opts.RSA); err != nil {
			return tls.Certificate{}, err
		}
	}
	notBefore, notAfter := time.Now().Add(-time.Hour), time.Now().Add(365*24*time.Hour)
	switch {
	case opts.Expired:
		notBefore, notAfter = time.Now().Add(-365*24*time.Hour), time.Now().Add(-time.Hour)
	case opts.NotYetValid:
		notBefore, notAfter = time.Now().Add(24*time.Hour), time.Now().Add(365*24*time.Hour)
	}
	if !opts.NotBefore.IsZero() {
		notBefore = opts.NotBefore
	}
	if !opts.NotAfter.IsZero() {
		notAfter = opts.NotAfter
	}
	cn := "sealpost test leaf"
	if len(names) > 0 {
		cn = names[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	parent, signer := ca.Cert, ca.Key
	switch {
	case opts.SelfSigned:
		parent, signer = tmpl, key
	case opts.Issuer != nil:
		parent, signer = opts.Issuer.Cert, opts.Issuer.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("testenv: issue leaf for %v: %w", names, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	chain := [][]byte{der}
	if opts.Issuer != nil && !opts.SelfSigned {
		chain = append(chain, opts.Issuer.Cert.Raw)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}

// MustLeaf is Leaf for tests: it panics on error, which only a broken
// random source can cause.
func (ca *CA) MustLeaf(opts LeafOptions, names ...string) tls.Certificate {
	c, err := ca.Leaf(opts, names...)
	if err != nil {
		panic(err)
	}
	return c
}

// NewKey returns a fresh ECDSA P-256 key, or a 2048-bit RSA key when rsa is
// true. Tests use it to reuse one key across certificates.
func NewKey(useRSA bool) (crypto.Signer, error) { return newKey(useRSA) }

func newKey(useRSA bool) (crypto.Signer, error) {
	if useRSA {
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}
