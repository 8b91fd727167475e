package sts

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRecord(t *testing.T) {
	tests := []struct {
		name   string
		txt    string
		wantID string // empty: the record is invalid
	}{
		{"minimal record", "v=STSv1; id=20160831085700Z", "20160831085700Z"},
		{"no space after semicolon", "v=STSv1;id=abc", "abc"},
		{"spaces around semicolon", "v=STSv1 ;  id=abc  ", "abc"},
		{"tabs around semicolon", "v=STSv1\t;\tid=abc", "abc"},
		{"trailing semicolon", "v=STSv1; id=abc;", "abc"},
		{"trailing semicolon and spaces", "v=STSv1; id=abc ; ", "abc"},
		{"unknown field ignored", "v=STSv1; foo=bar; id=abc", "abc"},
		{"unknown field with odd characters ignored", "v=STSv1; id=abc; x-y.z=a,b/c", "abc"},
		{"empty field skipped", "v=STSv1;; id=abc", "abc"},
		{"id of 1 character", "v=STSv1; id=1", "1"},
		{"id of 32 characters", "v=STSv1; id=" + strings.Repeat("a", 32), strings.Repeat("a", 32)},
		{"repeated id: the first counts", "v=STSv1; id=first; id=second", "first"},
		{"repeated id: an invalid second is ignored", "v=STSv1; id=first; id=not-valid", "first"},

		{"id of 0 characters is invalid", "v=STSv1; id=", ""},
		{"id of 33 characters is invalid", "v=STSv1; id=" + strings.Repeat("a", 33), ""},
		{"id with a hyphen is invalid", "v=STSv1; id=2019-01-01", ""},
		{"id with a space is invalid", "v=STSv1; id=abc def", ""},
		{"missing id is invalid", "v=STSv1;", ""},
		{"version alone is invalid", "v=STSv1", ""},
		{"id field name is case-sensitive", "v=STSv1; ID=abc", ""},
		{"version is case-sensitive", "V=STSv1; id=abc", ""},
		{"version must come first", "id=abc; v=STSv1", ""},
		{"field without value is invalid", "v=STSv1; id=abc; junk", ""},
		{"field without name is invalid", "v=STSv1; id=abc; =x", ""},
		{"text after version is invalid", "v=STSv1x; id=abc", ""},
		{"leading space is invalid", " v=STSv1; id=abc", ""},
		{"empty record is invalid", "", ""},
		// sts-extension of RFC 8461 §3.1, the grammar TLS-RPT's record
		// shares (internal/txtfield): tlsrpt refused these, sts did not.
		{"extension name with % is invalid", "v=STSv1; id=abc; 1%=a", ""},
		{"extension value with = is invalid", "v=STSv1; id=abc; test==", ""},
		{"extension name starting with _ is invalid", "v=STSv1; id=abc; _x=1", ""},
		{"extension value with a space is invalid", "v=STSv1; id=abc; x=a b", ""},
		{"extension name of 32 characters", "v=STSv1; id=abc; " + strings.Repeat("x", 32) + "=1", "abc"},
		{"extension name of 33 characters is invalid", "v=STSv1; id=abc; " + strings.Repeat("x", 33) + "=1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := ParseRecord(tt.txt)
			if tt.wantID == "" {
				if err == nil {
					t.Fatalf("ParseRecord(%q) = %+v, want an error", tt.txt, rec)
				}
				var re *RecordError
				if !errors.As(err, &re) || !errors.Is(err, ErrInvalidRecord) || re.ResultType() != "sts-policy-invalid" {
					t.Fatalf("error %v (%T) is not a *RecordError matching ErrInvalidRecord", err, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRecord(%q): %v", tt.txt, err)
			}
			if rec.ID != tt.wantID {
				t.Fatalf("ID = %q, want %q", rec.ID, tt.wantID)
			}
		})
	}
}

func TestSelectRecord(t *testing.T) {
	tests := []struct {
		name    string
		txts    []string
		wantID  string
		wantErr error
	}{
		{"one record among others", []string{"v=spf1 -all", "v=STSv1; id=abc", "hello"}, "abc", nil},
		{"no record at all", nil, "", ErrNoRecord},
		{"only unrelated records", []string{"v=spf1 -all", "google-site-verification=x"}, "", ErrNoRecord},
		{"a later version is not a candidate", []string{"v=STSv2; id=abc"}, "", ErrNoRecord},
		{"v=STSv10 is not a candidate", []string{"v=STSv10; id=abc"}, "", ErrNoRecord},
		{"several records", []string{"v=STSv1; id=abc", "v=STSv1; id=def"}, "", ErrSeveralRecords},
		{"several records, one invalid", []string{"v=STSv1; id=abc", "v=STSv1 garbage"}, "", ErrSeveralRecords},
		{"identical records count twice", []string{"v=STSv1; id=abc", "v=STSv1; id=abc"}, "", ErrSeveralRecords},
		{"one invalid candidate", []string{"v=STSv1; id=a-b"}, "", ErrInvalidRecord},
		{"space before semicolon is a candidate", []string{"v=STSv1 ; id=abc"}, "abc", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, n, err := selectRecord(tt.txts)
			switch {
			case tt.wantErr == ErrNoRecord:
				if n != 0 {
					t.Fatalf("selectRecord(%q) found %d candidates, want none", tt.txts, n)
				}
			case tt.wantErr == ErrSeveralRecords:
				if n < 2 {
					t.Fatalf("selectRecord(%q) found %d candidates, want several", tt.txts, n)
				}
			case tt.wantErr != nil:
				if n != 1 || !errors.Is(err, tt.wantErr) {
					t.Fatalf("selectRecord(%q) = %+v, %d, %v; want %v", tt.txts, rec, n, err, tt.wantErr)
				}
			case n != 1 || err != nil || rec.ID != tt.wantID:
				t.Fatalf("selectRecord(%q) = %+v, %d, %v; want id %q", tt.txts, rec, n, err, tt.wantID)
			}
		})
	}
}

func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"v=STSv1; id=20160831085700Z",
		"v=STSv1;id=abc;",
		"v=STSv1 ; id=abc ; ext=1",
		"v=STSv1;; id=a; id=b",
		"v=STSv1; id=",
		"v=STSv1",
		"v=STSv1; id=" + strings.Repeat("z", 33),
		"v=STSv1; id=" + strings.Repeat("Z9", 16),
		"v=STSv1\t;\tid=x\x00",
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
		if !isRecordCandidate(txt) {
			t.Fatalf("%q parsed but is not a candidate record", txt)
		}
		if !validID(rec.ID) {
			t.Fatalf("%q parsed with invalid id %q", txt, rec.ID)
		}
		again, err := ParseRecord("v=STSv1; id=" + rec.ID)
		if err != nil || again != rec {
			t.Fatalf("round trip of %+v: %+v, %v", rec, again, err)
		}
	})
}
