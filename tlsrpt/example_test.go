package tlsrpt_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"time"

	"github.com/sealpost/sealpost/tlsrpt"
)

// The delivery engine records every TLS session with the policy it was
// held to; at the end of the UTC day the counts become a report.
func ExampleRecorder() {
	rec := tlsrpt.NewRecorder(tlsrpt.RecorderConfig{}) // counts go to an in-memory store

	// Build the policy once, when the MTA-STS policy is fetched, and keep it.
	policy := tlsrpt.NewPolicy(tlsrpt.PolicyTypeSTS, "example.com",
		[]string{"version: STSv1", "mode: enforce", "mx: mx.example.com", "max_age: 604800"},
		[]string{"mx.example.com"})
	at := time.Date(2020, 4, 18, 10, 0, 0, 0, time.UTC)
	rec.Record(tlsrpt.Session{Time: at, Policy: policy})
	rec.Record(tlsrpt.Session{Time: at, Policy: policy})
	rec.Record(tlsrpt.Session{Time: at, Policy: policy, Failure: &tlsrpt.Failure{
		ResultType:          tlsrpt.ResultCertificateExpired,
		SendingMTAIP:        netip.MustParseAddr("192.0.2.1"),
		ReceivingMXHostname: "mx.example.com",
		ReceivingIP:         netip.MustParseAddr("198.51.100.25"),
	}})

	ctx := context.Background()
	if err := rec.Flush(ctx); err != nil { // Recorder.Run does this every minute
		log.Fatal(err)
	}
	day := tlsrpt.DayOf(at)
	counts, err := rec.Store().DayCounts(ctx, day, "example.com")
	if err != nil {
		log.Fatal(err)
	}
	report := tlsrpt.NewReport(tlsrpt.ReportHeader{
		OrganizationName: "Sender Inc.",
		ContactInfo:      "tlsrpt@sender.example",
		ReportID:         "2020-04-18.example.com.1@sender.example",
	}, day, counts)
	js, _ := report.JSON()
	fmt.Println(string(js))
	// Output:
	// {"organization-name":"Sender Inc.","date-range":{"start-datetime":"2020-04-18T00:00:00Z","end-datetime":"2020-04-18T23:59:59Z"},"contact-info":"tlsrpt@sender.example","report-id":"2020-04-18.example.com.1@sender.example","policies":[{"policy":{"policy-type":"sts","policy-string":["version: STSv1","mode: enforce","mx: mx.example.com","max_age: 604800"],"policy-domain":"example.com","mx-host":["mx.example.com"]},"summary":{"total-successful-session-count":2,"total-failure-session-count":1},"failure-details":[{"result-type":"certificate-expired","sending-mta-ip":"192.0.2.1","receiving-mx-hostname":"mx.example.com","receiving-ip":"198.51.100.25","failed-session-count":1}]}]}
}

// staticTXT answers TXT look-ups from a map, standing in for the dane
// package's resolver.
type staticTXT map[string][]string

func (s staticTXT) LookupTXT(_ context.Context, name string) ([]string, error) {
	return s[name], nil
}

// A Reporter sends each day's reports to the destinations of the policy
// domain's _smtp._tls record. Here the domain asks for HTTPS; a mailto:
// destination would go through Config.MailSender, DKIM-signed by
// Config.MailSigner.
func ExampleReporter() {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		report, err := tlsrpt.ParseReport(r.Body) // gzipped JSON
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s := report.Summary()
		fmt.Printf("received %s: %d successful, %d failed\n",
			r.Header.Get("Content-Type"), s.TotalSuccessfulSessionCount, s.TotalFailureSessionCount)
	}))
	defer srv.Close()

	now := time.Date(2020, 4, 19, 2, 0, 0, 0, time.UTC)
	rec := tlsrpt.NewRecorder(tlsrpt.RecorderConfig{})
	rep, err := tlsrpt.NewReporter(tlsrpt.Config{
		OrganizationName: "Sender Inc.",
		Submitter:        "sender.example",
		Recorder:         rec,
		Resolver:         staticTXT{"_smtp._tls.example.com.": {"v=TLSRPTv1; rua=" + srv.URL + "/tlsrpt"}},
		HTTPClient:       srv.Client(),
		Now:              func() time.Time { return now },
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		log.Fatal(err)
	}
	policy := tlsrpt.NewPolicy(tlsrpt.PolicyTypeNoPolicyFound, "example.com", nil, nil)
	for range 3 {
		rec.Record(tlsrpt.Session{Time: now.Add(-12 * time.Hour), Policy: policy})
	}

	// Run does this every day at a random time after midnight UTC.
	yesterday := tlsrpt.DayOf(now) - 1
	if err := rep.SendDay(context.Background(), yesterday); err != nil {
		log.Fatal(err)
	}
	// A second call sends nothing: the report was delivered.
	if err := rep.SendDay(context.Background(), yesterday); err != nil {
		log.Fatal(err)
	}
	// Output:
	// received application/tlsrpt+gzip: 3 successful, 0 failed
}

func ExampleParseRecord() {
	rec, err := tlsrpt.ParseRecord("v=TLSRPTv1; rua=mailto:tlsrpt@example.com,https://reports.example.com/v1")
	if err != nil {
		log.Fatal(err)
	}
	for _, rua := range rec.RUA {
		fmt.Println(rua.URI, rua.IsMail())
	}
	// Output:
	// mailto:tlsrpt@example.com true
	// https://reports.example.com/v1 false
}

func ExampleSummarize() {
	const received = `{"organization-name":"Google Inc.",
		"date-range":{"start-datetime":"2020-04-18T00:00:00Z","end-datetime":"2020-04-18T23:59:59Z"},
		"contact-info":"smtp-tls-reporting@google.com","report-id":"2020-04-18T00:00:00Z_example.com",
		"policies":[{"policy":{"policy-type":"sts","policy-domain":"example.com"},
			"summary":{"total-successful-session-count":5,"total-failure-session-count":2},
			"failure-details":[{"result-type":"certificate-expired","failed-session-count":2}]}]}`
	report, err := tlsrpt.ParseReport(strings.NewReader(received))
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range tlsrpt.Summarize([]*tlsrpt.Report{report}) {
		fmt.Println(s.Domain, s.PolicyType, s.Organizations, s.Successful, s.Failed, s.Failures)
	}
	// Output:
	// example.com sts [Google Inc.] 5 2 map[certificate-expired:2]
}
