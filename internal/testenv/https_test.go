package testenv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

const testPolicy = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmax_age: 86400\r\n"

// policyWorld starts a policy server and a client that reaches
// mta-sts.<domain>:443 for each domain through a Dialer.
func policyWorld(t *testing.T, domains ...string) (*CA, *PolicyServer, *http.Client) {
	t.Helper()
	ca := newCAForTest(t)
	s, err := StartPolicyServer(ca)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	d := NewDialer()
	for _, dom := range domains {
		d.Route("mta-sts."+dom+":443", s.Addr())
	}
	c := d.HTTPClient(ca.Pool())
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return ca, s, c
}

func fetch(c *http.Client, domain string) (*http.Response, string, error) {
	resp, err := c.Get("https://mta-sts." + domain + PolicyPath)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func TestPolicyServerResponses(t *testing.T) {
	tests := []struct {
		name        string
		set         PolicyResponse
		status      int
		contentType string
		body        string
		location    string
	}{
		{"valid policy", PolicyResponse{Body: testPolicy}, 200, "text/plain", testPolicy, ""},
		{"status code", PolicyResponse{Body: "oops", Status: 503}, 503, "text/plain", "oops", ""},
		{"content type", PolicyResponse{Body: testPolicy, ContentType: "text/html; charset=utf-8"}, 200, "text/html; charset=utf-8", testPolicy, ""},
		{"no content type", PolicyResponse{Body: testPolicy, OmitContentType: true}, 200, "", testPolicy, ""},
		{"redirect", PolicyResponse{Location: "https://elsewhere.example.net/policy"}, 301, "text/plain", "", "https://elsewhere.example.net/policy"},
		{"redirect with status", PolicyResponse{Location: "/x", Status: 307}, 307, "text/plain", "", "/x"},
		{"body cut to size", PolicyResponse{Body: testPolicy, BodySize: 7}, 200, "text/plain", "version", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, s, c := policyWorld(t, "example.com")
			s.Set("example.com", tt.set)
			resp, body, err := fetch(c, "example.com")
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != tt.contentType ||
				body != tt.body || resp.Header.Get("Location") != tt.location {
				t.Errorf("got %d %q %q location %q", resp.StatusCode, resp.Header.Get("Content-Type"), body, resp.Header.Get("Location"))
			}
			if n := s.Fetches("example.com"); n != 1 {
				t.Errorf("Fetches = %d, want 1", n)
			}
		})
	}
}

func TestPolicyServerPaddedBody(t *testing.T) {
	_, s, c := policyWorld(t, "example.com")
	s.Set("example.com", PolicyResponse{Body: testPolicy, BodySize: 100_000})
	resp, body, err := fetch(c, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(body) != 100_000 || !strings.HasPrefix(body, testPolicy) || resp.ContentLength != -1 {
		t.Errorf("body of %d bytes, Content-Length %d; want 100000 streamed", len(body), resp.ContentLength)
	}
}

func TestPolicyServerUnknownDomainAndPath(t *testing.T) {
	_, s, c := policyWorld(t, "example.com", "example.org")
	s.Set("example.com", PolicyResponse{Body: testPolicy})
	if resp, _, err := fetch(c, "example.org"); err != nil || resp.StatusCode != 404 {
		t.Errorf("domain without policy: %v %v, want 404", resp, err)
	}
	resp, err := c.Get("https://mta-sts.example.com/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || s.Fetches("example.com") != 0 {
		t.Errorf("other path: %d, fetches %d; want 404 and no policy fetch", resp.StatusCode, s.Fetches("example.com"))
	}
	s.Remove("example.com")
	if resp, _, err := fetch(c, "example.com"); err != nil || resp.StatusCode != 404 {
		t.Errorf("removed domain: %v %v, want 404", resp, err)
	}
}

func TestPolicyServerCertificates(t *testing.T) {
	ca, s, c := policyWorld(t, "example.com")
	other, err := NewCA("another root")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cert func() *tls.Certificate
		want string // substring of the client's error; "" = success
	}{
		{"default leaf is valid", nil, ""},
		{"expired", func() *tls.Certificate {
			c := ca.MustLeaf(LeafOptions{Expired: true}, "mta-sts.example.com")
			return &c
		}, "expired"},
		{"wrong name", func() *tls.Certificate { c := ca.MustLeaf(LeafOptions{}, "mta-sts.example.net"); return &c }, "mta-sts.example.net"},
		{"self-signed", func() *tls.Certificate {
			c := ca.MustLeaf(LeafOptions{SelfSigned: true}, "mta-sts.example.com")
			return &c
		}, "unknown authority"},
		{"other CA", func() *tls.Certificate { c := other.MustLeaf(LeafOptions{}, "mta-sts.example.com"); return &c }, "unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := PolicyResponse{Body: testPolicy}
			if tt.cert != nil {
				r.Certificate = tt.cert()
			}
			s.Set("example.com", r)
			_, body, err := fetch(c, "example.com")
			switch {
			case tt.want == "" && (err != nil || body != testPolicy):
				t.Errorf("fetch: %q, %v", body, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("fetch succeeded or failed wrongly: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestPolicyServerDelay(t *testing.T) {
	_, s, c := policyWorld(t, "example.com")
	s.Set("example.com", PolicyResponse{Body: testPolicy, Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://mta-sts.example.com"+PolicyPath, nil)
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("slow server answered")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want deadline exceeded", err)
	}
	// A fetch still waiting must not keep Close from returning.
	go fetch(c, "example.com")
	for s.Fetches("example.com") < 2 {
		time.Sleep(time.Millisecond)
	}
	s.Close()
}

func TestPolicyServerReports(t *testing.T) {
	ca, s, _ := policyWorld(t)
	d := NewDialer()
	d.Route("reports.example.net:443", s.Addr())
	c := d.HTTPClient(ca.Pool())
	post := func() int {
		resp, err := c.Post("https://reports.example.net/tlsrpt/v1", "application/tlsrpt+gzip", strings.NewReader("gz-bytes"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(); code != 200 {
		t.Errorf("report POST: %d, want 200", code)
	}
	s.SetReportStatus(503)
	if code := post(); code != 503 {
		t.Errorf("report POST after SetReportStatus(503): %d", code)
	}
	reps := s.Reports()
	if len(reps) != 2 {
		t.Fatalf("%d reports, want 2", len(reps))
	}
	r := reps[0]
	if r.Host != "reports.example.net" || r.Path != "/tlsrpt/v1" || r.ContentType != "application/tlsrpt+gzip" || string(r.Body) != "gz-bytes" {
		t.Errorf("recorded %+v", r)
	}

	// A report host can be given a bad certificate.
	bad := ca.MustLeaf(LeafOptions{Expired: true}, "reports.example.net")
	s.SetCertificate("reports.example.net", &bad)
	if resp, err := c.Post("https://reports.example.net/x", "application/tlsrpt+json", strings.NewReader("{}")); err == nil {
		resp.Body.Close()
		t.Error("POST over an expired certificate succeeded")
	}
}

func TestPolicyServerConcurrentUse(t *testing.T) {
	_, s, c := policyWorld(t, "example.com")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			s.Set("example.com", PolicyResponse{Body: testPolicy, Status: 200 + i})
		}()
		go func() {
			defer wg.Done()
			if _, _, err := fetch(c, "example.com"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := s.Fetches("EXAMPLE.com."); n != 4 {
		t.Errorf("Fetches = %d, want 4", n)
	}
}

func TestPolicyServerNoSNI(t *testing.T) {
	ca, s, _ := policyWorld(t)
	d := NewDialer()
	d.Route(s.Addr(), s.Addr())
	c := d.HTTPClient(ca.Pool())
	resp, err := c.Get("https://" + s.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("GET / by IP: %d, want 404", resp.StatusCode)
	}
}

// The policy server answers for mta-sts.example.com, reached through a
// Dialer, with a certificate issued by the test CA.
func ExampleStartPolicyServer() {
	ca, err := NewCA("example root")
	if err != nil {
		panic(err)
	}
	ps, err := StartPolicyServer(ca)
	if err != nil {
		panic(err)
	}
	defer ps.Close()
	ps.Set("example.com", PolicyResponse{Body: testPolicy})

	d := NewDialer()
	d.Route("mta-sts.example.com:443", ps.Addr())
	resp, err := d.HTTPClient(ca.Pool()).Get("https://mta-sts.example.com" + PolicyPath)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, resp.Header.Get("Content-Type"), strings.Fields(string(body))[:2], ps.Fetches("example.com"))
	// Output: 200 OK text/plain [version: STSv1] 1
}

func TestPolicyServerCloseRightAfterStart(t *testing.T) {
	ca := newCAForTest(t)
	for range 20 {
		s, err := StartPolicyServer(ca)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
}
