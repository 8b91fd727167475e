package dane

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzFollowChain feeds hostile resolver answers to the code that reads
// them: it must never panic nor loop, and must never call an answer secure
// that came without the AD bit, nor return records of another type.
func FuzzFollowChain(f *testing.F) {
	seed := func(rcode int, ad bool, rrs ...string) []byte {
		m := new(dns.Msg)
		m.SetQuestion("a.example.", dns.TypeMX)
		m.Response, m.Rcode, m.AuthenticatedData = true, rcode, ad
		for _, s := range rrs {
			rr, err := dns.NewRR(s)
			if err != nil {
				f.Fatal(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(seed(dns.RcodeSuccess, true, "a.example. 60 IN MX 10 mx.a.example."))
	f.Add(seed(dns.RcodeSuccess, false, "a.example. 60 IN CNAME b.example.", "b.example. 60 IN MX 0 ."))
	f.Add(seed(dns.RcodeSuccess, true, "a.example. 60 IN CNAME b.example.", "b.example. 60 IN CNAME a.example."))
	f.Add(seed(dns.RcodeNameError, true, "a.example. 60 IN CNAME b.example."))
	f.Add(seed(dns.RcodeSuccess, true, "A.EXAMPLE. 60 IN A 192.0.2.1"))
	f.Fuzz(func(t *testing.T, wire []byte) {
		msg := new(dns.Msg)
		if msg.Unpack(wire) != nil {
			return
		}
		calls := 0
		exchange := func(ctx context.Context, name string, qtype uint16) (*dns.Msg, resolvedServer, *DNSError) {
			calls++
			return msg, resolvedServer{addr: "127.0.0.1:53", trusted: true}, nil
		}
		e := followChain(context.Background(), "a.example.", dns.TypeMX, defaultMaxCNAMEs, exchange)
		if calls > defaultMaxCNAMEs+1 {
			t.Fatalf("asked %d times for one look-up", calls)
		}
		if e.answer == nil {
			if e.err == nil {
				t.Fatal("neither answer nor error")
			}
			return
		}
		if e.answer.Secure && !msg.AuthenticatedData {
			t.Fatal("secure answer from a message without the AD bit")
		}
		if len(e.answer.Chain) > defaultMaxCNAMEs {
			t.Fatalf("chain of %d CNAMEs", len(e.answer.Chain))
		}
		for _, rr := range e.answer.Records {
			h := rr.Header()
			if h.Rrtype != dns.TypeMX || !strings.EqualFold(h.Name, e.answer.Canonical) {
				t.Fatalf("record %v at %s returned for MX at %s", rr, h.Name, e.answer.Canonical)
			}
		}
		if len(e.answer.Records) > 0 && e.err != nil {
			t.Fatalf("records and an error: %v", e.err)
		}
	})
}

// FuzzParseResolvConf: whatever a resolv.conf holds, the servers read
// from it are at most three IP addresses, written back they read back the
// same, and they are trusted exactly when an options line says trust-ad.
func FuzzParseResolvConf(f *testing.F) {
	f.Add("nameserver 127.0.0.1\noptions trust-ad\n")
	f.Add("# c\nnameserver ::1\nnameserver fe80::1%eth0\nsearch a b\n")
	f.Add("nameserver\noptions\n\x00")
	f.Add("nameserver 127.0.0.53\nnameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\n")
	f.Add("nameserver\u00a0127.0.0.1\nnameserver\t::1\r\n  ;nameserver 192.0.2.9\noptions ndots:1 trust-ad\n")
	f.Add("nameserver 127.0.0.1:53\n")
	f.Add("nameserver 127.0.0.1\n# " + strings.Repeat("x", 4000) + "\n")
	f.Fuzz(func(t *testing.T, text string) {
		servers, err := parseResolvConf(strings.NewReader(text))
		if err != nil {
			return
		}
		if len(servers) > maxNameservers {
			t.Fatalf("%d servers read, the system uses at most %d", len(servers), maxNameservers)
		}
		trustAD := false
		for _, line := range strings.Split(text, "\n") {
			f := strings.FieldsFunc(line, func(c rune) bool { return c == ' ' || c == '\t' || c == '\r' })
			if len(f) > 0 && f[0] == "options" && slices.Contains(f[1:], "trust-ad") {
				trustAD = true
			}
		}
		var written strings.Builder
		for _, s := range servers {
			if _, _, err := parseServer(s); err != nil {
				t.Fatalf("server %q is not usable: %v", s.Addr, err)
			}
			if (s.Trust == TrustAlways) != trustAD {
				t.Fatalf("server %q trust %v, trust-ad %v", s.Addr, s.Trust, trustAD)
			}
			if !strings.Contains(text, s.Addr) {
				t.Fatalf("server %q is not in the file", s.Addr)
			}
			fmt.Fprintf(&written, "nameserver %s\n", s.Addr)
		}
		if trustAD {
			written.WriteString("options trust-ad\n")
		}
		again, err := parseResolvConf(strings.NewReader(written.String()))
		if err != nil || !slices.Equal(again, servers) {
			t.Fatalf("read %v, written %q, read back %v (%v)", servers, written.String(), again, err)
		}
	})
}
