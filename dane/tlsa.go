package dane

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Usage is a TLSA certificate usage (RFC 6698 §2.1.1, acronyms from RFC 7218).
type Usage uint8

// The certificate usages. Only DANE-TA and DANE-EE are usable for SMTP
// (RFC 7672 §3.1).
const (
	PKIXTA Usage = 0 // CA constraint, WebPKI-anchored: unusable for SMTP (RFC 7672 §3.1.3)
	PKIXEE Usage = 1 // service certificate constraint, WebPKI-anchored: unusable for SMTP
	DANETA Usage = 2 // trust anchor assertion (RFC 7672 §3.1.2)
	DANEEE Usage = 3 // domain-issued certificate (RFC 7672 §3.1.1)
)

// String returns the RFC 7218 acronym, or the number for an unassigned value.
func (u Usage) String() string {
	switch u {
	case PKIXTA:
		return "PKIX-TA"
	case PKIXEE:
		return "PKIX-EE"
	case DANETA:
		return "DANE-TA"
	case DANEEE:
		return "DANE-EE"
	}
	return strconv.Itoa(int(u))
}

// Selector says which part of a certificate a TLSA record binds
// (RFC 6698 §2.1.2).
type Selector uint8

// The selectors.
const (
	SelectorCert Selector = 0 // the whole certificate, DER
	SelectorSPKI Selector = 1 // the SubjectPublicKeyInfo, DER
)

// String returns the RFC 7218 acronym, or the number for an unassigned value.
func (s Selector) String() string {
	switch s {
	case SelectorCert:
		return "Cert"
	case SelectorSPKI:
		return "SPKI"
	}
	return strconv.Itoa(int(s))
}

// MatchingType says how the selected content is presented in a TLSA record
// (RFC 6698 §2.1.3).
type MatchingType uint8

// The matching types.
const (
	MatchFull   MatchingType = 0 // the selected content itself
	MatchSHA256 MatchingType = 1 // its SHA2-256 digest
	MatchSHA512 MatchingType = 2 // its SHA2-512 digest
)

// String returns the RFC 7218 acronym, or the number for an unassigned value.
func (m MatchingType) String() string {
	switch m {
	case MatchFull:
		return "Full"
	case MatchSHA256:
		return "SHA2-256"
	case MatchSHA512:
		return "SHA2-512"
	}
	return strconv.Itoa(int(m))
}

// TLSARecord is one TLSA record's data: the certificate association
// (RFC 6698 §2.1). A record read from the network may hold any values; use
// Usable before relying on it.
type TLSARecord struct {
	Usage        Usage
	Selector     Selector
	MatchingType MatchingType
	// Data is the certificate association data: DER for MatchFull, a digest
	// otherwise.
	Data []byte
}

// ErrMalformedTLSA is wrapped by the errors of TLSARecordFromRR and
// ParseTLSARecord: the record's text cannot be read at all. A record that
// can be read but not used is not malformed: see TLSARecord.Check.
var ErrMalformedTLSA = errors.New("malformed TLSA record")

// maxTLSAData bounds the association data accepted from text: the RDATA
// of a DNS record cannot hold more than 65535 octets.
const maxTLSAData = 65535 - 3

// TLSARecordFromRR converts a TLSA resource record as miekg/dns decodes it
// (association data as hexadecimal text) into a TLSARecord. It fails only
// when the hexadecimal text is malformed, which a record decoded from the
// wire never is.
func TLSARecordFromRR(rr *dns.TLSA) (TLSARecord, error) {
	if rr == nil {
		return TLSARecord{}, fmt.Errorf("%w: nil record", ErrMalformedTLSA)
	}
	data, err := decodeHex(rr.Certificate)
	if err != nil {
		return TLSARecord{}, fmt.Errorf("%w: %s: %v", ErrMalformedTLSA, rr.Hdr.Name, err)
	}
	return TLSARecord{
		Usage:        Usage(rr.Usage),
		Selector:     Selector(rr.Selector),
		MatchingType: MatchingType(rr.MatchingType),
		Data:         data,
	}, nil
}

// ParseTLSARecord reads a record in presentation format, as written in a
// zone file after the type: "3 1 1 0c72ac70...". The association data may
// be split by white space (RFC 6698 §2.2).
func ParseTLSARecord(s string) (TLSARecord, error) {
	f := strings.Fields(s)
	if len(f) < 4 {
		return TLSARecord{}, fmt.Errorf("%w: want \"usage selector matching-type data\", found %d fields", ErrMalformedTLSA, len(f))
	}
	var n [3]uint8
	for i := range n {
		v, err := strconv.ParseUint(f[i], 10, 8)
		if err != nil {
			return TLSARecord{}, fmt.Errorf("%w: field %d: want a number 0-255, found %.20q", ErrMalformedTLSA, i+1, f[i])
		}
		n[i] = uint8(v)
	}
	data, err := decodeHex(strings.Join(f[3:], ""))
	if err != nil {
		return TLSARecord{}, fmt.Errorf("%w: %v", ErrMalformedTLSA, err)
	}
	return TLSARecord{Usage: Usage(n[0]), Selector: Selector(n[1]), MatchingType: MatchingType(n[2]), Data: data}, nil
}

func decodeHex(s string) ([]byte, error) {
	if len(s) > 2*maxTLSAData {
		return nil, fmt.Errorf("association data of %d hex digits, more than a DNS record holds", len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("association data: %v", err)
	}
	return b, nil
}

// String returns the record in presentation format, "3 1 1 <hex>": the
// form RFC 8460 §4.2 uses for a TLSA policy-string.
func (r TLSARecord) String() string {
	return fmt.Sprintf("%d %d %d %x", r.Usage, r.Selector, r.MatchingType, r.Data)
}

// Usable reports whether the record can authenticate an SMTP server
// (RFC 7672 §3.1). An unusable record is ignored, never an error that
// spoils the other records of its RRset. Check says why a record is
// unusable; Usable is the same verdict without the words, and without
// allocating, for RRsets of hostile size.
func (r TLSARecord) Usable() bool {
	if r.Usage != DANETA && r.Usage != DANEEE || r.Selector > SelectorSPKI {
		return false
	}
	switch r.MatchingType {
	case MatchFull:
		return len(r.Data) > 0
	case MatchSHA256:
		return len(r.Data) == sha256.Size
	case MatchSHA512:
		return len(r.Data) == sha512.Size
	}
	return false
}

// Check says why the record is unusable for SMTP, or returns nil when it
// is usable.
func (r TLSARecord) Check() error {
	switch r.Usage {
	case DANETA, DANEEE:
	case PKIXTA, PKIXEE:
		// RFC 7672 §3.1.3: SMTP clients cannot know which WebPKI trust
		// anchors a server's operator has in mind; these usages are unusable.
		return fmt.Errorf("usage %s is not usable for SMTP (RFC 7672 §3.1.3)", r.Usage)
	default:
		return fmt.Errorf("unknown usage %d", r.Usage)
	}
	switch r.Selector {
	case SelectorCert, SelectorSPKI:
	default:
		return fmt.Errorf("unknown selector %d", r.Selector)
	}
	want := 0
	switch r.MatchingType {
	case MatchFull:
		if len(r.Data) == 0 {
			return errors.New("empty association data")
		}
		return nil
	case MatchSHA256:
		want = sha256.Size
	case MatchSHA512:
		want = sha512.Size
	default:
		return fmt.Errorf("unknown matching type %d", r.MatchingType)
	}
	// RFC 7672 §3.1, RFC 6698 §2.1.3: a digest of the wrong length can
	// match nothing; the record is unusable, the others of the RRset stand.
	if len(r.Data) != want {
		return fmt.Errorf("%s association data of %d bytes, want %d", r.MatchingType, len(r.Data), want)
	}
	return nil
}

// selected returns the part of cert the record's selector names.
func (r TLSARecord) selected(cert *x509.Certificate) []byte {
	switch r.Selector {
	case SelectorCert:
		return cert.Raw
	case SelectorSPKI:
		return cert.RawSubjectPublicKeyInfo
	}
	return nil
}

// Matches reports whether the record's association data matches cert
// under the record's selector and matching type (RFC 6698 §2.1.2-2.1.3).
// It compares data only: whether the usage makes the match mean anything
// is Requirement.Verify's business.
func (r TLSARecord) Matches(cert *x509.Certificate) bool {
	if cert == nil {
		return false
	}
	return r.matchesContent(r.selected(cert))
}

func (r TLSARecord) matchesContent(content []byte) bool {
	if len(content) == 0 {
		return false
	}
	switch r.MatchingType {
	case MatchFull:
		return bytes.Equal(content, r.Data)
	case MatchSHA256:
		sum := sha256.Sum256(content)
		return bytes.Equal(sum[:], r.Data)
	case MatchSHA512:
		sum := sha512.Sum512(content)
		return bytes.Equal(sum[:], r.Data)
	}
	return false
}

// UsableRecords returns the records of an RRset that verification uses:
// the usable ones (RFC 7672 §3.1), less those that digest algorithm agility
// sets aside. RFC 7671 §9 (and RFC 7672 §5): when, for one combination of
// usage and selector, records with SHA2-512 are published alongside records
// with SHA2-256, a client that supports both uses only the stronger, so an
// attacker who could forge the weaker digest gains nothing. Full (0)
// records are not digests and are always kept.
func UsableRecords(records []TLSARecord) []TLSARecord {
	type pair struct {
		u Usage
		s Selector
	}
	var strong map[pair]bool
	for _, r := range records {
		if r.MatchingType == MatchSHA512 && r.Usable() {
			if strong == nil {
				strong = make(map[pair]bool)
			}
			strong[pair{r.Usage, r.Selector}] = true
		}
	}
	var out []TLSARecord
	for _, r := range records {
		if !r.Usable() {
			continue
		}
		if r.MatchingType == MatchSHA256 && strong[pair{r.Usage, r.Selector}] {
			continue
		}
		out = append(out, r)
	}
	return out
}
