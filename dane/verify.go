package dane

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/dnsname"
)

// maxPeerCertificates bounds the chain a server may present: real chains
// hold two to four certificates, and every extra one costs digests and
// signature checks for each DANE-TA record.
const maxPeerCertificates = 16

// Match says how a server's certificate chain satisfied its TLSA records.
type Match struct {
	// Record is the TLSA record that matched; its Usage says whether the
	// server was authenticated as DANE-EE or through a DANE-TA trust anchor.
	Record TLSARecord
	// Depth is the position in the presented chain of the certificate the
	// record matched: 0 for the leaf, -1 when a "2 1 0" record supplied a
	// trust anchor key the server did not send.
	Depth int
	// Name is, for DANE-TA, the reference identifier the leaf certificate
	// matched: the TLSA base domain or the MX host name. Empty for DANE-EE,
	// whose names are not checked.
	Name string
}

// Verify checks a server's certificate chain, leaf first as presented in
// the TLS handshake, against the requirement's usable TLSA records at time
// now. Any one matching record suffices (RFC 7672 §3: key roll-overs
// publish two). The failure is a *VerifyError.
//
// DANE-EE(3): the leaf certificate or its public key matches; names and
// validity dates are not checked (RFC 7672 §3.1.1).
//
// DANE-TA(2): a certificate of the chain matches (or, for "2 1 0", the
// record's full public key signed one), the chain from the leaf up to that
// trust anchor verifies at time now, and the leaf names the TLSA base
// domain or the MX host (RFC 7672 §3.1.2, §3.2.2, §3.2.3).
func (req *Requirement) Verify(certs []*x509.Certificate, now time.Time) (*Match, error) {
	records := req.UsableRecords()
	switch {
	case len(records) == 0:
		return nil, req.fail(ErrNoUsableRecord, nil, describeRecords(req.Records), nil)
	case len(certs) == 0 || certs[0] == nil:
		return nil, req.fail(ErrNoPeerCertificate, nil, "", nil)
	case len(certs) > maxPeerCertificates:
		return nil, req.fail(ErrChainInvalid, nil, fmt.Sprintf("%d certificates presented, at most %d considered", len(certs), maxPeerCertificates), nil)
	}
	sums := newDigestCache(certs)
	// DANE-EE first: it costs one digest, DANE-TA a chain verification.
	for _, r := range records {
		if r.Usage == DANEEE && sums.matches(r, 0) {
			// RFC 7672 §3.1.1: the record binds the key or certificate
			// itself; names and dates are not checked.
			return &Match{Record: r, Depth: 0}, nil
		}
	}
	var first *VerifyError
	for _, r := range records {
		if r.Usage != DANETA {
			continue
		}
		m, err := req.verifyTA(r, sums, now)
		if m != nil {
			return m, nil
		}
		if err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		// A trust anchor matched but its chain did not hold: say why,
		// which is more use to the server's operator than "no match".
		return nil, first
	}
	return nil, req.fail(ErrNoMatchingRecord, nil, describeChain(certs), nil)
}

// verifyTA tries one DANE-TA record. It returns a nil error on success,
// and a nil *VerifyError too when the record's anchor is not found in or
// under the chain (the caller reports that as no match).
func (req *Requirement) verifyTA(r TLSARecord, sums *digestCache, now time.Time) (*Match, *VerifyError) {
	certs := sums.certs
	anchor, depth := findAnchor(r, sums)
	if anchor == nil {
		return nil, nil
	}
	opts := x509.VerifyOptions{
		Roots:         x509.NewCertPool(),
		Intermediates: x509.NewCertPool(),
		CurrentTime:   now,
		// The binding comes from the signed TLSA record, not from an
		// extended key usage a WebPKI CA would set; RFC 7672 asks for
		// none, and private CAs behind DANE-TA often omit it.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	opts.Roots.AddCert(anchor)
	for _, c := range certs[1:] {
		if c != nil && c != anchor {
			opts.Intermediates.AddCert(c)
		}
	}
	rec := r
	// RFC 7672 §3.2.2: the chain from the leaf up to the trust anchor must
	// verify, dates included (unlike DANE-EE).
	if _, err := certs[0].Verify(opts); err != nil {
		kind := ErrChainInvalid
		if expired(certs, anchor, now) {
			kind = ErrCertificateExpired
		}
		return nil, req.fail(kind, &rec, "", err)
	}
	name, ok := req.namedBy(certs[0])
	if !ok {
		return nil, req.fail(ErrCertificateHostMismatch, &rec, fmt.Sprintf("want %s, certificate names %s", req.referenceIDs(), certNames(certs[0])), nil)
	}
	return &Match{Record: r, Depth: depth, Name: name}, nil
}

// findAnchor returns the certificate the record makes a trust anchor and
// its depth in the chain. For a "2 1 0" record whose key the server did not
// send, it returns the highest presented certificate that key signed, at
// depth -1: that certificate is then the top of the chain to verify, and
// the key above it has no dates to check.
func findAnchor(r TLSARecord, sums *digestCache) (*x509.Certificate, int) {
	certs := sums.certs
	for i, c := range certs {
		if sums.matches(r, i) {
			return c, i
		}
	}
	// RFC 7672 §3.1.2 and RFC 7671 §5.2.2: with "2 1 0" the trust anchor
	// is a bare public key given in full, which the server need not send.
	if r.Selector != SelectorSPKI || r.MatchingType != MatchFull {
		return nil, 0
	}
	issuer, ok := keyIssuer(r.Data)
	if !ok {
		return nil, 0
	}
	for i := len(certs) - 1; i >= 0; i-- {
		if c := certs[i]; c != nil && c.CheckSignatureFrom(issuer) == nil {
			return c, -1
		}
	}
	return nil, 0
}

// digestCache holds the digests of the presented certificates that records
// have asked for, so that a large RRset — a DNS answer can hold a thousand
// records — costs comparisons, not a digest per record and certificate.
type digestCache struct {
	certs []*x509.Certificate
	sums  [][4][]byte // per certificate: Cert/SPKI x SHA2-256/SHA2-512
}

func newDigestCache(certs []*x509.Certificate) *digestCache {
	return &digestCache{certs: certs, sums: make([][4][]byte, len(certs))}
}

// matches is TLSARecord.Matches for the certificate at depth i.
func (c *digestCache) matches(r TLSARecord, i int) bool {
	cert := c.certs[i]
	if cert == nil || r.Selector > SelectorSPKI {
		return false
	}
	content := r.selected(cert)
	var slot int
	switch r.MatchingType {
	case MatchFull:
		return len(content) > 0 && bytes.Equal(content, r.Data)
	case MatchSHA256:
		slot = 2 * int(r.Selector)
	case MatchSHA512:
		slot = 2*int(r.Selector) + 1
	default:
		return false
	}
	sum := c.sums[i][slot]
	if sum == nil {
		if r.MatchingType == MatchSHA256 {
			s := sha256.Sum256(content)
			sum = s[:]
		} else {
			s := sha512.Sum512(content)
			sum = s[:]
		}
		c.sums[i][slot] = sum
	}
	return bytes.Equal(sum, r.Data)
}

// keyIssuer wraps a DER SubjectPublicKeyInfo in a certificate that only
// CheckSignatureFrom reads: a CA with that key.
func keyIssuer(spki []byte) (*x509.Certificate, bool) {
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, false
	}
	issuer := &x509.Certificate{PublicKey: pub, BasicConstraintsValid: true, IsCA: true}
	switch pub.(type) {
	case *rsa.PublicKey:
		issuer.PublicKeyAlgorithm = x509.RSA
	case *ecdsa.PublicKey:
		issuer.PublicKeyAlgorithm = x509.ECDSA
	case ed25519.PublicKey:
		issuer.PublicKeyAlgorithm = x509.Ed25519
	default:
		return nil, false
	}
	return issuer, true
}

// expired reports whether a certificate from the leaf up to the anchor
// (always one of certs: findAnchor returns a presented certificate) has
// expired at now, so that the failure is reported as certificate-expired
// rather than as a generic validation failure.
func expired(certs []*x509.Certificate, anchor *x509.Certificate, now time.Time) bool {
	for _, c := range certs {
		if c != nil && now.After(c.NotAfter) {
			return true
		}
		if c == anchor {
			break
		}
	}
	return false
}

// referenceIDs returns the names a DANE-TA leaf may carry: RFC 7672 §3.2.3
// accepts the TLSA base domain and the MX host name (they differ when the
// host is a CNAME).
func (req *Requirement) referenceIDs() []string {
	ids := []string{req.BaseDomain}
	if req.Host != "" && !strings.EqualFold(req.Host, req.BaseDomain) {
		ids = append(ids, req.Host)
	}
	return ids
}

// namedBy returns the reference identifier the leaf certificate names.
func (req *Requirement) namedBy(leaf *x509.Certificate) (string, bool) {
	for _, id := range req.referenceIDs() {
		if id == "" {
			continue
		}
		// DNS-ID, with a wildcard allowed as the whole leftmost label
		// (RFC 7672 §3.2.3).
		if leaf.VerifyHostname(id) == nil {
			return id, true
		}
		// RFC 6125 §6.4.4: the CN-ID is consulted only when the
		// certificate has no DNS-ID at all; Go's VerifyHostname no longer
		// does so, but private CAs behind DANE-TA still issue such
		// certificates.
		if len(leaf.DNSNames) == 0 && matchName(leaf.Subject.CommonName, id) {
			return id, true
		}
	}
	return "", false
}

// matchName compares a presented name, possibly "*.rest", with a host
// name, ignoring ASCII case and a final dot (dnsname.Fold: never
// strings.ToLower, which would let a presented U+212A KELVIN SIGN match
// the host's "k"). The wildcard stands for exactly one whole, non-empty
// label.
func matchName(pattern, host string) bool {
	pattern, host = dnsname.Fold(pattern), dnsname.Fold(host)
	if pattern == "" || host == "" {
		return false
	}
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		label, hostRest, ok := strings.Cut(host, ".")
		return ok && label != "" && rest != "" && !strings.Contains(rest, "*") && hostRest == rest
	}
	return !strings.Contains(pattern, "*") && pattern == host
}

func (req *Requirement) fail(kind error, rec *TLSARecord, detail string, err error) *VerifyError {
	return &VerifyError{Kind: kind, Host: req.Host, BaseDomain: req.BaseDomain, Record: rec, Detail: detail, Err: err}
}

// describeRecords summarises why each record is unusable, for the
// tlsa-invalid failure detail.
func describeRecords(records []TLSARecord) string {
	if len(records) == 0 {
		return "no records"
	}
	var parts []string
	for i, r := range records {
		if i == 4 {
			parts = append(parts, fmt.Sprintf("and %d more", len(records)-i))
			break
		}
		if err := r.Check(); err != nil {
			parts = append(parts, fmt.Sprintf("%d %d %d: %v", r.Usage, r.Selector, r.MatchingType, err))
		}
	}
	return strings.Join(parts, "; ")
}

// describeChain names what the server presented, for the no-match detail.
func describeChain(certs []*x509.Certificate) string {
	var parts []string
	for i, c := range certs {
		if i == 3 {
			parts = append(parts, "...")
			break
		}
		if c != nil {
			parts = append(parts, fmt.Sprintf("%q", c.Subject.CommonName))
		}
	}
	return fmt.Sprintf("server presented %d certificate(s): %s", len(certs), strings.Join(parts, " <- "))
}

// certNames lists the DNS names of a certificate (its CN when it has none),
// bounded for error messages.
func certNames(c *x509.Certificate) string {
	names := c.DNSNames
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = []string{"CN=" + c.Subject.CommonName}
	}
	if len(names) == 0 {
		return "no names"
	}
	if len(names) > 5 {
		return strings.Join(names[:5], ", ") + fmt.Sprintf(" and %d more", len(names)-5)
	}
	return strings.Join(names, ", ")
}

// TLSConfig returns the client configuration for a STARTTLS connection to
// the requirement's host. It copies base (nil means a zero Config) and sets:
//
//   - ServerName to the TLSA base domain, sent as SNI (RFC 7672 §8.1);
//   - InsecureSkipVerify, because the server is authenticated by its TLSA
//     records, never by the WebPKI (RFC 7672 §3);
//   - VerifyConnection to Verify at now() (nil means time.Now), replacing
//     any VerifyConnection or VerifyPeerCertificate of base. A failure ends
//     the handshake; the handshake's error is the *VerifyError. On success
//     onMatch, if not nil, receives the Match.
//
// For TLSRequired there is nothing to authenticate with: the handshake
// accepts any certificate. For NotApplicable, Verify fails every handshake
// (no usable record): such a host needs no DANE configuration.
func (req *Requirement) TLSConfig(base *tls.Config, now func() time.Time, onMatch func(*Match)) *tls.Config {
	var cfg *tls.Config
	if base != nil {
		cfg = base.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if now == nil {
		now = time.Now
	}
	cfg.ServerName = req.BaseDomain
	cfg.InsecureSkipVerify = true
	cfg.VerifyPeerCertificate = nil
	if req.Outcome == TLSRequired {
		// RFC 7672 §2.2: TLS is mandatory, but without a usable record
		// there is nothing to check the certificate against.
		cfg.VerifyConnection = nil
		return cfg
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		m, err := req.Verify(cs.PeerCertificates, now())
		if err != nil {
			return err
		}
		if onMatch != nil {
			onMatch(m)
		}
		return nil
	}
	return cfg
}
