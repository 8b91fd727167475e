package sts

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
)

// addrResolver answers every host with the same addresses.
type addrResolver struct{ addrs []netip.Addr }

func (addrResolver) LookupTXT(context.Context, string) ([]string, error) { return nil, nil }
func (r addrResolver) LookupNetIP(_ context.Context, _, _ string) ([]netip.Addr, error) {
	return r.addrs, nil
}

// TestPolicyHostDialledByAddress: with an AddrResolver the dialer is given
// the policy host's addresses in turn, never its name, which a net.Dialer
// would resolve through the system's resolver (review finding 2).
func TestPolicyHostDialledByAddress(t *testing.T) {
	var dialled []string
	c := &Client{
		Resolver: addrResolver{[]netip.Addr{netip.MustParseAddr("127.0.0.7"), netip.MustParseAddr("::1")}},
		DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
			dialled = append(dialled, addr)
			return nil, errors.New("refused")
		},
	}
	if _, err := c.dialPolicyHost(context.Background(), "tcp", "mta-sts.example.com:443"); err == nil {
		t.Fatal("dial succeeded")
	}
	if want := []string{"127.0.0.7:443", "[::1]:443"}; !slices.Equal(dialled, want) {
		t.Errorf("dialled %q, want %q", dialled, want)
	}
}
