package dane

import (
	"slices"
	"strings"
	"testing"
)

// TestParseResolvConf reads resolv.conf files as glibc and Go's net
// package do, so that sealpost asks the servers the machine would.
func TestParseResolvConf(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string // nil means none
		trusted    bool
		err        string
	}{
		{name: "the everyday stub", text: "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n",
			want: []string{"127.0.0.53"}, trusted: true},
		{name: "comments and unknown keywords", text: "# x\n; y\n  # nameserver 192.0.2.9\ndomain example\nsortlist 10.0.0.0\nnameserver ::1 # trailing\n",
			want: []string{"::1"}},
		{name: "tabs and CRLF", text: "nameserver\t127.0.0.1\r\noptions\ttrust-ad\r\n", want: []string{"127.0.0.1"}, trusted: true},
		{name: "a no-break space does not separate fields", text: "nameserver\u00a0192.0.2.1\nnameserver 127.0.0.1\n",
			want: []string{"127.0.0.1"}},
		{name: "only the first three are used", text: "nameserver 127.0.0.1\nnameserver 127.0.0.2\nnameserver 127.0.0.3\nnameserver 192.0.2.1\n",
			want: []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}},
		{name: "trust-ad applies wherever it stands", text: "options trust-ad\nnameserver 192.0.2.1\n", want: []string{"192.0.2.1"}, trusted: true},
		{name: "trust-ad must be a whole option", text: "options trust-ad-not\nnameserver 192.0.2.1\n", want: []string{"192.0.2.1"}},
		{name: "a zone index is kept", text: "nameserver fe80::1%eth0\n", want: []string{"fe80::1%eth0"}},
		{name: "a port is allowed", text: "nameserver 127.0.0.1:5353\nnameserver [::1]:5353\n", want: []string{"127.0.0.1:5353", "[::1]:5353"}},
		{name: "a nameserver line without an address is ignored", text: "nameserver\nnameserver 127.0.0.1\n", want: []string{"127.0.0.1"}},
		{name: "a name where an address belongs is an error", text: "nameserver 127.0.0.1\nnameserver dns.example\n", err: `line 2: nameserver "dns.example" is not an IP address`},
		{name: "keywords are case-sensitive", text: "Nameserver 192.0.2.1\nnameserver 127.0.0.1\n", want: []string{"127.0.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			servers, err := parseResolvConf(strings.NewReader(tc.text))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range servers {
				got = append(got, s.Addr)
				if (s.Trust == TrustAlways) != tc.trusted {
					t.Errorf("%s: trust %v, want trusted %v", s.Addr, s.Trust, tc.trusted)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("servers %q, want %q", got, tc.want)
			}
		})
	}
}
