package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

const googleSample = "../../shared/samples/tlsrpt-google-2020-04-18.json"

func readSample(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(googleSample)
	if err != nil {
		t.Skipf("Google's sample report: %v", err)
	}
	return data
}

func TestParseGoogleReport(t *testing.T) {
	data := readSample(t)
	for name, in := range map[string][]byte{"json": data, "gzip": Gzip(data)} {
		t.Run(name, func(t *testing.T) {
			r, err := ParseReport(bytes.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			want := &Report{
				OrganizationName: "Google Inc.",
				DateRange: DateRange{
					Start: time.Date(2020, 4, 18, 0, 0, 0, 0, time.UTC),
					End:   time.Date(2020, 4, 18, 23, 59, 59, 0, time.UTC),
				},
				ContactInfo: "smtp-tls-reporting@google.com",
				ReportID:    "2020-04-18T00:00:00Z_paranoidpenguin.net",
				Policies: []PolicyResult{{
					Policy: Policy{
						Type: PolicyTypeSTS,
						Strings: []string{"version: STSv1", "mode: enforce", "mx: server3.paranoidpenguin.net",
							"mx: *.paranoidpenguin.net", "max_age: 604800"},
						Domain: "paranoidpenguin.net",
					},
					Summary: Summary{TotalSuccessfulSessionCount: 5},
				}},
			}
			if !reflect.DeepEqual(r, want) {
				t.Fatalf("parsed\n%+v\nwant\n%+v", r, want)
			}
			sums := Summarize([]*Report{r})
			if len(sums) != 1 {
				t.Fatalf("%d domains", len(sums))
			}
			s := sums[0]
			if s.Domain != "paranoidpenguin.net" || s.Reports != 1 || s.Successful != 5 || s.Failed != 0 ||
				len(s.Failures) != 0 || !reflect.DeepEqual(s.Organizations, []string{"Google Inc."}) ||
				!s.Start.Equal(want.DateRange.Start) || !s.End.Equal(want.DateRange.End) {
				t.Fatalf("summary %+v", s)
			}
		})
	}
}

// baseReport is a report with every field; the cases below change it the
// way real senders do, or break it.
const baseReport = `{
  "organization-name": "Company-X",
  "date-range": {"start-datetime": "2016-04-01T00:00:00Z", "end-datetime": "2016-04-01T23:59:59Z"},
  "contact-info": "sts-reporting@company-x.example",
  "report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
  "policies": [{
    "policy": {
      "policy-type": "sts",
      "policy-string": ["version: STSv1", "mode: testing", "mx: *.mail.company-y.example", "max_age: 86400"],
      "policy-domain": "company-y.example",
      "mx-host": ["*.mail.company-y.example"]
    },
    "summary": {"total-successful-session-count": 5326, "total-failure-session-count": 303},
    "failure-details": [{
      "result-type": "certificate-expired",
      "sending-mta-ip": "2001:db8:abcd:0012::1",
      "receiving-mx-hostname": "mx1.mail.company-y.example",
      "receiving-mx-helo": "mx1.mail.company-y.example",
      "receiving-ip": "203.0.113.56",
      "failed-session-count": 100,
      "additional-information": "https://reports.company-x.example/report_info?id=5065427c-23d3",
      "failure-reason-code": "X509_V_ERR_CERT_HAS_EXPIRED"
    }, {
      "result-type": "starttls-not-supported",
      "sending-mta-ip": "2001:db8:abcd:0013::1",
      "receiving-mx-hostname": "mx2.mail.company-y.example",
      "receiving-ip": "203.0.113.57",
      "failed-session-count": 200
    }, {
      "result-type": "validation-failure",
      "sending-mta-ip": "198.51.100.62",
      "receiving-ip": "203.0.113.58",
      "receiving-mx-hostname": "mx-backup.mail.company-y.example",
      "failed-session-count": 3,
      "failure-reason-code": "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"
    }]
  }]
}`

func TestParseReportTolerance(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		check    func(t *testing.T, r *Report)
	}{
		{"all fields", "", "", func(t *testing.T, r *Report) {
			fd := r.Policies[0].FailureDetails[0]
			if fd.ReceivingMXHelo != "mx1.mail.company-y.example" || fd.FailureReasonCode != "X509_V_ERR_CERT_HAS_EXPIRED" ||
				fd.AdditionalInformation == "" || fd.FailedSessionCount != 100 || len(r.Policies[0].Policy.MXHosts) != 1 {
				t.Errorf("first failure detail %+v", fd)
			}
		}},
		{"failure detail without sending-mta-ip", `"sending-mta-ip": "198.51.100.62",`, "", func(t *testing.T, r *Report) {
			if r.Policies[0].FailureDetails[2].SendingMTAIP != "" {
				t.Error("sending-mta-ip")
			}
		}},
		{"empty sending-mta-ip", `"sending-mta-ip": "198.51.100.62"`, `"sending-mta-ip": ""`, nil},
		{"failure detail without receiving-mx-hostname", `"receiving-mx-hostname": "mx2.mail.company-y.example",`, "", nil},
		{"contact-info null", `"contact-info": "sts-reporting@company-x.example"`, `"contact-info": null`, func(t *testing.T, r *Report) {
			if r.ContactInfo != "" {
				t.Error("contact-info")
			}
		}},
		{"contact-info missing", `"contact-info": "sts-reporting@company-x.example",`, "", nil},
		{"policy-string missing", `"policy-string": ["version: STSv1", "mode: testing", "mx: *.mail.company-y.example", "max_age: 86400"],`, "", nil},
		{"policy-domain missing", `"policy-domain": "company-y.example",`, "", func(t *testing.T, r *Report) {
			if r.Policies[0].Policy.Domain != "" {
				t.Error("policy-domain")
			}
		}},
		{"mx-host as a single string", `"mx-host": ["*.mail.company-y.example"]`, `"mx-host": "*.mail.company-y.example"`, func(t *testing.T, r *Report) {
			if got := r.Policies[0].Policy.MXHosts; len(got) != 1 || got[0] != "*.mail.company-y.example" {
				t.Errorf("mx-host %q", got)
			}
		}},
		{"mx-host null", `"mx-host": ["*.mail.company-y.example"]`, `"mx-host": null`, func(t *testing.T, r *Report) {
			if r.Policies[0].Policy.MXHosts != nil {
				t.Error("mx-host")
			}
		}},
		{"end-datetime at the next midnight", `"2016-04-01T23:59:59Z"`, `"2016-04-02T00:00:00Z"`, func(t *testing.T, r *Report) {
			if r.DateRange.End.Sub(r.DateRange.Start) != 24*time.Hour {
				t.Error("date-range")
			}
		}},
		{"date-time with offset and fraction", `"2016-04-01T00:00:00Z"`, `"2016-04-01T02:00:00.000+02:00"`, nil},
		// Microsoft's reports of 2023 ("2023-01-10T00:00:00"): read as UTC,
		// RFC 8460 §4.1's zone, rather than lose the whole report.
		{"date-times without a zone are UTC", `"start-datetime": "2016-04-01T00:00:00Z", "end-datetime": "2016-04-01T23:59:59Z"`,
			`"start-datetime": "2016-04-01T00:00:00", "end-datetime": "2016-04-01T23:59:59.5"`, func(t *testing.T, r *Report) {
				if !r.DateRange.Start.Equal(time.Date(2016, 4, 1, 0, 0, 0, 0, time.UTC)) || r.DateRange.End.Location() != time.UTC {
					t.Errorf("date-range %v", r.DateRange)
				}
			}},
		{"extra fields", `"report-id"`, `"x-vendor": {"a": [1, 2]}, "report-id"`, nil},
		{"unknown result type is kept", `"result-type": "validation-failure"`, `"result-type": "certificate-revoked"`, func(t *testing.T, r *Report) {
			if r.Policies[0].FailureDetails[2].ResultType != "certificate-revoked" {
				t.Error("result-type")
			}
		}},
		{"no failure details", `"failure-details"`, `"x-failure-details"`, nil},
		{"empty policies", baseReport[strings.Index(baseReport, `[{
    "policy"`) : strings.LastIndex(baseReport, "]")+1], "[]", nil},
		{"byte order mark", `{
  "organization-name"`, "\ufeff" + `{
  "organization-name"`, nil},
		{"upper-case policy-domain is lower-cased", `"company-y.example"`, `"Company-Y.Example."`, func(t *testing.T, r *Report) {
			if r.Policies[0].Policy.Domain != "company-y.example" {
				t.Errorf("domain %q", r.Policies[0].Policy.Domain)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseReport
			if tt.old != "" {
				if !strings.Contains(in, tt.old) {
					t.Fatalf("test case does not apply: %q not in the report", tt.old)
				}
				in = strings.Replace(in, tt.old, tt.new, 1)
			}
			r, err := ParseReport(strings.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestParseReportStrictness(t *testing.T) {
	tests := []struct {
		name, old, new, field string
	}{
		{"organization-name missing", `"organization-name": "Company-X",`, "", "organization-name"},
		{"organization-name empty", `"Company-X"`, `""`, "organization-name"},
		{"report-id missing", `"report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",`, "", "report-id"},
		{"date-range missing", `"date-range": {"start-datetime": "2016-04-01T00:00:00Z", "end-datetime": "2016-04-01T23:59:59Z"},`, "", "date-range"},
		{"start-datetime missing", `"start-datetime": "2016-04-01T00:00:00Z", `, "", "date-range.start-datetime"},
		{"end-datetime not RFC 3339", `"2016-04-01T23:59:59Z"`, `"2016-04-01 23:59:59"`, "date-range.end-datetime"},
		{"date-time with a space", `"2016-04-01T00:00:00Z"`, `"2016-04-01 00:00:00"`, "date-range.start-datetime"},
		{"date without time", `"2016-04-01T00:00:00Z"`, `"2016-04-01"`, "date-range.start-datetime"},
		{"end before start", `"2016-04-01T23:59:59Z"`, `"2016-03-31T23:59:59Z"`, "date-range"},
		{"policies missing", baseReport[strings.Index(baseReport, `,
  "policies"`) : len(baseReport)-1], "", "policies"},
		{"policy-type missing", `"policy-type": "sts",`, "", "policies[0].policy.policy-type"},
		{"policy-type unknown", `"policy-type": "sts"`, `"policy-type": "dane"`, "policies[0].policy.policy-type"},
		{"summary missing", `"summary": {"total-successful-session-count": 5326, "total-failure-session-count": 303},`, "", "policies[0].summary"},
		{"success count missing", `"total-successful-session-count": 5326, `, "", "policies[0].summary.total-successful-session-count"},
		{"negative failure count", `"total-failure-session-count": 303`, `"total-failure-session-count": -3`, "policies[0].summary.total-failure-session-count"},
		{"failed-session-count missing", `"failed-session-count": 200`, `"x": 1`, "policies[0].failure-details[1].failed-session-count"},
		{"result-type missing", `"result-type": "starttls-not-supported",`, "", "policies[0].failure-details[1].result-type"},
		{"count is a string", `"failed-session-count": 3,`, `"failed-session-count": "3",`, ""},
		{"count is a fraction", `"failed-session-count": 3,`, `"failed-session-count": 3.5,`, ""},
		{"organization-name is a number", `"Company-X"`, `42`, ""},
		{"two objects", baseReport, baseReport + baseReport, ""},
		{"not JSON", baseReport, "<feedback/>", ""},
		{"truncated", baseReport, baseReport[:200], ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(baseReport, tt.old) {
				t.Fatalf("test case does not apply: %q not in the report", tt.old)
			}
			in := strings.Replace(baseReport, tt.old, tt.new, 1)
			_, err := ParseReport(strings.NewReader(in))
			var re *ReportError
			if !errors.As(err, &re) || !errors.Is(err, ErrInvalidReport) {
				t.Fatalf("error %v, want a *ReportError", err)
			}
			if re.Field != tt.field {
				t.Fatalf("error about %q, want %q: %v", re.Field, tt.field, err)
			}
		})
	}
}

func TestParseReportSizeLimits(t *testing.T) {
	// The limit is lowered to 1 MiB so that the test does not inflate
	// 16 MiB; the code path is ParseReport's.
	const limit = 1 << 20
	// A gzip bomb: a few kilobytes that inflate past the limit.
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zw.Write(make([]byte, limit+1))
	zw.Close()
	if _, err := parseReport(bytes.NewReader(bomb.Bytes()), limit); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("gzip bomb of %d bytes: %v", bomb.Len(), err)
	}
	big := io.MultiReader(strings.NewReader(`{"organization-name":"`), io.LimitReader(neverEnding('a'), limit))
	if _, err := parseReport(big, limit); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("large JSON: %v", err)
	}
	// Just under the limit is read (and then judged on its content).
	if _, err := parseReport(bytes.NewReader(Gzip([]byte(baseReport))), len(baseReport)); err != nil {
		t.Fatalf("report of exactly the limit: %v", err)
	}
	if _, err := ParseReport(bytes.NewReader([]byte{0x1f, 0x8b, 1, 2, 3})); !errors.Is(err, ErrInvalidReport) {
		t.Fatalf("broken gzip: %v", err)
	}
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

func TestOwnReportParsesBack(t *testing.T) {
	r := buildDayReport(t)
	js, _ := r.JSON()
	got, err := ParseReport(bytes.NewReader(Gzip(js)))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := got.JSON()
	if !bytes.Equal(js, again) {
		t.Fatalf("round trip\n%s\n%s", js, again)
	}
}

func TestParseReportMail(t *testing.T) {
	m, raw := testReportMail(t)
	want, _ := m.report.JSON()
	got, err := ParseReportMail(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if js, _ := got.JSON(); !bytes.Equal(js, want) {
		t.Fatalf("report from the mail\n%s\nwant\n%s", js, want)
	}

	noDomain := strings.Replace(baseReport, `"policy-domain": "company-y.example",`, "", 1)
	tests := []struct {
		name    string
		mail    string
		wantErr error
		domain  string
	}{
		{"json part, quoted-printable, domain from the header", "From: a@x.example\r\nTLS-Report-Domain: Company-Y.example\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/report; report-type=tlsrpt; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
			"--b\r\nContent-Type: application/tlsrpt+json\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
			strings.ReplaceAll(noDomain, "=", "=3D") + "\r\n--b--\r\n", nil, "company-y.example"},
		{"generic gzip part named .json.gz", "From: a@x.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
			"--b\r\nContent-Type: application/gzip\r\nContent-Disposition: attachment; filename=\"x!company-y.example!1!2.json.gz\"\r\n" +
			"Content-Transfer-Encoding: base64\r\n\r\n" + b64Lines(Gzip([]byte(baseReport))) + "\r\n--b--\r\n", nil, "company-y.example"},
		{"whole message is the report", "From: a@x.example\r\nContent-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			b64Lines(Gzip([]byte(baseReport))), nil, "company-y.example"},
		{"forwarded as message/rfc822", "From: me@x.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n" +
			"--outer\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--outer\r\nContent-Type: message/rfc822\r\n\r\n" +
			string(raw) + "\r\n--outer--\r\n", nil, "example.com"},
		{"no report part", "From: a@x.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
			"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--b--\r\n", ErrNoReport, ""},
		{"plain text mail", "From: a@x.example\r\nSubject: hi\r\n\r\nhello\r\n", ErrNoReport, ""},
		{"not a mail", "\x00\x01", ErrNoReport, ""},
		{"broken report", "From: a@x.example\r\nContent-Type: application/tlsrpt+json\r\n\r\n{\"policies\":[]}", ErrInvalidReport, ""},
		{"too deeply nested", nested(maxMIMEDepth + 2), ErrNoReport, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseReportMail(strings.NewReader(tt.mail))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := r.Policies[0].Policy.Domain; d != tt.domain {
				t.Fatalf("policy-domain %q, want %q", d, tt.domain)
			}
		})
	}
}

func b64Lines(data []byte) string {
	var b bytes.Buffer
	writeBase64Lines(&b, data)
	return b.String()
}

// nested returns a mail whose report sits depth multiparts deep.
func nested(depth int) string {
	body := "Content-Type: application/tlsrpt+json\r\n\r\n" + baseReport + "\r\n"
	for i := range depth {
		bd := "b" + strings.Repeat("x", i)
		body = "Content-Type: multipart/mixed; boundary=" + bd + "\r\n\r\n--" + bd + "\r\n" + body + "--" + bd + "--\r\n"
	}
	return "From: a@x.example\r\nMIME-Version: 1.0\r\n" + body
}

func TestSummarize(t *testing.T) {
	google, err := ParseReport(bytes.NewReader(readSample(t)))
	if err != nil {
		t.Fatal(err)
	}
	x, _ := ParseReport(strings.NewReader(baseReport))
	x2, _ := ParseReport(strings.NewReader(strings.Replace(baseReport, `"Company-X"`, `"Company-Z"`, 1)))
	ours := buildDayReport(t)
	sums := Summarize([]*Report{google, x, x2, ours})
	var keys []string
	for _, s := range sums {
		keys = append(keys, s.Domain+" "+string(s.PolicyType))
	}
	if !reflect.DeepEqual(keys, []string{"company-y.example sts", "example.com sts", "example.com tlsa", "paranoidpenguin.net sts"}) {
		t.Fatalf("summaries %q", keys)
	}
	y := sums[0]
	if y.Reports != 2 || y.Successful != 2*5326 || y.Failed != 2*303 ||
		!reflect.DeepEqual(y.Organizations, []string{"Company-X", "Company-Z"}) ||
		!reflect.DeepEqual(y.Failures, map[ResultType]int64{
			ResultCertificateExpired: 200, ResultSTARTTLSNotSupported: 400, ResultValidationFailure: 6}) {
		t.Fatalf("company-y.example %+v", y)
	}
	// Our own report of example.com: its MTA-STS and its DANE sessions,
	// each summed under its own policy.
	if e := sums[1]; e.Reports != 1 || e.Successful != 40 || e.Failed != 5 || len(e.Failures) != 2 {
		t.Fatalf("example.com sts %+v", e)
	}
	if e := sums[2]; e.Reports != 1 || e.Successful != 7 || e.Failed != 1 || e.Failures[ResultTLSAInvalid] != 1 {
		t.Fatalf("example.com tlsa %+v", e)
	}
	if g := sums[3]; g.Successful != 5 || g.Failed != 0 {
		t.Fatalf("paranoidpenguin.net %+v", g)
	}
}

// TestSummarizeSameSessionsUnderTwoPolicies: Microsoft reports a domain's
// sessions under its sts and its tlsa policy alike; summed per policy, no
// session is counted twice.
func TestSummarizeSameSessionsUnderTwoPolicies(t *testing.T) {
	both := strings.Replace(baseReport, `"policies": [{`, `"policies": [{
    "policy": {"policy-type": "tlsa", "policy-string": ["3 1 1 AB"], "policy-domain": "company-y.example", "mx-host": "mx.company-y.example"},
    "summary": {"total-successful-session-count": 5326, "total-failure-session-count": 303}
  }, {`, 1)
	if both == baseReport {
		t.Fatal("test case does not apply")
	}
	r, err := ParseReport(strings.NewReader(both))
	if err != nil {
		t.Fatal(err)
	}
	sums := Summarize([]*Report{r})
	if len(sums) != 2 {
		t.Fatalf("%d summaries, want one per policy type", len(sums))
	}
	for _, s := range sums {
		if s.Successful != 5326 || s.Failed != 303 || s.Reports != 1 {
			t.Errorf("%s %s: %d successful, %d failed in %d reports; want the report's 5326 and 303 once", s.Domain, s.PolicyType, s.Successful, s.Failed, s.Reports)
		}
	}
}

func FuzzParseReport(f *testing.F) {
	f.Add([]byte(baseReport))
	f.Add(Gzip([]byte(baseReport)))
	if data, err := os.ReadFile(googleSample); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`{"organization-name":"o","report-id":"r","date-range":{"start-datetime":"2020-01-01T00:00:00Z","end-datetime":"2020-01-02T00:00:00Z"},"policies":[{"policy":{"policy-type":"no-policy-found","mx-host":"m"},"summary":{"total-successful-session-count":0,"total-failure-session-count":1},"failure-details":[{"result-type":"x","failed-session-count":1}]}]}`))
	f.Add([]byte{0x1f, 0x8b})
	f.Add([]byte(strings.Replace(baseReport, `"company-y.example"`, `"a.."`, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReport(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrInvalidReport) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if r.OrganizationName == "" || r.ReportID == "" || r.DateRange.End.Before(r.DateRange.Start) {
			t.Fatalf("accepted %+v", r)
		}
		for _, p := range r.Policies {
			if !p.Policy.Type.Known() || p.Summary.TotalFailureSessionCount < 0 || p.Summary.TotalSuccessfulSessionCount < 0 {
				t.Fatalf("accepted policy %+v", p)
			}
		}
		// What was accepted writes out and parses back the same.
		js, err := r.JSON()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseReport(bytes.NewReader(js))
		if err != nil {
			t.Fatalf("own output %s does not parse: %v", js, err)
		}
		js2, _ := again.JSON()
		if !bytes.Equal(js, js2) {
			t.Fatalf("round trip\n%s\n%s", js, js2)
		}
	})
}

func FuzzParseReportMail(f *testing.F) {
	f.Add([]byte("From: a@x.example\r\nContent-Type: application/tlsrpt+json\r\n\r\n" + baseReport))
	f.Add([]byte("From: a@x.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=tlsrpt; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		b64Lines(Gzip([]byte(baseReport))) + "\r\n--b--\r\n"))
	f.Add([]byte(nested(3)))
	f.Add([]byte("From: a@x.example\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: application/tlsrpt+json\r\n\r\n{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReportMail(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrNoReport) && !errors.Is(err, ErrInvalidReport) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if r == nil || r.ReportID == "" {
			t.Fatalf("accepted %+v", r)
		}
	})
}

// A policy-domain is folded once (one trailing dot is the root label), so a
// report read, written and read again names the same domain, however its
// sender spelt it.
func TestParsedPolicyDomainRoundTrips(t *testing.T) {
	for _, domain := range []string{"Company-Y.Example.", "a..", "a.", ".", "A..B"} {
		t.Run(domain, func(t *testing.T) {
			in := strings.Replace(baseReport, `"policy-domain": "company-y.example"`, `"policy-domain": "`+domain+`"`, 1)
			first, err := ParseReport(strings.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			js, _ := first.JSON()
			second, err := ParseReport(bytes.NewReader(js))
			if err != nil {
				t.Fatal(err)
			}
			if a, b := first.Policies[0].Policy.Domain, second.Policies[0].Policy.Domain; a != b {
				t.Errorf("policy-domain %q read as %q, then as %q", domain, a, b)
			}
		})
	}
}
