package tlsrpt

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRealWorldReports reads the real reports of testdata/realworld
// (SOURCES.md says who sent each and where it was published), by mail or
// as JSON, and checks what a domain owner would read from each: sender,
// policy domain and type, and counts. Their quirks are read as meant:
// Google's mx-host as a list, a Mail.ru total that is less than its
// failure details add up to (the details are kept as sent), a whole Go
// error as a failure-reason-code, Microsoft's Report-ID folded in the
// Subject.
func TestRealWorldReports(t *testing.T) {
	for _, tc := range []struct {
		file, org, domain string
		typ               PolicyType
		ok, failed        int64
	}{
		{"google-1.eml", "Google Inc.", "cardinalhealth.ca", PolicyTypeNoPolicyFound, 48, 0},
		{"google-2.eml", "Google Inc.", "example.com", PolicyTypeSTS, 1, 0},
		{"google-3.eml", "Google Inc.", "example.com", PolicyTypeSTS, 4, 0},
		{"google-anonymized-1.json", "Example Inc.", "example.com", PolicyTypeSTS, 0, 3},
		{"mailru-1.json", "Mail.ru", "example.com", PolicyTypeSTS, 0, 1},
		{"mailru-2.json", "Mail.ru", "krvtz.net", PolicyTypeSTS, 0, 1},
		{"microsoft-1.eml", "Microsoft Corporation", "example.com", PolicyTypeSTS, 2, 0},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("../testdata/realworld/tlsrpt", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var r *Report
			if strings.HasSuffix(tc.file, ".eml") {
				r, err = ParseReportMail(f)
			} else {
				r, err = ParseReport(f)
			}
			if err != nil {
				t.Fatal(err)
			}
			sums := Summarize([]*Report{r})
			if r.OrganizationName != tc.org || len(sums) != 1 {
				t.Fatalf("report from %q with %d summaries", r.OrganizationName, len(sums))
			}
			s := sums[0]
			if s.Domain != tc.domain || s.PolicyType != tc.typ || s.Successful != tc.ok || s.Failed != tc.failed {
				t.Errorf("summary %s %s %d/%d, want %s %s %d/%d", s.Domain, s.PolicyType, s.Successful, s.Failed, tc.domain, tc.typ, tc.ok, tc.failed)
			}
		})
	}
}

// TestRealWorldRecords: every published _smtp._tls record of the corpus
// is read, with its destinations.
func TestRealWorldRecords(t *testing.T) {
	f, err := os.Open("../testdata/realworld/txt/smtp-tls.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		value, source, _ := strings.Cut(sc.Text(), "\t")
		rec, err := ParseRecord(value)
		if err != nil || len(rec.RUA) == 0 {
			t.Errorf("%s: %q: %v, %v", source, value, rec, err)
		}
	}
}
