package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
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
