package testenv

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// echoListener accepts connections on addr and writes "hello" to each.
func echoListener(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello")
			c.Close()
		}
	}()
	return ln
}

func readAll(t *testing.T, c net.Conn) string {
	t.Helper()
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDialerRoutes(t *testing.T) {
	ln := echoListener(t, "127.0.0.1:0")
	d := NewDialer()
	d.Route("MTA-STS.Example.COM.:443", ln.Addr().String())
	d.Route("127.0.0.2:25", ln.Addr().String())
	d.Route("[::1]:25", ln.Addr().String())
	for _, addr := range []string{"mta-sts.example.com:443", "mta-sts.example.com.:443", "127.0.0.2:25", "[0:0::1]:25", "[::ffff:127.0.0.2]:25"} {
		c, err := d.DialContext(context.Background(), "tcp", addr)
		if err != nil {
			t.Errorf("%s: %v", addr, err)
			continue
		}
		if got := readAll(t, c); got != "hello" {
			t.Errorf("%s: read %q", addr, got)
		}
	}
	if n := d.Dials("mta-sts.example.com:443"); n != 2 {
		t.Errorf("Dials = %d, want 2", n)
	}
	want := []string{"mta-sts.example.com:443", "mta-sts.example.com:443", "127.0.0.2:25", "[::1]:25", "127.0.0.2:25"}
	if got := d.Dialed(); !slices.Equal(got, want) {
		t.Errorf("Dialed = %q, want %q", got, want)
	}
}

func TestDialerFailures(t *testing.T) {
	ln := echoListener(t, "127.0.0.1:0")
	tests := []struct {
		name  string
		setup func(d *Dialer)
		addr  string
		ctx   time.Duration // deadline; 0 = none
		check func(error) bool
	}{
		{"unrouted address is never dialed", func(*Dialer) {}, "127.0.0.9:25", 0,
			func(err error) bool { return errors.Is(err, ErrNoRoute) && !strings.Contains(err.Error(), "host name") }},
		{"an unrouted name says it went around the resolver", func(*Dialer) {}, "mx.example.com:25", 0,
			func(err error) bool {
				return errors.Is(err, ErrNoRoute) && strings.Contains(err.Error(), "given a host name, not an address")
			}},
		{"refused", func(d *Dialer) { d.Refuse("127.0.0.2:25") }, "127.0.0.2:25", 0,
			func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }},
		{"refused even when routed", func(d *Dialer) { d.Route("127.0.0.2:25", ln.Addr().String()); d.Refuse("127.0.0.2:25") }, "127.0.0.2:25", 0,
			func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }},
		{"blackhole hangs until the deadline", func(d *Dialer) { d.Route("127.0.0.2:25", ln.Addr().String()); d.Blackhole("127.0.0.2:25") }, "127.0.0.2:25", 20 * time.Millisecond,
			func(err error) bool {
				var ne net.Error
				return errors.Is(err, context.DeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
			}},
		{"latency longer than the deadline", func(d *Dialer) { d.Route("127.0.0.2:25", ln.Addr().String()); d.Latency("127.0.0.2:25", time.Hour) }, "127.0.0.2:25", 20 * time.Millisecond,
			func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		{"route to a non-loopback address", func(d *Dialer) { d.Route("mx.example.com:25", "192.0.2.1:25") }, "mx.example.com:25", 0,
			func(err error) bool { return err != nil && !errors.Is(err, ErrNoRoute) }},
		{"route to a name", func(d *Dialer) { d.Route("mx.example.com:25", "localhost:25") }, "mx.example.com:25", 0,
			func(err error) bool { return err != nil }},
		{"address without port", func(*Dialer) {}, "mx.example.com", 0,
			func(err error) bool { return err != nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDialer()
			tt.setup(d)
			ctx := context.Background()
			if tt.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctx)
				defer cancel()
			}
			c, err := d.DialContext(ctx, "tcp", tt.addr)
			if c != nil {
				c.Close()
			}
			var op *net.OpError
			if !tt.check(err) || !errors.As(err, &op) {
				t.Errorf("got %v (%T)", err, err)
			}
		})
	}
}

func TestDialerCancelAndHeal(t *testing.T) {
	ln := echoListener(t, "127.0.0.1:0")
	d := NewDialer()
	d.Route("127.0.0.2:25", ln.Addr().String())
	d.Blackhole("127.0.0.2:25")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := d.Dial(ctx, "tcp", "127.0.0.2:25")
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled dial: %v, want context.Canceled", err)
	}

	d.Heal("127.0.0.2:25")
	d.Latency("127.0.0.2:25", time.Millisecond)
	c, err := d.DialContext(context.Background(), "tcp4", "127.0.0.2:25")
	if err != nil {
		t.Fatalf("dial with small latency: %v", err)
	}
	if got := readAll(t, c); got != "hello" {
		t.Errorf("read %q", got)
	}
}

func TestDialerRouteBadAddressPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Route of an address without port did not panic")
		}
	}()
	NewDialer().Route("mx.example.com", "127.0.0.1:25")
}

func TestDialerOnlyTCP(t *testing.T) {
	ln := echoListener(t, "127.0.0.1:0")
	d := NewDialer()
	d.Route("127.0.0.2:53", ln.Addr().String())
	if c, err := d.DialContext(context.Background(), "udp", "127.0.0.2:53"); err == nil {
		c.Close()
		t.Error("udp dial succeeded")
	}
}
