package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/hostdial"
)

// MediaTypeGzip and MediaTypeJSON are the media types of a report
// (RFC 8460 §6.4, §6.5).
const (
	MediaTypeGzip = "application/tlsrpt+gzip"
	MediaTypeJSON = "application/tlsrpt+json"
)

// MailSender hands report mail to the MTA. The queue package implements it.
//
// RFC 8460 §3 puts two duties on the implementation, which the message
// itself signals with "TLS-Required: No" (RFC 8689 §5):
//
//   - Deliver it despite any TLS failure: do not apply the recipient
//     domain's MTA-STS or DANE policy, nor REQUIRETLS, and fall back to
//     plaintext when STARTTLS fails. The policy being reported on may be
//     what is broken.
//   - Do not record its TLS sessions in a Recorder (they SHOULD NOT be in
//     the next report), so that a broken policy cannot feed a report loop.
//
// SendReport returns nil once the message is accepted for delivery (for
// the queue: stored durably). An error with a Temporary method returning
// false means the recipients are refused for good (the rua is then
// suppressed for a while); any other error is retried. A permanent bounce
// noticed later is reported with Reporter.Bounced.
type MailSender interface {
	SendReport(ctx context.Context, from string, to []string, msg []byte) error
}

// SubmitError is the failure to hand a report to one destination.
type SubmitError struct {
	// URI is the destination (a rua).
	URI string
	// Permanent is set when retrying cannot help: the destination refused
	// the report (HTTP 4xx other than 408 and 429, a refused address).
	Permanent bool
	// StatusCode is the HTTP status of an https destination, if it
	// answered.
	StatusCode int
	Err        error
}

func (e *SubmitError) Error() string {
	kind := "temporary"
	if e.Permanent {
		kind = "permanent"
	}
	return fmt.Sprintf("tlsrpt: submitting the report to %s: %s failure: %v", e.URI, kind, e.Err)
}

func (e *SubmitError) Unwrap() error { return e.Err }

// Temporary reports whether a retry may succeed.
func (e *SubmitError) Temporary() bool { return !e.Permanent }

// isPermanent reports whether err says, through a Temporary method, that
// it is permanent. Errors that say nothing are taken as temporary.
func isPermanent(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && !t.Temporary()
}

// Gzip compresses a report's JSON for submission (RFC 8460 §5.2). The
// gzip header carries no name and no time, so the same report gives the
// same bytes.
func Gzip(reportJSON []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(reportJSON) // writes to a bytes.Buffer do not fail
	zw.Close()
	return b.Bytes()
}

// maxResponseBody bounds what is read of an answer to a report POST.
const maxResponseBody = 64 << 10

// postReport POSTs a gzipped report to an https rua (RFC 8460 §5.4). A 2xx
// answer is success. RFC 8460 §3 says reports MUST be delivered despite
// TLS failures and that submitters MAY ignore certificate validation: when
// the certificate does not verify and insecure is set, the POST is made
// again without verification.
func postReport(ctx context.Context, client *http.Client, uri string, gz []byte, insecure bool) error {
	err := postOnce(ctx, client, uri, gz)
	var cve *tls.CertificateVerificationError
	if !insecure || !errors.As(err, &cve) {
		return err
	}
	lax, ok := insecureClient(client)
	if !ok {
		return err
	}
	defer lax.Transport.(*http.Transport).CloseIdleConnections()
	return postOnce(ctx, lax, uri, gz)
}

func postOnce(ctx context.Context, client *http.Client, uri string, gz []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, bytes.NewReader(gz))
	if err != nil {
		return &SubmitError{URI: uri, Permanent: true, Err: err}
	}
	// RFC 8460 §5.4: a compressed report is sent as application/tlsrpt+gzip.
	req.Header.Set("Content-Type", MediaTypeGzip)
	req.Header.Set("User-Agent", "sealpost-tlsrpt")
	c := *client
	if c.CheckRedirect == nil {
		c.CheckRedirect = keepPOST
	}
	resp, err := c.Do(req)
	if err != nil {
		return &SubmitError{URI: uri, Err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	// RFC 8460 §5.4: the receiver MUST answer "successful", typically 200
	// or 201; other codes may be retried as per local policy.
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	permanent := resp.StatusCode >= 300 && resp.StatusCode < 500 &&
		resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests
	return &SubmitError{URI: uri, Permanent: permanent, StatusCode: resp.StatusCode,
		Err: fmt.Errorf("expected a 2xx answer, found %s: %q", resp.Status, truncate(strings.TrimSpace(string(body)), 200))}
}

// keepPOST follows only the redirects that keep the method and body (307,
// 308): after a 301, 302 or 303 net/http would GET the new location and
// a 200 would pass for a delivered report.
func keepPOST(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("stopped after 5 redirects")
	}
	if req.Response != nil && req.Response.StatusCode != http.StatusTemporaryRedirect &&
		req.Response.StatusCode != http.StatusPermanentRedirect {
		return http.ErrUseLastResponse
	}
	return nil
}

// insecureClient returns a copy of client whose transport does not verify
// certificates; ok is false when the transport is not an *http.Transport
// (or nil, the default one) and cannot be copied.
func insecureClient(client *http.Client) (*http.Client, bool) {
	var t *http.Transport
	switch rt := client.Transport.(type) {
	case nil:
		t = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		t = rt.Clone()
	default:
		return nil, false
	}
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.InsecureSkipVerify = true
	c := *client
	c.Transport = t
	return &c, true
}

// errNotDue leaves a submission as it is in UpdateSubmission.
var errNotDue = errors.New("tlsrpt: submission not due")

// submitDomain makes one attempt at the report of one domain for one day,
// if one is due. pending says whether the submission is still unsettled.
func (r *Reporter) submitDomain(ctx context.Context, day Day, domain string, sups *suppressions) (pending bool, err error) {
	now := r.cfg.Now()
	var sub Submission
	err = r.store.UpdateSubmission(ctx, day, domain, func(s *Submission) error {
		sub = *s
		if s.Outcome != "" || now.Before(s.Next) || now.Before(s.Lease) {
			return errNotDue
		}
		if s.ReportID == "" {
			s.ReportID = NewReportID(day, domain, r.cfg.Submitter)
			s.First = now
		}
		s.Attempts++
		s.Lease = now.Add(leaseTime)
		sub = *s
		sub.Destinations = append([]Destination(nil), s.Destinations...)
		return nil
	})
	if errors.Is(err, errNotDue) {
		return sub.Outcome == "", nil
	}
	if err != nil {
		return true, fmt.Errorf("tlsrpt: claiming the report of %s for %s: %w", day, domain, err)
	}

	// RFC 8460 §5.5: redelivery for up to 24 hours after the first attempt.
	end := sub.First.Add(r.cfg.RetryPeriod)
	outcome, attemptErr := r.attempt(ctx, &sub, sups)
	if outcome == "" && !now.Before(end) {
		outcome = OutcomeFailed
	}
	// RFC 8460 §5.5: exponential backoff, the last try when the retry
	// period ends.
	next := now.Add(r.backoff(sub.Attempts))
	if next.After(end) {
		next = end
	}
	err = r.store.UpdateSubmission(context.WithoutCancel(ctx), day, domain, func(s *Submission) error {
		s.Destinations = sub.Destinations
		s.Lease = time.Time{}
		s.Outcome = outcome
		s.Next = next
		return nil
	})
	if err != nil {
		return true, fmt.Errorf("tlsrpt: recording the attempt at the report of %s for %s: %w", day, domain, err)
	}
	if attemptErr != nil {
		r.log.Warn("tlsrpt: report submission failed", "day", day, "domain", domain,
			"attempt", sub.Attempts, "outcome", outcome, "err", attemptErr)
	}
	return outcome == "", nil
}

// backoff returns the wait after the given number of attempts:
// RetryInterval, doubled with each attempt, at most RetryPeriod.
func (r *Reporter) backoff(attempts int) time.Duration {
	d := r.cfg.RetryInterval
	for i := 1; i < attempts && d < r.cfg.RetryPeriod; i++ {
		d *= 2
	}
	return min(d, r.cfg.RetryPeriod)
}

// attempt looks up the domain's record, builds the report and submits it
// to every destination not yet settled. It updates sub.Destinations and
// returns the outcome, empty when a retry is needed.
func (r *Reporter) attempt(ctx context.Context, sub *Submission, sups *suppressions) (Outcome, error) {
	if _, ok := sups.active(SuppressDomain, sub.Domain); ok {
		return OutcomeSuppressed, nil
	}
	rec, err := LookupRecord(ctx, r.cfg.Resolver, sub.Domain)
	if err != nil {
		if isPermanent(err) {
			return OutcomeNoRecord, nil
		}
		return "", err
	}
	counts, err := r.store.DayCounts(ctx, sub.Day, sub.Domain)
	if err != nil {
		return "", err
	}
	h := r.header
	h.ReportID = sub.ReportID
	report := NewReport(h, sub.Day, counts)
	js, err := report.JSON()
	if err != nil {
		return "", err
	}
	gz := Gzip(js)

	var errs []error
	for _, rua := range rec.RUA {
		d := destination(sub, rua.URI)
		if !d.Delivered.IsZero() || d.Permanent {
			continue
		}
		if sup, ok := sups.active(SuppressRUA, ruaKey(rua)); ok {
			d.Permanent, d.Error = true, suppressedPrefix+sup.Reason
			continue
		}
		d.Attempts++
		err := r.deliver(ctx, rua, sub.Domain, report, gz)
		switch {
		case err == nil:
			d.Delivered, d.Error = r.cfg.Now(), ""
		case isPermanent(err):
			d.Permanent, d.Error = true, err.Error()
			errs = append(errs, err)
			r.suppress(ctx, rua, err, sups)
		default:
			d.Error = err.Error()
			errs = append(errs, err)
		}
	}
	return settle(sub, rec), errors.Join(errs...)
}

// suppressedPrefix starts the Error of a destination left out because it
// is on the suppression list.
const suppressedPrefix = "suppressed: "

// settle returns the outcome of a submission to the destinations of rec:
// empty while one of them may still accept the report.
func settle(sub *Submission, rec *Record) Outcome {
	delivered, suppressed := 0, 0
	for _, rua := range rec.RUA {
		d := destination(sub, rua.URI)
		switch {
		case !d.Delivered.IsZero():
			delivered++
		case !d.Permanent:
			return ""
		case strings.HasPrefix(d.Error, suppressedPrefix):
			suppressed++
		}
	}
	switch {
	case delivered > 0:
		return OutcomeSent
	case suppressed == len(rec.RUA):
		return OutcomeSuppressed
	default:
		return OutcomeFailed
	}
}

// destination returns the state of uri in sub, adding it if new.
func destination(sub *Submission, uri string) *Destination {
	for i := range sub.Destinations {
		if sub.Destinations[i].URI == uri {
			return &sub.Destinations[i]
		}
	}
	sub.Destinations = append(sub.Destinations, Destination{URI: uri})
	return &sub.Destinations[len(sub.Destinations)-1]
}

// suppress puts a destination that refused a report for good on the
// suppression list; a destination this Reporter cannot use (mail without
// a MailSender) is not the destination's fault and is not suppressed.
func (r *Reporter) suppress(ctx context.Context, rua RUA, err error, sups *suppressions) {
	if errors.Is(err, errNoMailSender) {
		return
	}
	now := r.cfg.Now()
	sup := Suppression{Kind: SuppressRUA, Value: ruaKey(rua), Until: now.Add(r.cfg.SuppressFor),
		Reason: truncate(err.Error(), 500), Created: now}
	sups.add(sup)
	if err := r.store.Suppress(context.WithoutCancel(ctx), sup); err != nil {
		r.log.Warn("tlsrpt: suppressing a destination failed", "rua", rua.URI, "err", err)
	}
}

var errNoMailSender = errors.New("no MailSender configured for mailto: destinations")

// deliver submits a report to one destination.
func (r *Reporter) deliver(ctx context.Context, rua RUA, domain string, report *Report, gz []byte) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.SubmitTimeout)
	defer cancel()
	if !rua.IsMail() {
		return postReport(ctx, r.http, rua.URI, gz, !r.cfg.StrictHTTPS)
	}
	if r.cfg.MailSender == nil {
		return &SubmitError{URI: rua.URI, Permanent: true, Err: errNoMailSender}
	}
	m := reportMail{from: r.cfg.MailFrom, to: rua.Address, submitter: r.cfg.Submitter, policyDomain: domain,
		report: report, gz: gz, date: r.cfg.Now()}
	signed, err := r.cfg.MailSigner.Sign(m.compose())
	if err != nil {
		return &SubmitError{URI: rua.URI, Err: fmt.Errorf("DKIM signing: %w", err)}
	}
	if err := r.cfg.MailSender.SendReport(ctx, r.cfg.MailFrom, []string{rua.Address}, signed); err != nil {
		return &SubmitError{URI: rua.URI, Permanent: isPermanent(err), Err: err}
	}
	return nil
}

// defaultHTTPClient is the client of a Reporter configured without one:
// http.DefaultTransport's settings without its proxy, with report hosts
// looked up through res, so that a Reporter given a resolver asks no
// other (a net.Dialer, or a proxy, would ask its own).
func defaultHTTPClient(res TXTResolver) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	if ar, ok := res.(hostdial.Resolver); ok {
		t.DialContext = (&hostdial.Dialer{Resolver: ar}).DialContext
	} else {
		t.DialContext = func(context.Context, string, string) (net.Conn, error) {
			return nil, errNoAddrResolver
		}
	}
	return &http.Client{Transport: t}
}

// errNoAddrResolver fails https: submissions of a Reporter whose Resolver
// cannot look up the report host.
var errNoAddrResolver = errors.New("tlsrpt: Config.Resolver cannot look up addresses (it has no LookupNetIP): set Config.HTTPClient to submit to https: destinations")
