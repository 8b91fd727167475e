package sts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"time"

	"github.com/sealpost/sealpost/internal/hostdial"
)

// DefaultTimeout bounds a policy fetch when Client.Timeout is zero. RFC 8461
// §3.3 suggests senders wait at most a minute; half of that keeps a
// delivery waiting on a hung policy host from stalling for long.
const DefaultTimeout = 30 * time.Second

// policyURL is where RFC 8461 §3.3 puts domain's policy.
func policyURL(domain string) string {
	return "https://mta-sts." + domain + "/.well-known/mta-sts.txt"
}

// FetchPolicy fetches domain's policy over HTTPS and parses it (RFC 8461
// §3.3), bypassing the cache; it does not look at the TXT record. Tools use
// it to check a domain; deliveries use Lookup.
//
// The error is an *Error of kind ErrInvalidDomain, ErrFetch, ErrWebPKI or
// ErrInvalidPolicy.
func (c *Client) FetchPolicy(ctx context.Context, domain string) (*Policy, error) {
	d, err := normalizeDomain(domain)
	if err != nil {
		return nil, err
	}
	p, _, err := c.fetch(ctx, d)
	return p, err
}

// fetch GETs and parses the policy of a normalised domain within the
// client's timeout. It also returns the policy text, which the store keeps.
func (c *Client) fetch(ctx context.Context, domain string) (*Policy, string, error) {
	timeout := c.timeout()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fail := func(kind error, temporary bool, err error) (*Policy, string, error) {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil && parent.Err() == nil {
			err = fmt.Errorf("no complete answer within %v: %w", timeout, err)
		}
		return nil, "", &Error{Domain: domain, Kind: kind, Err: err, temporary: temporary}
	}

	url := policyURL(domain)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fail(ErrFetch, false, err)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		if isCertificateError(err) {
			// RFC 8461 §3.3: the policy host must present a certificate
			// valid for mta-sts.<domain> under the WebPKI.
			return fail(ErrWebPKI, false, err)
		}
		return fail(ErrFetch, true, err)
	}
	defer resp.Body.Close()

	switch code := resp.StatusCode; {
	case code >= 300 && code < 400:
		// RFC 8461 §3.3: "senders MUST NOT follow HTTP redirects".
		return fail(ErrFetch, false, fmt.Errorf("GET %s: HTTP %s redirecting to %s, redirects are not followed",
			url, resp.Status, quote(resp.Header.Get("Location"))))
	case code != http.StatusOK:
		// RFC 8461 §3.3: only a 200 answer carries a policy. Server
		// errors and rate limiting may pass; a 404 stays until the
		// domain fixes it.
		temporary := code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout
		return fail(ErrFetch, temporary, fmt.Errorf("GET %s: HTTP %s, want 200", url, resp.Status))
	}
	// RFC 8461 §3.3: the media type must be text/plain; parameters such as
	// charset are allowed.
	ct := resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "text/plain" {
		return fail(ErrFetch, false, fmt.Errorf("GET %s: Content-Type %s, want text/plain", url, quote(ct)))
	}
	if resp.ContentLength > MaxPolicySize {
		return fail(ErrInvalidPolicy, false, &PolicyError{Reason: fmt.Sprintf("Content-Length %d, larger than the %d allowed", resp.ContentLength, MaxPolicySize)})
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxPolicySize+1))
	if err != nil {
		return fail(ErrFetch, true, fmt.Errorf("GET %s: reading the body: %w", url, err))
	}
	if len(body) > MaxPolicySize {
		return fail(ErrInvalidPolicy, false, &PolicyError{Reason: fmt.Sprintf("more than the %d bytes allowed", MaxPolicySize)})
	}
	text := string(body)
	p, err := ParsePolicy(text)
	if err != nil {
		return fail(ErrInvalidPolicy, false, err)
	}
	return p, text, nil
}

// isCertificateError reports whether a failed request failed because the
// server's certificate did not verify.
func isCertificateError(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		hostname x509.HostnameError
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &hostname) ||
		errors.As(err, &unknown) || errors.As(err, &invalid)
}

// noRedirect makes http.Client return a redirect response instead of
// following it.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// httpClient returns the client policy fetches use: c.HTTPClient with
// redirects turned off, or one built from RootCAs, DialContext and Now.
func (c *Client) httpClient() *http.Client {
	c.httpOnce.Do(func() {
		if c.HTTPClient != nil {
			hc := *c.HTTPClient
			hc.CheckRedirect = noRedirect
			c.http = &hc
			return
		}
		c.http = &http.Client{
			CheckRedirect: noRedirect,
			Transport: &http.Transport{
				DialContext: c.dialPolicyHost,
				TLSClientConfig: &tls.Config{
					RootCAs:    c.RootCAs,
					MinVersion: tls.VersionTLS12,
					Time:       c.Now,
				},
				ForceAttemptHTTP2: true,
				// Policy hosts differ from one fetch to the next and a
				// domain is fetched rarely: idle connections would only
				// linger.
				DisableKeepAlives:      true,
				MaxResponseHeaderBytes: 64 << 10,
			},
		}
	})
	return c.http
}

// dialPolicyHost connects to a policy host through DialContext (or a
// net.Dialer). When Resolver is an AddrResolver the host name is looked up
// through it and its addresses are dialled in turn, so that the dialer is
// only ever given "ip:port".
func (c *Client) dialPolicyHost(ctx context.Context, network, addr string) (net.Conn, error) {
	ar, ok := c.Resolver.(AddrResolver)
	if !ok {
		dial := c.DialContext
		if dial == nil {
			dial = (&net.Dialer{}).DialContext
		}
		return dial(ctx, network, addr)
	}
	d := &hostdial.Dialer{Resolver: ar, Dial: c.DialContext}
	return d.DialContext(ctx, network, addr)
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}
