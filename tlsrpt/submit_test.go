package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/testenv"
)

// startReportServer starts the test environment's HTTPS server, with
// certificates from a CA of its own, for the test's duration.
func startReportServer(t *testing.T) (*testenv.PolicyServer, *testenv.CA) {
	t.Helper()
	ca, err := testenv.NewCA("tlsrpt test root")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := testenv.StartPolicyServer(ca)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv, ca
}

// reportServer is the test environment's HTTPS server, reached as
// reports.example.com through its dialer, and a client that trusts its CA.
func reportServer(t *testing.T) (*testenv.PolicyServer, *http.Client) {
	t.Helper()
	srv, ca := startReportServer(t)
	d := testenv.NewDialer()
	d.Route("reports.example.com:443", srv.Addr())
	tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}
	t.Cleanup(tr.CloseIdleConnections)
	return srv, &http.Client{Transport: tr}
}

func TestPostReport(t *testing.T) {
	gz := Gzip([]byte(`{"report-id":"x"}`))
	const uri = "https://reports.example.com/v1/tlsrpt"
	tests := []struct {
		name      string
		status    int
		wantErr   bool
		permanent bool
	}{
		{"200 is success (RFC 8460 §5.4)", 200, false, false},
		{"201 is success", 201, false, false},
		{"204 is success", 204, false, false},
		{"404 is permanent", 404, true, true},
		{"400 is permanent", 400, true, true},
		{"413 is permanent", 413, true, true},
		{"408 is temporary", 408, true, false},
		{"429 is temporary", 429, true, false},
		{"500 is temporary", 500, true, false},
		{"503 is temporary", 503, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, client := reportServer(t)
			srv.SetReportStatus(tt.status)
			err := postReport(context.Background(), client, uri, gz, false)
			if (err != nil) != tt.wantErr {
				t.Fatalf("postReport: %v", err)
			}
			if err != nil {
				var se *SubmitError
				if !errors.As(err, &se) || se.Permanent != tt.permanent || se.StatusCode != tt.status || se.Temporary() == tt.permanent {
					t.Fatalf("error %v: want a *SubmitError, permanent %v", err, tt.permanent)
				}
			}
			posted := srv.Reports()
			if len(posted) != 1 {
				t.Fatalf("%d POSTs, want 1", len(posted))
			}
			p := posted[0]
			if p.Host != "reports.example.com" || p.Path != "/v1/tlsrpt" || p.ContentType != "application/tlsrpt+gzip" || !bytes.Equal(p.Body, gz) {
				t.Fatalf("posted %+v", p)
			}
		})
	}
}

func TestPostReportCertificateFailure(t *testing.T) {
	// A client that does not trust the server's CA sees a certificate error.
	srv, client := reportServer(t)
	client.Transport.(*http.Transport).TLSClientConfig.RootCAs = nil
	gz := Gzip([]byte(`{}`))
	const uri = "https://reports.example.com/tlsrpt"

	err := postReport(context.Background(), client, uri, gz, false)
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &cve) || isPermanent(err) {
		t.Fatalf("strict POST: %v, want a temporary certificate verification error", err)
	}
	if n := len(srv.Reports()); n != 0 {
		t.Fatalf("%d reports posted over an unverified connection", n)
	}
	// RFC 8460 §3: reports MUST be delivered despite TLS failures.
	if err := postReport(context.Background(), client, uri, gz, true); err != nil {
		t.Fatalf("POST despite the certificate: %v", err)
	}
	if n := len(srv.Reports()); n != 1 {
		t.Fatalf("%d reports posted, want 1", n)
	}
	if client.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify {
		t.Fatal("the caller's transport was changed")
	}
}

func TestPostReportRedirects(t *testing.T) {
	var got []string
	mux := http.NewServeMux()
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/new", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/kept", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/new", http.StatusPermanentRedirect)
	})
	mux.HandleFunc("/new", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+string(body))
	})
	srv := httptest.NewTLSServer(mux) // listens on 127.0.0.1
	defer srv.Close()
	gz := []byte("gz")

	// A 301 would turn the POST into a GET; it is not followed.
	err := postReport(context.Background(), srv.Client(), srv.URL+"/moved", gz, false)
	var se *SubmitError
	if !errors.As(err, &se) || se.StatusCode != 301 || !se.Permanent || len(got) != 0 {
		t.Fatalf("301: %v, requests %q", err, got)
	}
	// A 308 keeps the method and body; it is followed.
	if err := postReport(context.Background(), srv.Client(), srv.URL+"/kept", gz, false); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "POST gz" {
		t.Fatalf("308: requests %q", got)
	}
}

func TestPostReportTimeout(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err := postReport(ctx, srv.Client(), srv.URL, []byte("gz"), false)
	if err == nil || isPermanent(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want a temporary deadline error", err)
	}
}

func TestGzipIsDeterministic(t *testing.T) {
	js := []byte(`{"organization-name":"x"}`)
	a, b := Gzip(js), Gzip(js)
	if !bytes.Equal(a, b) {
		t.Fatal("two compressions differ")
	}
	zr, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(zr)
	if !bytes.Equal(out, js) || zr.Name != "" || !zr.ModTime.IsZero() {
		t.Fatalf("round trip %q, name %q, time %v", out, zr.Name, zr.ModTime)
	}
}
