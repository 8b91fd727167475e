package testenv

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"
)

func TestWorld(t *testing.T) {
	w, err := NewWorld()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.DNS.Zone("example.com.", Secure, "@ 300 IN MX 10 mx.example.com."); err != nil {
		t.Fatal(err)
	}
	cert := w.CA.MustLeaf(LeafOptions{}, "mx.example.com")
	sink, ip, err := w.MX("mx.example.com", SMTPOptions{Certificate: &cert})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.PublishTLSA("mx.example.com", cert); err != nil {
		t.Fatal(err)
	}
	if err := w.PublishSTS("example.com", "1", "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n"); err != nil {
		t.Fatal(err)
	}

	// DNS knows the host, its TLSA record and the STS record.
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"mx.example.com.", dns.TypeA}, {"_25._tcp.mx.example.com.", dns.TypeTLSA}, {"_mta-sts.example.com.", dns.TypeTXT}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		r, err := dns.Exchange(m, w.DNS.Addr)
		if err != nil || len(r.Answer) != 1 {
			t.Fatalf("%s %s: %v %v", q.name, dns.TypeToString[q.qtype], r, err)
		}
		if a, ok := r.Answer[0].(*dns.A); ok && a.A.String() != ip {
			t.Errorf("A = %s, want %s", a.A, ip)
		}
	}

	// The host is reachable at ip:25 through the dialer, with STARTTLS.
	conn, err := w.Dialer.DialContext(context.Background(), "tcp", ip+":25")
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClientStartTLS(conn, &tls.Config{ServerName: "mx.example.com", RootCAs: w.CA.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("a@example.org", []string{"b@example.com"}, strings.NewReader("Subject: x\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if n := len(sink.Messages()); n != 1 {
		t.Errorf("sink got %d messages", n)
	}

	// The policy is served at mta-sts.example.com, whose address is in
	// the DNS and routed; the Dialer reaches it by that address (a name
	// route is added here only for this test's HTTP client).
	policyIP := w.PolicyAddr("example.com")
	if policyIP == "" {
		t.Fatal("no address for the policy host")
	}
	if conn, err := w.Dialer.DialContext(t.Context(), "tcp", policyIP+":443"); err != nil {
		t.Fatalf("policy host address not routed: %v", err)
	} else {
		conn.Close()
	}
	w.Dialer.Route("mta-sts.example.com:443", w.Policies.Addr())
	resp, err := w.Dialer.HTTPClient(w.CA.Pool()).Get("https://mta-sts.example.com" + PolicyPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "mode: enforce") {
		t.Errorf("policy: %d %q", resp.StatusCode, body)
	}

	// An attacker in front of the host strips STARTTLS.
	if _, err := w.Attack(ip, AttackerOptions{Mode: StripSTARTTLS}); err != nil {
		t.Fatal(err)
	}
	conn, err = w.Dialer.DialContext(context.Background(), "tcp", ip+":25")
	if err != nil {
		t.Fatal(err)
	}
	c = smtp.NewClient(conn)
	if err := c.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS still offered behind the attacker")
	}
	c.Close()
	if _, err := w.Attack("127.9.9.9", AttackerOptions{}); err == nil {
		t.Error("attacking a host that does not exist succeeded")
	}
}
