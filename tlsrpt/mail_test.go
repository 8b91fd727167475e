package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func testReportMail(t *testing.T) (*reportMail, []byte) {
	t.Helper()
	rep := buildDayReport(t)
	rep.ReportID = NewReportID(DayOf(day0), "example.com", "mail.sender.example")
	js, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	m := &reportMail{from: "tlsrpt@sender.example", to: "tlsrpt@example.com", submitter: "mail.sender.example",
		policyDomain: "example.com", report: rep, gz: Gzip(js), date: day0.Add(26 * time.Hour)}
	return m, m.compose()
}

// TestReportMailRFC8460Section5_3 parses a composed report mail back and
// checks each thing RFC 8460 §5.3 asks of it.
func TestReportMailRFC8460Section5_3(t *testing.T) {
	m, raw := testReportMail(t)
	checkLines(t, raw)
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Header
	if h.Get("TLS-Report-Domain") != "example.com" || h.Get("TLS-Report-Submitter") != "mail.sender.example" {
		t.Errorf("TLS-Report-Domain %q, TLS-Report-Submitter %q", h.Get("TLS-Report-Domain"), h.Get("TLS-Report-Submitter"))
	}
	// The Subject of RFC 8460 §5.3 (unfolded).
	subject := regexp.MustCompile(`^Report Domain: (\S+) +Submitter: (\S+) +Report-ID: <([^<>@\s]+@[^<>@\s]+)>$`)
	sm := subject.FindStringSubmatch(h.Get("Subject"))
	if sm == nil || sm[1] != "example.com" || sm[2] != "mail.sender.example" || sm[3] != m.report.ReportID {
		t.Errorf("Subject %q", h.Get("Subject"))
	}
	if from, err := mail.ParseAddress(h.Get("From")); err != nil || from.Address != "tlsrpt@sender.example" {
		t.Errorf("From %q: %v", h.Get("From"), err)
	}
	if to, err := mail.ParseAddress(h.Get("To")); err != nil || to.Address != "tlsrpt@example.com" {
		t.Errorf("To %q: %v", h.Get("To"), err)
	}
	if d, err := h.Date(); err != nil || !d.Equal(m.date) {
		t.Errorf("Date %q: %v", h.Get("Date"), err)
	}
	if _, err := mail.ParseAddress("<" + strings.Trim(h.Get("Message-ID"), "<>") + ">"); err != nil {
		t.Errorf("Message-ID %q: %v", h.Get("Message-ID"), err)
	}
	if h.Get("TLS-Required") != "No" || h.Get("MIME-Version") != "1.0" || h.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("TLS-Required %q, MIME-Version %q, Auto-Submitted %q", h.Get("TLS-Required"), h.Get("MIME-Version"), h.Get("Auto-Submitted"))
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "tlsrpt" || params["boundary"] == "" {
		t.Fatalf("Content-Type %q: %v", h.Get("Content-Type"), err)
	}

	mr := multipart.NewReader(msg.Body, params["boundary"])
	// First part: for people.
	p, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct != "text/plain" {
		t.Errorf("first part is %q, want text/plain", ct)
	}
	text, _ := io.ReadAll(p)
	if !strings.Contains(string(text), "Successful TLS sessions: 47") || !strings.Contains(string(text), "Failed TLS sessions: 6") {
		t.Errorf("text part %q", text)
	}
	// Second part: the gzipped report.
	p, err = mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct != "application/tlsrpt+gzip" {
		t.Errorf("second part is %q, want application/tlsrpt+gzip", ct)
	}
	disp, dparams, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
	if err != nil || disp != "attachment" {
		t.Errorf("Content-Disposition %q: %v", p.Header.Get("Content-Disposition"), err)
	}
	// RFC 8460 §5.1: sender!policy-domain!begin-timestamp!end-timestamp!unique-id.json.gz
	begin, end := DayOf(day0).Start().Unix(), DayOf(day0).End().Unix()
	wantName := regexp.MustCompile(`^mail\.sender\.example!example\.com!` +
		regexp.QuoteMeta(itoa(begin)) + "!" + regexp.QuoteMeta(itoa(end)) + `![A-Za-z0-9]+\.json\.gz$`)
	if !wantName.MatchString(dparams["filename"]) || dparams["filename"] != FileName("mail.sender.example", "example.com", m.report) {
		t.Errorf("file name %q", dparams["filename"])
	}
	if p.Header.Get("Content-Transfer-Encoding") != "base64" {
		t.Errorf("Content-Transfer-Encoding %q", p.Header.Get("Content-Transfer-Encoding"))
	}
	b64, _ := io.ReadAll(p)
	gz, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(b64)))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.NewDecoder(zr).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want, _ := m.report.JSON()
	gotJS, _ := got.JSON()
	if !bytes.Equal(gotJS, want) {
		t.Errorf("report in the mail\n%s\nwant\n%s", gotJS, want)
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Errorf("a third part: %v", err)
	}
}

// checkLines fails on a line not ended by CRLF, longer than 998 octets
// (RFC 5322 §2.1.1) or not ASCII.
func checkLines(t *testing.T, raw []byte) {
	t.Helper()
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		t.Error("message does not end in CRLF")
	}
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if len(line) > 998 || bytes.ContainsAny(line, "\r\n") {
			t.Errorf("line %d: %d octets or a bare CR/LF: %q", i+1, len(line), line)
		}
		for _, c := range line {
			if c >= 0x80 {
				t.Fatalf("line %d is not ASCII: %q", i+1, line)
			}
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestFileName(t *testing.T) {
	r := &Report{DateRange: DateRange{Start: DayOf(day0).Start(), End: DayOf(day0).End()},
		ReportID: "2020-04-18.example.net.abcdefghijklmnop@mail.sender.example.com"}
	got := FileName("Mail.Sender.Example.COM.", "example.net", r)
	want := "mail.sender.example.com!example.net!1587168000!1587254399!abcdefghijklmnop.json.gz"
	if got != want {
		t.Fatalf("FileName = %q, want %q", got, want)
	}
	if !reflect.DeepEqual(strings.Split(got, "!")[2:4], []string{"1587168000", "1587254399"}) {
		t.Fatal("timestamps")
	}
}
