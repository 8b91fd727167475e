package testenv

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// PolicyPath is where RFC 8461 §3.3 puts the policy on the policy host
// mta-sts.<domain>.
const PolicyPath = "/.well-known/mta-sts.txt"

// maxReportBytes bounds the body of a report POST the server keeps.
const maxReportBytes = 16 << 20

// PolicyResponse is how the policy server answers a fetch of one domain's
// policy. The zero value answers 200 with an empty text/plain body over a
// valid certificate.
type PolicyResponse struct {
	// Body is the policy text.
	Body string
	// Status is the HTTP status code. Zero means 200, or 301 when Location
	// is set.
	Status int
	// ContentType is the Content-Type header. Empty means "text/plain"
	// (RFC 8461 §3.3), unless OmitContentType is set.
	ContentType string
	// OmitContentType sends no Content-Type header at all.
	OmitContentType bool
	// Location, when set, is sent as the Location header: a redirect,
	// which RFC 8461 §3.3 forbids clients to follow.
	Location string
	// Delay is how long the server waits before answering, to test
	// timeouts. Zero answers at once.
	Delay time.Duration
	// BodySize, when positive, makes the body exactly this many bytes:
	// Body padded with junk, or cut. The body is then streamed without a
	// Content-Length, so a client must count what it reads.
	BodySize int
	// Certificate is the certificate offered for mta-sts.<domain>. Nil
	// means a valid leaf for that name issued by the server's CA.
	Certificate *tls.Certificate
}

// Posted is one report a client POSTed to the server.
type Posted struct {
	Host        string // Host header, without port
	Path        string
	ContentType string
	Header      http.Header
	Body        []byte // at most 16 MiB are kept
}

// PolicyServer is one HTTPS server on loopback serving MTA-STS policies for
// many domains, choosing the certificate by SNI, and accepting TLS-RPT
// reports by POST. Its methods are safe for concurrent use.
type PolicyServer struct {
	ca      *CA
	ln      net.Listener
	srv     *http.Server
	served  chan struct{}
	closing chan struct{}
	once    sync.Once

	mu           sync.Mutex
	domains      map[string]PolicyResponse
	fetches      map[string]int
	certs        map[string]*tls.Certificate // by SNI name: set by SetCertificate
	issued       map[string]*tls.Certificate // by SNI name: issued on demand
	reports      []Posted
	reportStatus int
}

// StartPolicyServer starts an HTTPS server on 127.0.0.1 with a random
// port whose default certificates are issued by ca. Route
// "mta-sts.<domain>:443" to its Addr with a Dialer. Call Close when done.
func StartPolicyServer(ca *CA) (*PolicyServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testenv: policy server: %w", err)
	}
	s := &PolicyServer{
		ca:      ca,
		served:  make(chan struct{}),
		closing: make(chan struct{}),
		domains: make(map[string]PolicyResponse),
		fetches: make(map[string]int),
		certs:   make(map[string]*tls.Certificate),
		issued:  make(map[string]*tls.Certificate),
	}
	s.ln = tls.NewListener(ln, &tls.Config{GetCertificate: s.certificate})
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		// Handshake failures are what many tests provoke; keep them quiet.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(s.ln)
	}()
	return s, nil
}

// Addr returns the address the server listens on, e.g. "127.0.0.1:40123".
func (s *PolicyServer) Addr() string { return s.ln.Addr().String() }

// Close stops the server, ends pending (delayed) answers and closes every
// connection. It may be called more than once.
func (s *PolicyServer) Close() {
	s.once.Do(func() { close(s.closing) })
	_ = s.srv.Close()
	s.ln.Close() // in case Serve had not yet taken it
	<-s.served
}

// Set says how to answer fetches of domain's policy from now on.
func (s *PolicyServer) Set(domain string, r PolicyResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.domains[normalizeName(domain)] = r
}

// Remove forgets domain: its policy host then answers 404.
func (s *PolicyServer) Remove(domain string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.domains, normalizeName(domain))
}

// SetCertificate makes the server offer cert to clients asking (by SNI)
// for host, such as a TLS-RPT report host. For mta-sts.<domain>,
// PolicyResponse.Certificate takes precedence.
func (s *PolicyServer) SetCertificate(host string, cert *tls.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.certs[normalizeName(host)] = cert
}

// Fetches returns how many requests for domain's policy (GET of PolicyPath
// on mta-sts.<domain>) the server received.
func (s *PolicyServer) Fetches(domain string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches[normalizeName(domain)]
}

// Reports returns a copy of the POSTed reports, in order of arrival.
func (s *PolicyServer) Reports() []Posted {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Posted(nil), s.reports...)
}

// SetReportStatus sets the status code answered to report POSTs. Zero
// means 200.
func (s *PolicyServer) SetReportStatus(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reportStatus = code
}

// normalizeName lower-cases a DNS name and drops a trailing dot.
func normalizeName(name string) string {
	return strings.TrimSuffix(strings.ToLower(name), ".")
}

// certificate picks the certificate by SNI: the domain's configured one,
// then one set for the host, then a valid leaf issued for the name (for
// the loopback addresses when the client sent no SNI).
func (s *PolicyServer) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := normalizeName(hello.ServerName)
	s.mu.Lock()
	defer s.mu.Unlock()
	if domain, ok := strings.CutPrefix(name, "mta-sts."); ok {
		if r, ok := s.domains[domain]; ok && r.Certificate != nil {
			return r.Certificate, nil
		}
	}
	if c := s.certs[name]; c != nil {
		return c, nil
	}
	if c := s.issued[name]; c != nil {
		return c, nil
	}
	names := []string{name}
	if name == "" {
		names = []string{"localhost", "127.0.0.1", "::1"}
	}
	c, err := s.ca.Leaf(LeafOptions{}, names...)
	if err != nil {
		return nil, err
	}
	s.issued[name] = &c
	return &c, nil
}

func (s *PolicyServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = normalizeName(host)
	switch {
	case r.Method == http.MethodPost:
		s.serveReport(w, r, host)
	case r.Method == http.MethodGet && r.URL.Path == PolicyPath && strings.HasPrefix(host, "mta-sts."):
		s.servePolicy(w, r, strings.TrimPrefix(host, "mta-sts."))
	default:
		http.NotFound(w, r)
	}
}

func (s *PolicyServer) servePolicy(w http.ResponseWriter, r *http.Request, domain string) {
	s.mu.Lock()
	s.fetches[domain]++
	resp, ok := s.domains[domain]
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if resp.Delay > 0 {
		t := time.NewTimer(resp.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			// The client gave up: send nothing at all. Returning would let
			// net/http answer an empty 200 that a client racing its own
			// deadline could still read as the policy.
			panic(http.ErrAbortHandler)
		case <-s.closing:
			panic(http.ErrAbortHandler)
		}
	}
	h := w.Header()
	switch {
	case resp.OmitContentType:
		h["Content-Type"] = nil // suppresses net/http's sniffing
	case resp.ContentType != "":
		h.Set("Content-Type", resp.ContentType)
	default:
		h.Set("Content-Type", "text/plain")
	}
	status := resp.Status
	if resp.Location != "" {
		h.Set("Location", resp.Location)
		if status == 0 {
			status = http.StatusMovedPermanently
		}
	}
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	writeBody(w, resp.Body, resp.BodySize)
}

// writeBody writes body, padded with junk or cut to size when size is
// positive, and stops when the client goes away.
func writeBody(w io.Writer, body string, size int) {
	if size <= 0 {
		io.WriteString(w, body)
		return
	}
	if len(body) >= size {
		io.WriteString(w, body[:size])
		return
	}
	if _, err := io.WriteString(w, body); err != nil {
		return
	}
	junk := []byte(strings.Repeat("junk-padding-", 2048))
	for left := size - len(body); left > 0; {
		n := min(left, len(junk))
		if _, err := w.Write(junk[:n]); err != nil {
			return
		}
		left -= n
	}
}

func (s *PolicyServer) serveReport(w http.ResponseWriter, r *http.Request, host string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReportBytes))
	if err != nil {
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.reports = append(s.reports, Posted{
		Host:        host,
		Path:        r.URL.Path,
		ContentType: r.Header.Get("Content-Type"),
		Header:      r.Header.Clone(),
		Body:        body,
	})
	status := s.reportStatus
	s.mu.Unlock()
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
}
