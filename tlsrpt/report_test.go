package tlsrpt

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/mail"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// recordDay records the day the issue asks a report to be checked on:
// successes, failures of three result types, two policies and two MX
// hosts, plus sessions of another domain and of the next day that must
// stay out of the report.
func recordDay(t *testing.T) (*Recorder, Day) {
	t.Helper()
	r := NewRecorder(RecorderConfig{})
	at := day0.Add(13 * time.Hour)
	sending := netip.MustParseAddr("192.0.2.10")
	mx1ip := netip.MustParseAddr("2001:db8::25")
	mx2ip := netip.MustParseAddr("198.51.100.25")
	rec := func(n int, p Policy, f *Failure) {
		for range n {
			r.Record(Session{Time: at, Policy: p, Failure: f})
		}
	}
	rec(40, stsPolicy, nil)
	rec(7, tlsaPolicy, nil)
	rec(3, stsPolicy, &Failure{ResultType: ResultCertificateExpired, SendingMTAIP: sending,
		ReceivingMXHostname: "mx2.example.com", ReceivingMXHelo: "mx2.example.com", ReceivingIP: mx2ip})
	rec(2, stsPolicy, &Failure{ResultType: ResultSTARTTLSNotSupported, SendingMTAIP: sending,
		ReceivingMXHostname: "mx2.example.com", ReceivingIP: mx2ip,
		AdditionalInformation: "https://reports.sender.example/info?id=1"})
	rec(1, tlsaPolicy, &Failure{ResultType: ResultTLSAInvalid, SendingMTAIP: sending,
		ReceivingMXHostname: "mx1.example.com", ReceivingIP: mx1ip, FailureReasonCode: "no TLSA record matched the chain"})
	rec(5, NewPolicy(PolicyTypeSTS, "other.example", []string{"version: STSv1"}, nil), nil)
	r.Record(Session{Time: at.Add(24 * time.Hour), Policy: stsPolicy})
	return r, DayOf(at)
}

func buildDayReport(t *testing.T) *Report {
	t.Helper()
	r, d := recordDay(t)
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	counts, err := r.Store().DayCounts(context.Background(), d, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	h := ReportHeader{OrganizationName: "Sender Inc.", ContactInfo: "tlsrpt@sender.example", ReportID: "2020-04-18.example.com.x1@sender.example"}
	return NewReport(h, d, counts)
}

// TestReportFieldsRFC8460Section4_4 checks the JSON of a recorded day field
// by field against the schema of RFC 8460 §4.4.
func TestReportFieldsRFC8460Section4_4(t *testing.T) {
	js, err := buildDayReport(t).JSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	keys(t, "report", doc, []string{"organization-name", "date-range", "contact-info", "report-id", "policies"}, nil)
	if str(t, doc, "organization-name") != "Sender Inc." {
		t.Error("organization-name")
	}
	// date-range: RFC 3339 §5.6 date-times covering the whole UTC day (§4.1).
	dr := doc["date-range"].(map[string]any)
	keys(t, "date-range", dr, []string{"start-datetime", "end-datetime"}, nil)
	start, err1 := time.Parse(time.RFC3339, str(t, dr, "start-datetime"))
	end, err2 := time.Parse(time.RFC3339, str(t, dr, "end-datetime"))
	if err1 != nil || err2 != nil || str(t, dr, "start-datetime") != "2020-04-18T00:00:00Z" ||
		str(t, dr, "end-datetime") != "2020-04-18T23:59:59Z" || end.Sub(start) != 24*time.Hour-time.Second {
		t.Errorf("date-range %v", dr)
	}
	// contact-info: an RFC 5322 addr-spec.
	if a, err := mail.ParseAddress(str(t, doc, "contact-info")); err != nil || a.Address != "tlsrpt@sender.example" {
		t.Errorf("contact-info %q: %v", doc["contact-info"], err)
	}
	if str(t, doc, "report-id") == "" {
		t.Error("report-id empty")
	}
	policies := doc["policies"].([]any)
	if len(policies) != 2 {
		t.Fatalf("%d policies, want 2", len(policies))
	}
	type want struct {
		typ, mx        string
		ok, failed     int64
		failureDetails int
		resultTypes    []string
	}
	wants := []want{
		{"sts", "mx1.example.com", 40, 5, 2, []string{"certificate-expired", "starttls-not-supported"}},
		{"tlsa", "mx1.example.com", 7, 1, 1, []string{"tlsa-invalid"}},
	}
	for i, pv := range policies {
		w := wants[i]
		p := pv.(map[string]any)
		keys(t, "policies[]", p, []string{"policy", "summary", "failure-details"}, nil)
		pol := p["policy"].(map[string]any)
		keys(t, "policy", pol, []string{"policy-type", "policy-string", "policy-domain", "mx-host"}, nil)
		if str(t, pol, "policy-type") != w.typ || str(t, pol, "policy-domain") != "example.com" {
			t.Errorf("policy %d: %v", i, pol)
		}
		ps := strList(t, pol, "policy-string")
		mx := strList(t, pol, "mx-host")
		if len(ps) == 0 || len(mx) == 0 || mx[0] != w.mx {
			t.Errorf("policy %d: policy-string %q, mx-host %q", i, ps, mx)
		}
		sum := p["summary"].(map[string]any)
		keys(t, "summary", sum, []string{"total-successful-session-count", "total-failure-session-count"}, nil)
		if num(t, sum, "total-successful-session-count") != w.ok || num(t, sum, "total-failure-session-count") != w.failed {
			t.Errorf("policy %d summary %v", i, sum)
		}
		fds := p["failure-details"].([]any)
		if len(fds) != w.failureDetails {
			t.Fatalf("policy %d: %d failure details, want %d", i, len(fds), w.failureDetails)
		}
		var total int64
		var types []string
		for _, fv := range fds {
			fd := fv.(map[string]any)
			keys(t, "failure-details[]", fd,
				[]string{"result-type", "sending-mta-ip", "receiving-mx-hostname", "receiving-ip", "failed-session-count"},
				[]string{"receiving-mx-helo", "additional-information", "failure-reason-code"})
			rt := str(t, fd, "result-type")
			if !ResultType(rt).Known() {
				t.Errorf("result-type %q", rt)
			}
			types = append(types, rt)
			for _, k := range []string{"sending-mta-ip", "receiving-ip"} {
				if _, err := netip.ParseAddr(str(t, fd, k)); err != nil {
					t.Errorf("%s %q: %v", k, fd[k], err)
				}
			}
			if n := num(t, fd, "failed-session-count"); n <= 0 {
				t.Errorf("failed-session-count %d", n)
			} else {
				total += n
			}
		}
		if total != w.failed || !slices.Equal(types, w.resultTypes) {
			t.Errorf("policy %d: failure details sum to %d of types %q", i, total, types)
		}
	}
}

// keys fails unless m has every required key, and no key that is neither
// required nor optional.
func keys(t *testing.T, what string, m map[string]any, required, optional []string) {
	t.Helper()
	for _, k := range required {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: missing %q", what, k)
		}
	}
	for k := range m {
		if !slices.Contains(required, k) && !slices.Contains(optional, k) {
			t.Errorf("%s: unexpected field %q", what, k)
		}
	}
}

func str(t *testing.T, m map[string]any, k string) string {
	t.Helper()
	s, ok := m[k].(string)
	if !ok {
		t.Errorf("%q is %T, want a string", k, m[k])
	}
	return s
}

func strList(t *testing.T, m map[string]any, k string) []string {
	t.Helper()
	a, ok := m[k].([]any)
	if !ok {
		t.Errorf("%q is %T, want an array", k, m[k])
	}
	var out []string
	for _, v := range a {
		s, ok := v.(string)
		if !ok {
			t.Errorf("%q holds %T, want strings", k, v)
		}
		out = append(out, s)
	}
	return out
}

// num returns an integer JSON number (RFC 8460 §4.4: counts are integers
// encoded as JSON numbers).
func num(t *testing.T, m map[string]any, k string) int64 {
	t.Helper()
	n, ok := m[k].(json.Number)
	if !ok {
		t.Errorf("%q is %T, want a number", k, m[k])
		return math.MinInt64
	}
	i, err := n.Int64()
	if err != nil {
		t.Errorf("%q = %s, want an integer", k, n)
	}
	return i
}

func TestReportValues(t *testing.T) {
	r := buildDayReport(t)
	sts := r.Policies[0]
	wantDetails := []FailureDetail{
		{ResultType: ResultCertificateExpired, SendingMTAIP: "192.0.2.10", ReceivingMXHostname: "mx2.example.com",
			ReceivingMXHelo: "mx2.example.com", ReceivingIP: "198.51.100.25", FailedSessionCount: 3},
		{ResultType: ResultSTARTTLSNotSupported, SendingMTAIP: "192.0.2.10", ReceivingMXHostname: "mx2.example.com",
			ReceivingIP: "198.51.100.25", FailedSessionCount: 2, AdditionalInformation: "https://reports.sender.example/info?id=1"},
	}
	if !reflect.DeepEqual(sts.FailureDetails, wantDetails) {
		t.Errorf("sts failure details\n got %+v\nwant %+v", sts.FailureDetails, wantDetails)
	}
	if !slices.Equal(sts.Policy.MXHosts, []string{"mx1.example.com", "mx2.example.com"}) || len(sts.Policy.Strings) != 5 {
		t.Errorf("sts policy %+v", sts.Policy)
	}
	tlsa := r.Policies[1].FailureDetails
	if len(tlsa) != 1 || tlsa[0].ReceivingIP != "2001:db8::25" || tlsa[0].FailureReasonCode != "no TLSA record matched the chain" {
		t.Errorf("tlsa failure details %+v", tlsa)
	}
	if s := r.Summary(); s.TotalSuccessfulSessionCount != 47 || s.TotalFailureSessionCount != 6 {
		t.Errorf("report summary %+v", s)
	}
}

func TestReportIsDeterministic(t *testing.T) {
	r, d := recordDay(t)
	r.Flush(context.Background())
	counts, _ := r.Store().DayCounts(context.Background(), d, "example.com")
	h := ReportHeader{OrganizationName: "Sender Inc.", ContactInfo: "tlsrpt@sender.example", ReportID: "id@sender.example"}
	first, _ := NewReport(h, d, counts).JSON()
	for range 20 {
		// Split the counts and shuffle them, as several flushes would.
		var parts []Counts
		for _, c := range counts {
			half := Counts{Day: c.Day, Policy: c.Policy, Successful: c.Successful / 2, Failures: map[Failure]int64{}}
			rest := Counts{Day: c.Day, Policy: c.Policy, Successful: c.Successful - half.Successful, Failures: c.Failures}
			parts = append(parts, rest, half)
		}
		rand.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
		again, _ := NewReport(h, d, parts).JSON()
		if !bytes.Equal(first, again) {
			t.Fatalf("reports differ:\n%s\n%s", first, again)
		}
	}
}

func TestReportOfNoPolicyFoundOmitsPolicyStrings(t *testing.T) {
	d := DayOf(day0)
	r := NewReport(ReportHeader{ReportID: "x"}, d, []Counts{
		{Day: d, Policy: noPolicy, Successful: 2},
		{Day: d, Policy: stsPolicy}, // no sessions: left out
	})
	js, _ := r.JSON()
	want := `"policies":[{"policy":{"policy-type":"no-policy-found","policy-domain":"example.org"},` +
		`"summary":{"total-successful-session-count":2,"total-failure-session-count":0}}]`
	if !strings.Contains(string(js), want) {
		t.Fatalf("report %s\nwant it to contain %s", js, want)
	}
	empty, _ := NewReport(ReportHeader{ReportID: "x"}, d, nil).JSON()
	if !strings.Contains(string(empty), `"policies":[]`) {
		t.Fatalf("empty report %s", empty)
	}
}

func TestNewReportID(t *testing.T) {
	id := NewReportID(DayOf(day0), "Example.NET", "mail.sender.example")
	if !strings.HasPrefix(id, "2020-04-18.example.net.") || !strings.HasSuffix(id, "@mail.sender.example") {
		t.Fatalf("report ID %q", id)
	}
	if _, err := mail.ParseAddress("x <" + id + ">"); err != nil {
		t.Fatalf("report ID %q is not in msg-id form: %v", id, err)
	}
	u := uniqueID(id)
	if len(u) != 26 || strings.ContainsAny(u, ".@-") {
		t.Fatalf("unique-id %q", u)
	}
	if other := NewReportID(DayOf(day0), "example.net", "mail.sender.example"); other == id {
		t.Fatal("two report IDs are equal")
	}
	if u := uniqueID("2020-04-18T00:00:00Z_paranoidpenguin.net"); len(u) != 32 {
		t.Fatalf("unique-id of a foreign ID: %q", u)
	}
}
