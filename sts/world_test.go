package sts

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/testenv"
)

// fakeTXT is a TXTResolver answering from a map, as the DNS layer would
// after following CNAMEs and joining character-strings. Names are the fully
// qualified ones the client asks for.
type fakeTXT struct {
	mu      sync.Mutex
	records map[string][]string
	errs    map[string]error
	lookups map[string]int
}

func newFakeTXT() *fakeTXT {
	return &fakeTXT{records: map[string][]string{}, errs: map[string]error{}, lookups: map[string]int{}}
}

func (f *fakeTXT) LookupTXT(ctx context.Context, name string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups[name]++
	if err := f.errs[name]; err != nil {
		return nil, err
	}
	r, ok := f.records[name]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return r, nil
}

// set makes name answer with records (and removes a failure set before).
func (f *fakeTXT) set(name string, records ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.records[name] = records
	delete(f.errs, name)
}

// fail makes look-ups of name fail with err.
func (f *fakeTXT) fail(name string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[name] = err
}

// remove makes name not exist (NXDOMAIN).
func (f *fakeTXT) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.records, name)
	delete(f.errs, name)
}

func (f *fakeTXT) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lookups[name]
}

// fakeClock is a settable clock, starting at the real time so that the
// test CA's certificates are valid.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// world is a loopback world for the sts client: the fake TXT resolver, the
// test environment's HTTPS policy server and dialer, a CA and a clock.
type world struct {
	t      testing.TB
	ca     *testenv.CA
	srv    *testenv.PolicyServer
	dialer *testenv.Dialer
	dns    *fakeTXT
	clock  *fakeClock
	client *Client
}

func newWorld(t testing.TB) *world {
	t.Helper()
	ca := newCA(t, "sts test root")
	srv, err := testenv.StartPolicyServer(ca)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	w := &world{t: t, ca: ca, srv: srv, dialer: testenv.NewDialer(), dns: newFakeTXT(), clock: newFakeClock()}
	w.client = &Client{
		Resolver:    w.dns,
		DialContext: w.dialer.DialContext,
		RootCAs:     ca.Pool(),
		Timeout:     5 * time.Second,
		Now:         w.clock.Now,
	}
	return w
}

// publish makes domain publish a TXT record with id and serve policy.
func (w *world) publish(domain, id, policy string) {
	w.dns.set(txtName(domain), "v=STSv1; id="+id)
	w.serve(domain, testenv.PolicyResponse{Body: policy})
}

// serve makes the policy host of domain answer with r.
func (w *world) serve(domain string, r testenv.PolicyResponse) {
	w.srv.Set(domain, r)
	w.dialer.Route("mta-sts."+domain+":443", w.srv.Addr())
}

const (
	enforcePolicy = "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmx: *.mx.example.net\nmax_age: 86400\n"
	testingPolicy = "version: STSv1\nmode: testing\nmx: mx2.example.com\nmax_age: 86400\n"
	nonePolicy    = "version: STSv1\nmode: none\nmax_age: 86400\n"
)
