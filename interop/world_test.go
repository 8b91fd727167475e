package interop

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/internal/testenv"
)

// TestMain fails the package if anything in it asks the machine's
// resolver: every name goes to Unbound.
func TestMain(m *testing.M) { testenv.Main(m) }

// servers returns the resolver's and the authoritative server's addresses,
// or skips the test (fails it under CI) when they are not running.
func servers(t *testing.T) (resolver, authority string) {
	t.Helper()
	resolver, authority = os.Getenv("SEALPOST_INTEROP_RESOLVER"), os.Getenv("SEALPOST_INTEROP_AUTHORITY")
	if resolver == "" || authority == "" {
		const how = `interop: no real servers: as root, eval "$(.ci/interop-up /tmp/interop)" and run the tests again`
		if os.Getenv("CI") == "true" {
			t.Fatal(how + " (under CI the interop suite must run)")
		}
		t.Skip(how)
	}
	return resolver, authority
}

// world is one test's view of the real DNS: names under the test's own
// label, so that tests never see each other's records.
type world struct {
	t         *testing.T
	resolver  string
	authority string
	label     string // unique per test: "t1", "t2", ...
	dialer    *testenv.Dialer
	ca        *testenv.CA
	pins      map[string]string // host -> the "3 1 1" data of its sink's key
}

var tests atomic.Int32

func newWorld(t *testing.T) *world {
	t.Helper()
	resolver, authority := servers(t)
	ca, err := testenv.NewCA("interop root")
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, resolver: resolver, authority: authority, ca: ca, dialer: testenv.NewDialer(), pins: map[string]string{},
		label: fmt.Sprintf("t%d-%d", os.Getpid()%10000, tests.Add(1))}
}

// name returns host under the test's label in zone: "mx.t3.secure.test".
func (w *world) name(host, zone string) string { return host + "." + w.label + "." + zone }

// update sends zone an RFC 2136 update that first removes the RRsets of
// the records' names and types, then adds the records; Knot signs them
// again at once.
func (w *world) update(zone string, records ...string) {
	w.t.Helper()
	m := new(dns.Msg)
	m.SetUpdate(dns.Fqdn(zone))
	var rrs []dns.RR
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			w.t.Fatalf("record %q: %v", s, err)
		}
		rrs = append(rrs, rr)
	}
	m.RemoveRRset(rrs)
	m.Insert(rrs)
	c := &dns.Client{Timeout: 5 * time.Second}
	in, _, err := c.Exchange(m, w.authority)
	if err != nil {
		w.t.Fatalf("update of %s: %v", zone, err)
	}
	if in.Rcode != dns.RcodeSuccess {
		w.t.Fatalf("update of %s: %s", zone, dns.RcodeToString[in.Rcode])
	}
}

// mx starts a sink for host, publishes it as domain's one MX with the
// address ip, and routes ip:25 to it. tlsa, when not empty, is the host's
// TLSA record data ("3 1 1 <hex>"); "pin" pins the sink's own key.
func (w *world) mx(zone, domain, host, ip, tlsa string) *testenv.SMTPServer {
	w.t.Helper()
	cert := w.ca.MustLeaf(testenv.LeafOptions{}, host)
	sink, err := testenv.StartSMTP(testenv.SMTPOptions{Hostname: host, Certificate: &cert})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(sink.Close)
	w.dialer.Route(ip+":25", sink.Addr())
	records := []string{domain + ". 2 IN MX 10 " + host + ".", host + ". 2 IN A " + ip}
	w.pins[host] = pin(cert)
	if tlsa == "pin" {
		tlsa = w.pins[host]
	}
	if tlsa != "" {
		records = append(records, "_25._tcp."+host+". 2 IN TLSA "+tlsa)
	}
	w.update(zone, records...)
	return sink
}

// pin is the "3 1 1" TLSA data of cert's key.
func pin(cert tls.Certificate) string {
	sum := sha256.Sum256(cert.Leaf.RawSubjectPublicKeyInfo)
	return "3 1 1 " + hex.EncodeToString(sum[:])
}

// client returns a delivery client that asks Unbound and dials through
// the world's dialer.
func (w *world) client() *delivery.Client {
	w.t.Helper()
	c, err := delivery.NewClient(delivery.Config{
		Hostname: "sender.test",
		Resolver: &dane.Resolver{Servers: []dane.Server{{Addr: w.resolver}}, Timeout: 2 * time.Second, Attempts: 2, FailureTTL: -1},
		Dial:     w.dialer.DialContext,
		RootCAs:  w.ca.Pool(),
	})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { c.Close() })
	return c
}

// send delivers one message to rcpt and returns its result.
func (w *world) send(c *delivery.Client, rcpt string) delivery.Result {
	w.t.Helper()
	body := "From: a@sender.test\r\nTo: " + rcpt + "\r\nSubject: interop\r\n\r\nhello\r\n"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.Deliver(ctx, &delivery.Message{From: "a@sender.test", Recipients: []delivery.Recipient{{Address: rcpt}},
		Body: strings.NewReader(body), Size: int64(len(body))})
	if err != nil {
		w.t.Fatal(err)
	}
	return res[0]
}

// eventually retries check until it passes or 15 seconds have gone by:
// records changed by an update reach the library once Unbound's cache
// and the DANE cache have let the old ones go (TTL 2, cache-max-ttl 1).
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
