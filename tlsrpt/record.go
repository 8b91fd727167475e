package tlsrpt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/sealpost/sealpost/internal/txtfield"
)

// Record is a parsed _smtp._tls TXT record (RFC 8460 §3): where a policy
// domain wants its reports.
type Record struct {
	// RUA lists the report destinations, in the record's order. Only
	// mailto: and https: URIs are kept (RFC 8460 §3: the two schemes
	// supported); a record has at least one.
	RUA []RUA
	// Extensions holds the fields other than v and rua, in order. RFC 8460
	// §3 says they are ignored; they are kept for display.
	Extensions []Extension
}

// RUA is one destination of aggregate reports.
type RUA struct {
	// URI is the destination as published, with the scheme lower-cased:
	// "mailto:tlsrpt@example.com" or "https://reports.example.com/tlsrpt".
	URI string
	// Address is the recipient of a mailto: URI, percent-decoded and
	// without any ?query part; empty for https.
	Address string
}

// IsMail reports whether reports go to this destination by mail.
func (r RUA) IsMail() bool { return r.Address != "" }

// Extension is a key=value field of a record that RFC 8460 does not define.
type Extension struct {
	Key, Value string
}

// Limits on records. A TXT record longer than maxRecordLen is not a
// reporting policy anyone means; more destinations than maxRUA would turn
// one day's report into a mail flood the record's owner controls.
const (
	maxRecordLen = 4096
	maxRUA       = 10
)

const recordVersion = "v=TLSRPTv1"

// Errors of record look-ups, matched with errors.Is.
var (
	// ErrNoRecord: the domain publishes no TLSRPT record (the name does not
	// exist, has no TXT records, or none starts with v=TLSRPTv1). Permanent:
	// the domain does not want reports.
	ErrNoRecord = errors.New("tlsrpt: no TLSRPT record")
	// ErrMultipleRecords: more than one TXT record starts with v=TLSRPTv1.
	// RFC 8460 §3: the domain is then treated as not implementing TLSRPT.
	// Permanent.
	ErrMultipleRecords = errors.New("tlsrpt: more than one TLSRPT record")
	// ErrInvalidRecord: the one TLSRPT record does not parse (a
	// *RecordError says why). Permanent.
	ErrInvalidRecord = errors.New("tlsrpt: invalid TLSRPT record")
	// ErrTemporary: the DNS look-up failed (timeout, SERVFAIL, bogus
	// answer); try again later.
	ErrTemporary = errors.New("tlsrpt: temporary failure")
)

// RecordError says why a TXT record is not a valid TLSRPT record. It is
// permanent, and errors.Is(err, ErrInvalidRecord) holds.
type RecordError struct {
	// Record is the text of the record, cut to 200 bytes.
	Record string
	// Reason says what was expected and what was found.
	Reason string
}

func (e *RecordError) Error() string {
	return "tlsrpt: invalid TLSRPT record " + strconv.Quote(e.Record) + ": " + e.Reason
}

// Unwrap returns ErrInvalidRecord.
func (e *RecordError) Unwrap() error { return ErrInvalidRecord }

// Temporary returns false: a broken record stays broken until its owner
// fixes it.
func (e *RecordError) Temporary() bool { return false }

func recordError(txt, format string, args ...any) *RecordError {
	return &RecordError{Record: truncate(txt, 200), Reason: fmt.Sprintf(format, args...)}
}

// isCandidate reports whether txt starts with the version field: the
// records RFC 8460 §3 keeps when several TXT records are returned.
func isCandidate(txt string) bool {
	if !strings.HasPrefix(txt, recordVersion) {
		return false
	}
	rest := txt[len(recordVersion):]
	return rest == "" || rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t'
}

// ParseRecord parses the text of one _smtp._tls TXT record (its strings
// already concatenated without spaces, RFC 8460 §3).
//
// It follows the ABNF of RFC 8460 §3: "v=TLSRPTv1" first (case-sensitive),
// then ";"-separated fields; "rua=" with one or more ","-separated URIs is
// required; other fields must be syntactically valid extensions and are
// ignored. A rua field may repeat (the ABNF's 1*(field-delim tlsrpt-field)
// allows it): the URIs of every rua field are destinations, in order,
// each once. Chosen tolerances: white space around "=" and empty fields
// (";;") are accepted. Chosen strictness: a URI with
// an unencoded "!" (RFC 8460 §3: it MUST be encoded; it is DMARC's size
// suffix, which TLSRPT does not have) or white space inside a URI make the
// record invalid. URIs of schemes other than mailto and https are skipped;
// a record left without any destination is invalid.
func ParseRecord(txt string) (*Record, error) {
	if len(txt) > maxRecordLen {
		return nil, recordError(txt, "expected at most %d bytes, found %d", maxRecordLen, len(txt))
	}
	if !isCandidate(txt) {
		return nil, recordError(txt, "expected %q first", recordVersion)
	}
	fields := strings.Split(txt[len(recordVersion):], ";")
	if txtfield.TrimWSP(fields[0]) != "" {
		return nil, recordError(txt, "expected \";\" after %s, found %q", recordVersion, fields[0])
	}
	rec := &Record{}
	sawRUA := false
	for _, f := range fields[1:] {
		f = txtfield.TrimWSP(f)
		if f == "" {
			continue
		}
		key, value, ok := strings.Cut(f, "=")
		if !ok {
			return nil, recordError(txt, "expected key=value, found %q", f)
		}
		key, value = txtfield.TrimWSP(key), txtfield.TrimWSP(value)
		if key == "rua" {
			sawRUA = true
			ruas, err := parseRUAList(txt, value)
			if err != nil {
				return nil, err
			}
			for _, r := range ruas {
				if !slices.Contains(rec.RUA, r) {
					rec.RUA = append(rec.RUA, r)
				}
			}
			if len(rec.RUA) > maxRUA {
				return nil, recordError(txt, "expected at most %d rua URIs, found more", maxRUA)
			}
			continue
		}
		if !txtfield.ValidExtName(key) {
			return nil, recordError(txt, "expected a field name of letters, digits, _ - . (at most 32), found %q", key)
		}
		if !txtfield.ValidExtValue(value) {
			return nil, recordError(txt, "expected a value of printable ASCII without =, ; or space for %s, found %q", key, value)
		}
		rec.Extensions = append(rec.Extensions, Extension{Key: key, Value: value})
	}
	if !sawRUA {
		return nil, recordError(txt, "expected a rua field, found none")
	}
	return rec, nil
}

// parseRUAList parses the value of the rua field: URIs separated by
// "," with optional white space (RFC 8460 §3).
func parseRUAList(txt, value string) ([]RUA, error) {
	parts := strings.Split(value, ",")
	if len(parts) > maxRUA {
		return nil, recordError(txt, "expected at most %d rua URIs, found %d", maxRUA, len(parts))
	}
	var ruas []RUA
	for _, p := range parts {
		p = txtfield.TrimWSP(p)
		rua, supported, err := parseRUA(p)
		if err != nil {
			return nil, recordError(txt, "rua URI %q: %v", p, err)
		}
		if supported {
			ruas = append(ruas, rua)
		}
	}
	if len(ruas) == 0 {
		return nil, recordError(txt, "expected a mailto: or https: URI in rua, found none")
	}
	return ruas, nil
}

// parseRUA parses one rua URI. supported is false for a valid URI of a
// scheme RFC 8460 does not define, which the caller skips.
func parseRUA(s string) (rua RUA, supported bool, err error) {
	if s == "" {
		return RUA{}, false, errors.New("expected a URI, found nothing")
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '!':
			// RFC 8460 §3: exclamation points MUST be encoded.
			return RUA{}, false, errors.New("expected \"!\" to be percent-encoded")
		case c <= ' ' || c >= 0x7f:
			return RUA{}, false, fmt.Errorf("expected printable ASCII, found byte %#x", c)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return RUA{}, false, errors.New("expected a URI, found a malformed one")
	}
	switch scheme := strings.ToLower(u.Scheme); scheme {
	case "mailto":
		opaque := u.Opaque
		if opaque == "" {
			opaque = u.Path // "mailto:/x" is not an address either, but parse it the same way.
		}
		addr, err := url.PathUnescape(opaque)
		if err != nil {
			return RUA{}, false, errors.New("expected a percent-encoded address, found a bad escape")
		}
		at := strings.LastIndexByte(addr, '@')
		if at <= 0 || at == len(addr)-1 || strings.ContainsAny(addr, ", <>\r\n\"") {
			return RUA{}, false, fmt.Errorf("expected one address local@domain, found %q", addr)
		}
		return RUA{URI: "mailto:" + s[len(u.Scheme)+1:], Address: addr}, true, nil
	case "https":
		if u.Host == "" {
			return RUA{}, false, errors.New("expected https://host/..., found no host")
		}
		return RUA{URI: "https:" + s[len(u.Scheme)+1:]}, true, nil
	case "":
		return RUA{}, false, errors.New("expected an absolute URI, found no scheme")
	default:
		return RUA{}, false, nil
	}
}

// String returns the record in the canonical form
// "v=TLSRPTv1;rua=URI,URI;key=value", without white space, so that the
// result is never longer than the text it was parsed from: ParseRecord of
// it gives an equal record, even for a record at the 4,096-byte limit.
func (r *Record) String() string {
	var b strings.Builder
	b.WriteString(recordVersion)
	b.WriteString(";rua=")
	for i, rua := range r.RUA {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(rua.URI)
	}
	for _, e := range r.Extensions {
		b.WriteByte(';')
		b.WriteString(e.Key)
		b.WriteByte('=')
		b.WriteString(e.Value)
	}
	return b.String()
}

// TXTResolver looks up TXT records: one string per record, its
// character-strings concatenated. *net.Resolver and the dane package's
// *Resolver satisfy it; the latter follows CNAMEs and checks DNSSEC.
//
// An error that has a NotFound() method returning true, or a *net.DNSError
// with IsNotFound set, means the name has no TXT records.
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// LookupError is the error of LookupRecord. errors.Is(err, Kind) holds
// for its Kind; errors.As reaches the underlying *RecordError or DNS error.
type LookupError struct {
	// Domain is the policy domain looked up.
	Domain string
	// Kind is ErrNoRecord, ErrMultipleRecords, ErrInvalidRecord or
	// ErrTemporary.
	Kind error
	// Err is the underlying error, if any.
	Err error
}

func (e *LookupError) Error() string {
	msg := e.Kind.Error() + " for " + e.Domain
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns Kind and, when set, Err.
func (e *LookupError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Temporary reports whether trying again later may give another answer.
func (e *LookupError) Temporary() bool { return e.Kind == ErrTemporary }

// LookupRecord fetches and parses the TLSRPT record of a policy domain
// (RFC 8460 §3): the TXT records at _smtp._tls.<domain>, of which exactly
// one must start with v=TLSRPTv1.
func LookupRecord(ctx context.Context, r TXTResolver, domain string) (*Record, error) {
	domain = normalizeDomain(domain)
	txts, err := r.LookupTXT(ctx, "_smtp._tls."+domain+".")
	if err != nil {
		if isNotFound(err) {
			return nil, &LookupError{Domain: domain, Kind: ErrNoRecord, Err: err}
		}
		return nil, &LookupError{Domain: domain, Kind: ErrTemporary, Err: err}
	}
	var found []string
	for _, txt := range txts {
		// RFC 8460 §3: records not starting with the version are discarded.
		if isCandidate(txt) {
			found = append(found, txt)
		}
	}
	switch len(found) {
	case 0:
		return nil, &LookupError{Domain: domain, Kind: ErrNoRecord}
	case 1:
	default:
		// RFC 8460 §3: if the number of records is not one, the domain is
		// assumed not to implement TLSRPT.
		return nil, &LookupError{Domain: domain, Kind: ErrMultipleRecords,
			Err: fmt.Errorf("found %d records starting with %s", len(found), recordVersion)}
	}
	rec, err := ParseRecord(found[0])
	if err != nil {
		return nil, &LookupError{Domain: domain, Kind: ErrInvalidRecord, Err: err}
	}
	return rec, nil
}

// isNotFound classifies a resolver error as "the name has no TXT records"
// for both *net.Resolver and resolvers whose errors have NotFound().
func isNotFound(err error) bool {
	var nf interface{ NotFound() bool }
	if errors.As(err, &nf) {
		return nf.NotFound()
	}
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}
