package hostdial

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// fixedResolver answers every host with addrs, or with err; it remembers
// the questions.
type fixedResolver struct {
	addrs []netip.Addr
	err   error
	asked []string
}

func (r *fixedResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	r.asked = append(r.asked, network+" "+host)
	return r.addrs, r.err
}

var errRefused = errors.New("refused")

// recorder is a dial function that records what it is given and fails
// (or, for the addresses in ok, succeeds with one end of a pipe).
type recorder struct {
	dialled []string
	ok      map[string]bool
}

func (r *recorder) dial(_ context.Context, _, addr string) (net.Conn, error) {
	r.dialled = append(r.dialled, addr)
	if r.ok[addr] {
		c, s := net.Pipe()
		s.Close()
		return c, nil
	}
	return nil, errRefused
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestDialContext(t *testing.T) {
	tests := []struct {
		name    string
		network string
		addr    string
		res     *fixedResolver
		ok      []string
		asked   []string
		dialled []string
		wantErr string // "" means the dial succeeds
	}{
		{name: "every address in turn until one answers", network: "tcp", addr: "reports.example.com:443",
			res: &fixedResolver{addrs: addrs("127.0.0.7", "::1", "127.0.0.8")}, ok: []string{"127.0.0.8:443"},
			asked: []string{"ip reports.example.com"}, dialled: []string{"127.0.0.7:443", "[::1]:443", "127.0.0.8:443"}},
		{name: "IPv4-mapped addresses are dialled as IPv4", network: "tcp", addr: "h.example:25",
			res: &fixedResolver{addrs: addrs("::ffff:127.0.0.9")}, ok: []string{"127.0.0.9:25"},
			asked: []string{"ip h.example"}, dialled: []string{"127.0.0.9:25"}},
		{name: "an IP address is not looked up", network: "tcp", addr: "[::1]:443",
			res: &fixedResolver{}, ok: []string{"[::1]:443"}, dialled: []string{"[::1]:443"}},
		{name: "tcp4 asks for and dials IPv4 only", network: "tcp4", addr: "h.example:443",
			res: &fixedResolver{addrs: addrs("::1", "127.0.0.2")}, ok: []string{"127.0.0.2:443"},
			asked: []string{"ip4 h.example"}, dialled: []string{"127.0.0.2:443"}},
		{name: "tcp6 asks for and dials IPv6 only", network: "tcp6", addr: "h.example:443",
			res:   &fixedResolver{addrs: addrs("127.0.0.2")},
			asked: []string{"ip6 h.example"}, wantErr: "h.example has no ip6 address"},
		{name: "every address failing joins the errors", network: "tcp", addr: "h.example:443",
			res: &fixedResolver{addrs: addrs("127.0.0.2", "127.0.0.3")}, asked: []string{"ip h.example"},
			dialled: []string{"127.0.0.2:443", "127.0.0.3:443"}, wantErr: "refused\nrefused"},
		{name: "no address", network: "tcp", addr: "h.example:443",
			res: &fixedResolver{}, asked: []string{"ip h.example"}, wantErr: "h.example has no ip address"},
		{name: "a failed look-up is not dialled around", network: "tcp", addr: "h.example:443",
			res: &fixedResolver{err: errors.New("SERVFAIL")}, asked: []string{"ip h.example"}, wantErr: "SERVFAIL"},
		{name: "no port", network: "tcp", addr: "h.example", res: &fixedResolver{}, wantErr: "missing port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{ok: map[string]bool{}}
			for _, a := range tc.ok {
				rec.ok[a] = true
			}
			d := &Dialer{Resolver: tc.res, Dial: rec.dial}
			conn, err := d.DialContext(context.Background(), tc.network, tc.addr)
			if conn != nil {
				conn.Close()
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error %v, want a connection", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one saying %q", err, tc.wantErr)
			}
			if !slices.Equal(tc.res.asked, tc.asked) {
				t.Errorf("asked %q, want %q", tc.res.asked, tc.asked)
			}
			if !slices.Equal(rec.dialled, tc.dialled) {
				t.Errorf("dialled %q, want %q", rec.dialled, tc.dialled)
			}
		})
	}
}

// TestNoResolverRefusesNames: a Dialer without a resolver never hands a
// name to the dial function (a net.Dialer would resolve it through the
// machine's resolver); addresses still go through.
func TestNoResolverRefusesNames(t *testing.T) {
	rec := &recorder{ok: map[string]bool{"127.0.0.1:443": true}}
	d := &Dialer{Dial: rec.dial}
	if _, err := d.DialContext(context.Background(), "tcp", "mta-sts.example.com:443"); err == nil ||
		!strings.Contains(err.Error(), `no resolver to look up "mta-sts.example.com"`) {
		t.Errorf("error %v, want a refusal naming the host", err)
	}
	conn, err := d.DialContext(context.Background(), "tcp", "127.0.0.1:443")
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if want := []string{"127.0.0.1:443"}; !slices.Equal(rec.dialled, want) {
		t.Errorf("dialled %q, want %q", rec.dialled, want)
	}
}

// TestCancelledStopsTrying: once the context is done the next addresses
// are not dialled.
func TestCancelledStopsTrying(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var dialled []string
	d := &Dialer{
		Resolver: &fixedResolver{addrs: addrs("127.0.0.2", "127.0.0.3")},
		Dial: func(_ context.Context, _, addr string) (net.Conn, error) {
			dialled = append(dialled, addr)
			cancel()
			return nil, context.Canceled
		},
	}
	if _, err := d.DialContext(ctx, "tcp", "h.example:443"); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if len(dialled) != 1 {
		t.Errorf("dialled %q after the cancel, want only the first address", dialled)
	}
}

// TestDialsLoopback connects for real, with the default net.Dialer, to a
// listener found through the resolver.
func TestDialsLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	d := &Dialer{Resolver: &fixedResolver{addrs: addrs("127.0.0.1")}}
	conn, err := d.DialContext(context.Background(), "tcp", net.JoinHostPort("listener.example", port))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
}
