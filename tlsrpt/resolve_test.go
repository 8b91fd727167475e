package tlsrpt

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/testenv"
)

// addrTXT is a fakeTXT that also finds hosts' addresses, as *dane.Resolver
// does.
type addrTXT struct {
	*fakeTXT
	hosts map[string][]netip.Addr
}

func (r addrTXT) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r.hosts[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// TestDefaultClientResolvesThroughResolver: with no HTTPClient, the host
// of an https: destination is looked up through Config.Resolver, not
// through the machine's resolver (review finding 2), and the report
// reaches the server at the address the resolver gave.
func TestDefaultClientResolvesThroughResolver(t *testing.T) {
	srv, _ := startReportServer(t)
	ap := netip.MustParseAddrPort(srv.Addr())
	dns := addrTXT{&fakeTXT{answers: map[string][]string{}}, map[string][]netip.Addr{"reports.example.com": {ap.Addr()}}}
	dns.publish("example.com", "v=TLSRPTv1; rua=https://reports.example.com:"+itoa(int64(ap.Port()))+"/v1/tlsrpt")
	r, err := NewReporter(Config{OrganizationName: "Sender", Submitter: "sender.example", Resolver: dns, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	before := len(testenv.TrappedLookups())
	r.Store().AddCounts(context.Background(), []Counts{{Day: DayOf(day0), Policy: stsPolicy, Successful: 3}})
	// The server's certificate is from a CA the default client does not
	// know: the verified POST fails and the unverified one RFC 8460 §3
	// allows delivers the report.
	if err := r.SendDay(context.Background(), DayOf(day0)); err != nil {
		t.Errorf("SendDay: %v", err)
	}
	if asked := testenv.TrappedLookups()[before:]; len(asked) > 0 {
		t.Errorf("the machine's resolver was asked %q", asked)
	}
	if got := srv.Reports(); len(got) != 1 || got[0].Host != "reports.example.com" || got[0].Path != "/v1/tlsrpt" {
		t.Errorf("reports posted: %+v, want one to reports.example.com/v1/tlsrpt", got)
	}
}

// TestDefaultClientNeedsAnAddressResolver: a configured Resolver that
// cannot look up addresses is not quietly replaced by the machine's for
// https: destinations; the submission fails and says what to configure.
func TestDefaultClientNeedsAnAddressResolver(t *testing.T) {
	dns := &fakeTXT{answers: map[string][]string{}}
	dns.publish("example.com", "v=TLSRPTv1; rua=https://reports.example.com/v1/tlsrpt")
	r, err := NewReporter(Config{OrganizationName: "Sender", Submitter: "sender.example", Resolver: dns, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	before := len(testenv.TrappedLookups())
	r.Store().AddCounts(context.Background(), []Counts{{Day: DayOf(day0), Policy: stsPolicy, Successful: 3}})
	if err := r.SendDay(context.Background(), DayOf(day0)); err != nil {
		t.Fatal(err)
	}
	sub := submission(t, r, DayOf(day0), "example.com")
	if len(sub.Destinations) != 1 || !strings.Contains(sub.Destinations[0].Error, "HTTPClient") {
		t.Errorf("destinations %+v, want one whose error says to set HTTPClient", sub.Destinations)
	}
	if asked := testenv.TrappedLookups()[before:]; len(asked) > 0 {
		t.Errorf("the machine's resolver was asked %q", asked)
	}
}
