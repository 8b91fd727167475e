package sts

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/testenv"
)

func TestFetchPolicy(t *testing.T) {
	w := newWorld(t)
	other := newCA(t, "untrusted root")
	tests := []struct {
		name      string
		resp      testenv.PolicyResponse
		noRoute   bool
		want      error // nil: the fetch succeeds
		result    string
		temporary bool
		msg       string // part of the error message
	}{
		{name: "valid policy", resp: testenv.PolicyResponse{Body: enforcePolicy}},
		{name: "text/plain with charset", resp: testenv.PolicyResponse{Body: enforcePolicy, ContentType: "text/plain; charset=utf-8"}},
		{name: "media type in other case", resp: testenv.PolicyResponse{Body: enforcePolicy, ContentType: "Text/Plain"}},
		{name: "policy of exactly 64 KiB", resp: testenv.PolicyResponse{Body: padPolicy(enforcePolicy, MaxPolicySize)}},

		{name: "redirect is refused", resp: testenv.PolicyResponse{Location: "https://mta-sts.elsewhere.example/.well-known/mta-sts.txt"},
			want: ErrFetch, result: "sts-policy-fetch-error", msg: "redirects are not followed"},
		{name: "temporary redirect is refused", resp: testenv.PolicyResponse{Status: 307, Location: "/other"},
			want: ErrFetch, result: "sts-policy-fetch-error", msg: "307"},
		{name: "404", resp: testenv.PolicyResponse{Status: 404, Body: "not here"},
			want: ErrFetch, result: "sts-policy-fetch-error", msg: "HTTP 404 Not Found, want 200"},
		{name: "204 without body", resp: testenv.PolicyResponse{Status: 204},
			want: ErrFetch, result: "sts-policy-fetch-error", msg: "want 200"},
		{name: "503 is temporary", resp: testenv.PolicyResponse{Status: 503},
			want: ErrFetch, result: "sts-policy-fetch-error", temporary: true},
		{name: "wrong content type", resp: testenv.PolicyResponse{Body: enforcePolicy, ContentType: "text/html"},
			want: ErrFetch, result: "sts-policy-fetch-error", msg: `Content-Type "text/html", want text/plain`},
		{name: "no content type", resp: testenv.PolicyResponse{Body: enforcePolicy, OmitContentType: true},
			want: ErrFetch, result: "sts-policy-fetch-error", msg: "want text/plain"},
		{name: "malformed content type", resp: testenv.PolicyResponse{Body: enforcePolicy, ContentType: "text/plain; ="},
			want: ErrFetch, result: "sts-policy-fetch-error"},
		{name: "certificate for the wrong name", resp: testenv.PolicyResponse{Body: enforcePolicy, Certificate: leaf(w.ca, testenv.LeafOptions{}, "www.example.com")},
			want: ErrWebPKI, result: "sts-webpki-invalid"},
		{name: "expired certificate", resp: testenv.PolicyResponse{Body: enforcePolicy, Certificate: leaf(w.ca, testenv.LeafOptions{Expired: true}, "mta-sts.example.com")},
			want: ErrWebPKI, result: "sts-webpki-invalid"},
		{name: "untrusted certificate", resp: testenv.PolicyResponse{Body: enforcePolicy, Certificate: leaf(other, testenv.LeafOptions{}, "mta-sts.example.com")},
			want: ErrWebPKI, result: "sts-webpki-invalid"},
		{name: "invalid policy", resp: testenv.PolicyResponse{Body: "version: STSv1\nmode: enforce\nmax_age: 1\n"},
			want: ErrInvalidPolicy, result: "sts-policy-invalid", msg: "needs at least one valid mx"},
		{name: "70 KiB streamed body", resp: testenv.PolicyResponse{Body: enforcePolicy, BodySize: 70 << 10},
			want: ErrInvalidPolicy, result: "sts-policy-invalid", msg: "more than the 65536 bytes"},
		{name: "no policy host", noRoute: true,
			want: ErrFetch, result: "sts-policy-fetch-error", temporary: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			domain := "example.com"
			if tt.noRoute {
				domain = "unrouted.example"
			} else {
				w.serve(domain, tt.resp)
			}
			p, err := w.client.FetchPolicy(context.Background(), domain)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("FetchPolicy: %v", err)
				}
				if p.Mode != ModeEnforce || !p.Match("mx1.example.com") {
					t.Fatalf("policy = %+v", p)
				}
				return
			}
			var se *Error
			if !errors.Is(err, tt.want) || !errors.As(err, &se) {
				t.Fatalf("FetchPolicy = %+v, %v; want %v", p, err, tt.want)
			}
			if se.ResultType() != tt.result || se.Temporary() != tt.temporary {
				t.Errorf("ResultType %q, Temporary %v; want %q, %v", se.ResultType(), se.Temporary(), tt.result, tt.temporary)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

// padPolicy pads a policy with an unknown field to exactly size bytes.
func padPolicy(policy string, size int) string {
	pad := size - len(policy) - len("x: \n")
	return policy + "x: " + strings.Repeat("p", pad) + "\n"
}

func leaf(ca *testenv.CA, opts testenv.LeafOptions, names ...string) *tls.Certificate {
	c := ca.MustLeaf(opts, names...)
	return &c
}

func TestFetchPolicyRedirectTargetNotFetched(t *testing.T) {
	w := newWorld(t)
	w.serve("target.example", testenv.PolicyResponse{Body: enforcePolicy})
	w.serve("example.com", testenv.PolicyResponse{Location: "https://mta-sts.target.example/.well-known/mta-sts.txt"})
	for _, c := range []*Client{
		w.client,
		// A caller's client that follows redirects has them turned off.
		{HTTPClient: w.dialer.HTTPClient(w.ca.Pool())},
	} {
		if _, err := c.FetchPolicy(context.Background(), "example.com"); !errors.Is(err, ErrFetch) {
			t.Fatalf("FetchPolicy through a redirect = %v, want ErrFetch", err)
		}
	}
	if n := w.srv.Fetches("target.example"); n != 0 {
		t.Fatalf("the redirect target was fetched %d times", n)
	}
	if n := w.srv.Fetches("example.com"); n != 2 {
		t.Fatalf("the policy host was fetched %d times, want 2", n)
	}
}

func TestFetchPolicySlowServerTimesOut(t *testing.T) {
	w := newWorld(t)
	w.client.Timeout = 50 * time.Millisecond
	w.serve("example.com", testenv.PolicyResponse{Body: enforcePolicy, Delay: 10 * time.Second})
	start := time.Now()
	_, err := w.client.FetchPolicy(context.Background(), "example.com")
	var se *Error
	if !errors.As(err, &se) || se.Kind != ErrFetch || !se.Temporary() {
		t.Fatalf("FetchPolicy from a slow server = %v, want a temporary ErrFetch", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "within 50ms") {
		t.Fatalf("error %q does not say it timed out", err)
	}
	// Not a timing assertion on the success path: a fetch that ignored
	// its timeout would wait for the server's 10 s.
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("FetchPolicy returned after %v", elapsed)
	}
}

func TestFetchPolicyBlackholedHostTimesOut(t *testing.T) {
	w := newWorld(t)
	w.client.Timeout = 50 * time.Millisecond
	w.serve("example.com", testenv.PolicyResponse{Body: enforcePolicy})
	w.dialer.Blackhole("mta-sts.example.com:443")
	if _, err := w.client.FetchPolicy(context.Background(), "example.com"); !errors.Is(err, ErrFetch) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("FetchPolicy from a blackholed host = %v, want a timeout", err)
	}
}

// roundTripper answers every request with a response it builds.
type roundTripper func(*http.Request) *http.Response

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r), nil }

// unreadable is a body that fails the test when read.
type unreadable struct{ t *testing.T }

func (u unreadable) Read([]byte) (int, error) {
	u.t.Error("the body was read")
	return 0, io.EOF
}

func (unreadable) Close() error { return nil }

func TestFetchPolicyRefusesLargeContentLengthUnread(t *testing.T) {
	c := &Client{HTTPClient: &http.Client{Transport: roundTripper(func(r *http.Request) *http.Response {
		return &http.Response{
			StatusCode:    200,
			Header:        http.Header{"Content-Type": {"text/plain"}},
			ContentLength: 70 << 10,
			Body:          unreadable{t},
			Request:       r,
		}
	})}}
	_, err := c.FetchPolicy(context.Background(), "example.com")
	if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), "Content-Length 71680") {
		t.Fatalf("FetchPolicy = %v, want ErrInvalidPolicy for the Content-Length", err)
	}
}

func TestFetchPolicyInvalidDomain(t *testing.T) {
	var c Client
	for _, d := range []string{"", "exa mple.com", "bücher.example", "[192.0.2.1]"} {
		if _, err := c.FetchPolicy(context.Background(), d); !errors.Is(err, ErrInvalidDomain) {
			t.Errorf("FetchPolicy(%q) = %v, want ErrInvalidDomain", d, err)
		}
	}
}

func TestFetchPolicyConcurrentUse(t *testing.T) {
	w := newWorld(t)
	w.serve("example.com", testenv.PolicyResponse{Body: enforcePolicy})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := w.client.FetchPolicy(context.Background(), "example.com"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

func TestLookupRecord(t *testing.T) {
	name := "_mta-sts.example.com."
	tests := []struct {
		name      string
		records   []string
		err       error
		wantID    string
		want      error
		temporary bool
	}{
		{name: "one record", records: []string{"v=STSv1; id=abc"}, wantID: "abc"},
		{name: "one record among others", records: []string{"v=spf1 -all", "v=STSv1; id=abc"}, wantID: "abc"},
		{name: "NXDOMAIN from net.Resolver", err: &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}, want: ErrNoRecord},
		{name: "not found from a resolver with NotFound()", err: notFoundError{}, want: ErrNoRecord},
		{name: "only other records", records: []string{"v=spf1 -all"}, want: ErrNoRecord},
		{name: "several records", records: []string{"v=STSv1; id=abc", "v=STSv1; id=def"}, want: ErrSeveralRecords},
		{name: "invalid record", records: []string{"v=STSv1; id=a_b"}, want: ErrInvalidRecord},
		{name: "timeout", err: &net.DNSError{Err: "i/o timeout", Name: name, IsTimeout: true}, want: ErrTemporaryDNS, temporary: true},
		{name: "SERVFAIL", err: &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}, want: ErrTemporaryDNS, temporary: true},
		{name: "bogus answer from a validating resolver", err: temporaryError{}, want: ErrTemporaryDNS, temporary: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dns := newFakeTXT()
			if tt.err != nil {
				dns.fail(name, tt.err)
			} else {
				dns.set(name, tt.records...)
			}
			c := &Client{Resolver: dns}
			rec, err := c.LookupRecord(context.Background(), "Example.COM.")
			if tt.want == nil {
				if err != nil || rec.ID != tt.wantID {
					t.Fatalf("LookupRecord = %+v, %v; want id %q", rec, err, tt.wantID)
				}
				return
			}
			var se *Error
			if !errors.Is(err, tt.want) || !errors.As(err, &se) || se.Temporary() != tt.temporary {
				t.Fatalf("LookupRecord = %+v, %v; want %v (temporary %v)", rec, err, tt.want, tt.temporary)
			}
			if se.Domain != "example.com" {
				t.Fatalf("error domain %q", se.Domain)
			}
		})
	}
}

// notFoundError and temporaryError stand for the DNS layer's *dane.DNSError
// kinds, which sts does not import.
type notFoundError struct{}

func (notFoundError) Error() string   { return "NXDOMAIN" }
func (notFoundError) NotFound() bool  { return true }
func (notFoundError) Temporary() bool { return false }

type temporaryError struct{}

func (temporaryError) Error() string   { return "DNSSEC bogus" }
func (temporaryError) NotFound() bool  { return false }
func (temporaryError) Temporary() bool { return true }

// net.Resolver satisfies TXTResolver.
var _ TXTResolver = (*net.Resolver)(nil)
