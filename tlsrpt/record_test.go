package tlsrpt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestParseRecord(t *testing.T) {
	mail := func(addr string) RUA { return RUA{URI: "mailto:" + addr, Address: addr} }
	tests := []struct {
		name string
		txt  string
		want *Record // nil: invalid
	}{
		{"mailto rua (RFC 8460 §3.1.1)", "v=TLSRPTv1;rua=mailto:reports@example.com",
			&Record{RUA: []RUA{mail("reports@example.com")}}},
		{"https rua (RFC 8460 §3.1.2)", "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt",
			&Record{RUA: []RUA{{URI: "https://reporting.example.com/v1/tlsrpt"}}}},
		{"comma-separated mailto and https", "v=TLSRPTv1; rua=mailto:a@example.com, https://r.example.com/x",
			&Record{RUA: []RUA{mail("a@example.com"), {URI: "https://r.example.com/x"}}}},
		{"white space around comma and delimiters", "v=TLSRPTv1 ;\trua=mailto:a@example.com ,\thttps://r.example/ ; ",
			&Record{RUA: []RUA{mail("a@example.com"), {URI: "https://r.example/"}}}},
		{"trailing field delimiter", "v=TLSRPTv1;rua=mailto:a@example.com;",
			&Record{RUA: []RUA{mail("a@example.com")}}},
		{"empty field tolerated", "v=TLSRPTv1;;rua=mailto:a@example.com",
			&Record{RUA: []RUA{mail("a@example.com")}}},
		{"white space around equals tolerated", "v=TLSRPTv1; rua = mailto:a@example.com",
			&Record{RUA: []RUA{mail("a@example.com")}}},
		{"extensions are ignored and kept", "v=TLSRPTv1; ext_1.a-b=yes; rua=mailto:a@example.com; x=1",
			&Record{RUA: []RUA{mail("a@example.com")}, Extensions: []Extension{{"ext_1.a-b", "yes"}, {"x", "1"}}}},
		{"scheme is case-insensitive", "v=TLSRPTv1; rua=MAILTO:a@example.com,HTTPS://r.example/",
			&Record{RUA: []RUA{mail("a@example.com"), {URI: "https://r.example/"}}}},
		{"percent-encoded address is decoded", "v=TLSRPTv1; rua=mailto:tls%2Brpt@example.com",
			&Record{RUA: []RUA{{URI: "mailto:tls%2Brpt@example.com", Address: "tls+rpt@example.com"}}}},
		{"mailto query is not part of the address", "v=TLSRPTv1; rua=mailto:a@example.com?subject=x",
			&Record{RUA: []RUA{{URI: "mailto:a@example.com?subject=x", Address: "a@example.com"}}}},
		{"unsupported scheme is skipped", "v=TLSRPTv1; rua=http://r.example/,mailto:a@example.com",
			&Record{RUA: []RUA{mail("a@example.com")}}},
		{"ten URIs are allowed, each destination once", "v=TLSRPTv1; rua=" + strings.Repeat("mailto:a@example.com,", 9) + "mailto:a@example.com",
			&Record{RUA: []RUA{mail("a@example.com")}}},
		// RFC 8460 §3's ABNF lets a field repeat: every rua field's URIs
		// are destinations (a domain listing two was refused outright).
		{"a second rua field adds destinations", "v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com,mailto:a@example.com",
			&Record{RUA: []RUA{mail("a@example.com"), mail("b@example.com")}}},

		{"version must come first", "rua=mailto:a@example.com; v=TLSRPTv1", nil},
		{"version is case-sensitive", "v=tlsrptv1; rua=mailto:a@example.com", nil},
		{"other version is not TLSRPTv1", "v=TLSRPTv10; rua=mailto:a@example.com", nil},
		{"leading white space is not allowed", " v=TLSRPTv1; rua=mailto:a@example.com", nil},
		{"rua is required", "v=TLSRPTv1", nil},
		{"rua is required with extensions", "v=TLSRPTv1; ruf=mailto:a@example.com", nil},
		{"rua key is case-sensitive", "v=TLSRPTv1; RUA=mailto:a@example.com", nil},
		{"garbage after version", "v=TLSRPTv1 x; rua=mailto:a@example.com", nil},
		{"field without equals", "v=TLSRPTv1; rua=mailto:a@example.com; broken", nil},
		{"empty rua", "v=TLSRPTv1; rua=", nil},
		{"empty URI in list", "v=TLSRPTv1; rua=mailto:a@example.com,,https://r.example/", nil},
		{"more than ten destinations over two rua fields", "v=TLSRPTv1; rua=" + tenMailtos("a") + "; rua=mailto:z@example.com", nil},
		{"an extension name with %", "v=TLSRPTv1; rua=mailto:a@example.com; 1%=a", nil},
		{"an extension value with =", "v=TLSRPTv1; rua=mailto:a@example.com; test==", nil},
		{"unencoded exclamation point (DMARC size suffix)", "v=TLSRPTv1; rua=mailto:a@example.com!10m", nil},
		{"white space inside a URI", "v=TLSRPTv1; rua=mailto:a @example.com", nil},
		{"relative URI", "v=TLSRPTv1; rua=a@example.com", nil},
		{"mailto without address", "v=TLSRPTv1; rua=mailto:", nil},
		{"mailto without domain", "v=TLSRPTv1; rua=mailto:a@", nil},
		{"mailto with two addresses", "v=TLSRPTv1; rua=mailto:a@example.com%2Cb@example.com", nil},
		{"https without host", "v=TLSRPTv1; rua=https:/path", nil},
		{"only unsupported schemes", "v=TLSRPTv1; rua=http://r.example/", nil},
		{"more than ten URIs", "v=TLSRPTv1; rua=" + strings.Repeat("mailto:a@example.com,", 10) + "mailto:a@example.com", nil},
		{"extension name too long", "v=TLSRPTv1; rua=mailto:a@example.com; " + strings.Repeat("a", 33) + "=1", nil},
		{"extension name with bad character", "v=TLSRPTv1; rua=mailto:a@example.com; a/b=1", nil},
		{"extension value with equals", "v=TLSRPTv1; rua=mailto:a@example.com; a=b=c", nil},
		{"extension value with space", "v=TLSRPTv1; rua=mailto:a@example.com; a=b c", nil},
		{"extension value empty", "v=TLSRPTv1; rua=mailto:a@example.com; a=", nil},
		{"non-ASCII", "v=TLSRPTv1; rua=mailto:ä@example.com", nil},
		{"too long", "v=TLSRPTv1; rua=mailto:a@example.com; x=" + strings.Repeat("a", maxRecordLen), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRecord(tt.txt)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("ParseRecord(%q) = %+v, want an error", tt.txt, got)
				}
				var re *RecordError
				if !errors.As(err, &re) || !errors.Is(err, ErrInvalidRecord) || re.Temporary() {
					t.Fatalf("error %v: want a permanent *RecordError matching ErrInvalidRecord", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRecord(%q): %v", tt.txt, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseRecord(%q)\n got %+v\nwant %+v", tt.txt, got, tt.want)
			}
			again, err := ParseRecord(got.String())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip through %q: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestRecordErrorSaysWhatWasExpected(t *testing.T) {
	_, err := ParseRecord("v=TLSRPTv1; ruf=mailto:a@example.com")
	if err == nil || !strings.Contains(err.Error(), "expected a rua field, found none") {
		t.Fatalf("error = %v", err)
	}
}

// fakeTXT is a TXTResolver answering from a map; names without an entry
// do not exist.
type fakeTXT struct {
	mu      sync.Mutex
	answers map[string][]string
	err     error
	asked   []string
}

func (f *fakeTXT) LookupTXT(_ context.Context, name string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, name)
	if f.err != nil {
		return nil, f.err
	}
	txts, ok := f.answers[name]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return txts, nil
}

// notFoundError stands for the dane package's *DNSError of kind NXDOMAIN.
type notFoundError struct{ notFound bool }

func (e notFoundError) Error() string  { return "dns failure" }
func (e notFoundError) NotFound() bool { return e.notFound }

func TestLookupRecord(t *testing.T) {
	const name = "_smtp._tls.example.com."
	tests := []struct {
		name     string
		answers  map[string][]string
		err      error
		wantKind error // nil: success
		wantTemp bool
	}{
		{"one record", map[string][]string{name: {"v=TLSRPTv1; rua=mailto:tlsrpt@example.com"}}, nil, nil, false},
		{"other TXT records are discarded", map[string][]string{name: {"google-site-verification=abc", "v=TLSRPTv1;rua=mailto:tlsrpt@example.com", "v=spf1 -all"}}, nil, nil, false},
		{"no such name (net.Resolver)", map[string][]string{}, nil, ErrNoRecord, false},
		{"no such name (NotFound method)", nil, notFoundError{true}, ErrNoRecord, false},
		{"no TLSRPT record among TXT records", map[string][]string{name: {"v=spf1 -all"}}, nil, ErrNoRecord, false},
		{"no TXT records", map[string][]string{name: {}}, nil, ErrNoRecord, false},
		{"several valid records mean none (RFC 8460 §3)", map[string][]string{name: {"v=TLSRPTv1; rua=mailto:a@example.com", "v=TLSRPTv1; rua=mailto:b@example.com"}}, nil, ErrMultipleRecords, false},
		{"a valid and an invalid record mean none", map[string][]string{name: {"v=TLSRPTv1; rua=mailto:a@example.com", "v=TLSRPTv1"}}, nil, ErrMultipleRecords, false},
		{"one invalid record", map[string][]string{name: {"v=TLSRPTv1; rua=ftp://x"}}, nil, ErrInvalidRecord, false},
		{"server failure is temporary", nil, notFoundError{false}, ErrTemporary, true},
		{"timeout is temporary", nil, &net.DNSError{Err: "i/o timeout", IsTimeout: true}, ErrTemporary, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &fakeTXT{answers: tt.answers, err: tt.err}
			rec, err := LookupRecord(context.Background(), r, "Example.COM.")
			if len(r.asked) != 1 || r.asked[0] != name {
				t.Fatalf("asked %q, want [%q]", r.asked, name)
			}
			if tt.wantKind == nil {
				if err != nil {
					t.Fatalf("LookupRecord: %v", err)
				}
				if len(rec.RUA) != 1 || rec.RUA[0].Address == "" {
					t.Fatalf("record %+v", rec)
				}
				return
			}
			var le *LookupError
			if !errors.Is(err, tt.wantKind) || !errors.As(err, &le) {
				t.Fatalf("error %v, want a *LookupError of kind %v", err, tt.wantKind)
			}
			if le.Temporary() != tt.wantTemp || le.Domain != "example.com" {
				t.Fatalf("Temporary() = %v, Domain = %q", le.Temporary(), le.Domain)
			}
			if tt.wantKind == ErrInvalidRecord {
				var re *RecordError
				if !errors.As(err, &re) {
					t.Fatalf("error %v does not carry the *RecordError", err)
				}
			}
		})
	}
}

func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"v=TLSRPTv1;rua=mailto:reports@example.com",
		"v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt",
		"v=TLSRPTv1; rua=mailto:a@example.com, https://r.example.com/x; ext=1;",
		"v=TLSRPTv1; rua=mailto:tls%2Brpt@example.com?subject=x",
		"v=TLSRPTv1; rua=mailto:a@example.com!10m",
		"v=TLSRPTv1;;rua = HTTPS://r.example/;",
		"v=TLSRPTv1",
		"",
		// At the limits: 4,096 bytes, ten and eleven destinations, a
		// 32-character extension name and a 33-character one.
		"v=TLSRPTv1;rua=mailto:a@example.com;" + strings.Repeat(";", maxRecordLen-len("v=TLSRPTv1;rua=mailto:a@example.com;")),
		"v=TLSRPTv1;rua=mailto:a@example.com" + strings.Repeat(";x=y", (maxRecordLen-35)/4),
		"v=TLSRPTv1;rua=" + strings.Repeat("mailto:a@b.example,", 9) + "https://r.example/",
		"v=TLSRPTv1;rua=" + strings.Repeat("mailto:a@b.example,", 10) + "https://r.example/",
		"v=TLSRPTv1;rua=mailto:a@b.example;" + strings.Repeat("a", 32) + "=1",
		"v=TLSRPTv1;rua=mailto:a@b.example;" + strings.Repeat("a", 33) + "=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		rec, err := ParseRecord(txt)
		if err != nil {
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("error %v does not match ErrInvalidRecord", err)
			}
			return
		}
		if len(rec.RUA) == 0 || len(rec.RUA) > maxRUA {
			t.Fatalf("valid record with %d destinations", len(rec.RUA))
		}
		for _, r := range rec.RUA {
			if !strings.HasPrefix(r.URI, "mailto:") && !strings.HasPrefix(r.URI, "https:") {
				t.Fatalf("destination %q of an unsupported scheme", r.URI)
			}
			if strings.HasPrefix(r.URI, "mailto:") != r.IsMail() {
				t.Fatalf("destination %+v: address does not match the scheme", r)
			}
		}
		if out := rec.String(); len(out) > len(txt) {
			t.Fatalf("String of a %d-byte record has %d bytes: %q", len(txt), len(out), out)
		}
		again, err := ParseRecord(rec.String())
		if err != nil || !reflect.DeepEqual(again, rec) {
			t.Fatalf("round trip of %q through %q: %+v, %v", txt, rec.String(), again, err)
		}
	})
}

// What String writes must be a record ParseRecord accepts, also for a
// record at the size limit that was written without white space.
func TestRecordStringAtTheSizeLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("v=TLSRPTv1;rua=mailto:a@example.com")
	for i := 0; b.Len() < maxRecordLen-10; i++ {
		fmt.Fprintf(&b, ";x%d=y", i)
	}
	for b.Len() < maxRecordLen {
		b.WriteByte('y')
	}
	txt := b.String()
	rec, err := ParseRecord(txt)
	if err != nil {
		t.Fatalf("a %d-byte record: %v", len(txt), err)
	}
	out := rec.String()
	if len(out) > len(txt) {
		t.Errorf("String of a %d-byte record has %d bytes", len(txt), len(out))
	}
	if again, err := ParseRecord(out); err != nil || !reflect.DeepEqual(again, rec) {
		t.Fatalf("own output does not parse back: %v", err)
	}
}

// tenMailtos returns ten different mailto: URIs, prefix0@ to prefix9@.
func tenMailtos(prefix string) string {
	var uris []string
	for i := range 10 {
		uris = append(uris, fmt.Sprintf("mailto:%s%d@example.com", prefix, i))
	}
	return strings.Join(uris, ",")
}
