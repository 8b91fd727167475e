package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/testenv"
)

// The benchmarks deliver 5 KB messages to a loopback TLS sink that
// discards them, so that what is measured is the sender. Each reports
// msgs/s; the baselines (a bare go-smtp client) run in the same
// invocation, so the ratios are meaningful on any machine.

const benchBodySize = 5 << 10

// discardBackend is a go-smtp backend that accepts and drops everything.
type discardBackend struct{}

func (discardBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return discardSession{}, nil }

type discardSession struct{}

func (discardSession) Reset()                               {}
func (discardSession) Logout() error                        { return nil }
func (discardSession) Mail(string, *smtp.MailOptions) error { return nil }
func (discardSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (discardSession) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }

// benchWorld is a DNSSEC-signed domain whose one MX host, pinned by a
// "3 1 1" TLSA record, is a discarding TLS sink.
type benchWorld struct {
	w    *testenv.World
	addr string // the sink's real address, for the baseline
	tls  *tls.Config
	body []byte
}

func newBenchWorld(b *testing.B) *benchWorld {
	b.Helper()
	w, err := testenv.NewWorld()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(w.Close)
	if err := w.DNS.Zone("bench.example.", testenv.Secure); err != nil {
		b.Fatal(err)
	}
	cert := w.CA.MustLeaf(testenv.LeafOptions{}, "mx.bench.example")
	ip := w.NextIP()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		b.Fatal(err)
	}
	srv := smtp.NewServer(discardBackend{})
	srv.Domain = "mx.bench.example"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.MaxMessageBytes = 1 << 20
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	for _, rr := range []string{"bench.example. 300 IN MX 10 mx.bench.example.", "mx.bench.example. 300 IN A " + ip} {
		if err := w.DNS.Add(rr); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.PublishTLSA("mx.bench.example", cert); err != nil {
		b.Fatal(err)
	}
	w.Dialer.Route(ip+":25", ln.Addr().String())
	body := []byte("From: a@sender.example\r\nTo: bob@bench.example\r\nSubject: benchmark\r\n\r\n" +
		strings.Repeat(strings.Repeat("x", 78)+"\r\n", benchBodySize/80))
	return &benchWorld{w: w, addr: ln.Addr().String(), tls: &tls.Config{InsecureSkipVerify: true}, body: body}
}

func (bw *benchWorld) client(b *testing.B, edit func(*Config)) *Client {
	cfg := Config{
		Hostname: "sender.example",
		Resolver: &dane.Resolver{Servers: []dane.Server{{Addr: bw.w.DNS.Addr}}},
		Dial:     bw.w.Dialer.DialContext,
		RootCAs:  bw.w.CA.Pool(),
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

func (bw *benchWorld) message() *Message {
	return &Message{From: "a@sender.example", Recipients: []Recipient{{Address: "bob@bench.example"}},
		Body: bytes.NewReader(bw.body), Size: int64(len(bw.body))}
}

func (bw *benchWorld) deliver(b *testing.B, c *Client, want Authentication) {
	res, err := c.Deliver(context.Background(), bw.message())
	if err != nil {
		b.Fatal(err)
	}
	if res[0].Status != Delivered || res[0].Session.Auth != want {
		b.Fatalf("%+v", res[0])
	}
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkDeliverReuse is one sender delivering one message after the
// other: DANE-verified TLS, connection reuse, against the bare go-smtp
// client over one TLS connection.
func BenchmarkDeliverReuse(b *testing.B) {
	b.Run("sealpost-DANE", func(b *testing.B) {
		bw := newBenchWorld(b)
		c := bw.client(b, nil)
		bw.deliver(b, c, DANEEE) // warm caches and the pool
		b.SetBytes(int64(len(bw.body)))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			bw.deliver(b, c, DANEEE)
		}
		reportRate(b)
	})
	b.Run("go-smtp-baseline", func(b *testing.B) {
		bw := newBenchWorld(b)
		gc, err := smtp.DialStartTLS(bw.addr, bw.tls)
		if err != nil {
			b.Fatal(err)
		}
		defer gc.Close()
		b.SetBytes(int64(len(bw.body)))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := gc.SendMail("a@sender.example", []string{"bob@bench.example"}, bytes.NewReader(bw.body)); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})
}

// BenchmarkDeliverNoReuse is the same with a new connection, STARTTLS
// handshake and (for sealpost) DANE verification per message.
func BenchmarkDeliverNoReuse(b *testing.B) {
	b.Run("sealpost-DANE", func(b *testing.B) {
		bw := newBenchWorld(b)
		c := bw.client(b, func(cfg *Config) { cfg.IdleTimeout = -1 })
		bw.deliver(b, c, DANEEE)
		b.SetBytes(int64(len(bw.body)))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			bw.deliver(b, c, DANEEE)
		}
		reportRate(b)
	})
	b.Run("go-smtp-baseline", func(b *testing.B) {
		bw := newBenchWorld(b)
		b.SetBytes(int64(len(bw.body)))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			gc, err := smtp.DialStartTLS(bw.addr, bw.tls)
			if err != nil {
				b.Fatal(err)
			}
			if err := gc.SendMail("a@sender.example", []string{"bob@bench.example"}, bytes.NewReader(bw.body)); err != nil {
				b.Fatal(err)
			}
			gc.Quit()
		}
		reportRate(b)
	})
}

// BenchmarkDeliverParallel is many goroutines sharing one Client, as a
// queue's workers do: the pool opens up to MaxConnsPerHost sessions.
func BenchmarkDeliverParallel(b *testing.B) {
	bw := newBenchWorld(b)
	c := bw.client(b, nil)
	bw.deliver(b, c, DANEEE)
	b.SetBytes(int64(len(bw.body)))
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bw.deliver(b, c, DANEEE)
		}
	})
	reportRate(b)
}

// BenchmarkRoute is the cost of deciding where a message goes and what
// each host is held to, with warm caches: MX look-up, MTA-STS look-up,
// DANE requirement, local policy.
func BenchmarkRoute(b *testing.B) {
	bw := newBenchWorld(b)
	if err := bw.w.PublishSTS("bench.example", "1", "version: STSv1\nmode: enforce\nmx: mx.bench.example\nmax_age: 86400\n"); err != nil {
		b.Fatal(err)
	}
	c := bw.client(b, nil)
	ctx := context.Background()
	m := bw.message()
	route := func() {
		t, err := c.target(ctx, "bench.example", "")
		if err != nil {
			b.Fatal(err)
		}
		d := &decision{t: t, sts: c.lookupSTS(ctx, t.domain, DomainPolicy{}), msg: m, now: c.now()}
		req, err := c.decide(ctx, d, t.route.Hosts[0])
		if err != nil || req.Basis != BasisDANE {
			b.Fatal(req, err)
		}
	}
	route()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		route()
	}
}
