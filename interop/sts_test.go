package interop

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/internal/testenv"
	"github.com/sealpost/sealpost/sts"
)

// web returns nginx's address and the directory the interop servers
// keep their files in, or skips (fails under CI) without them.
func web(t *testing.T) (addr, dir string) {
	t.Helper()
	servers(t)
	addr, dir = os.Getenv("SEALPOST_INTEROP_WEB"), os.Getenv("SEALPOST_INTEROP_DIR")
	if addr == "" || dir == "" {
		t.Fatal("interop: SEALPOST_INTEROP_WEB or SEALPOST_INTEROP_DIR is not set: .ci/interop-up is older than the tests")
	}
	return addr, dir
}

// publishSTS makes domain (in zone) an MTA-STS domain served by nginx:
// the _mta-sts record, the policy host's address ip (routed to nginx) and
// certificate, and policy as its policy file ("" for none: a 404).
func (w *world) publishSTS(zone, domain, ip, policy string) {
	w.t.Helper()
	addr, dir := web(w.t)
	host := "mta-sts." + domain
	cert := w.ca.MustLeaf(testenv.LeafOptions{}, host)
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		w.t.Fatal(err)
	}
	certs := filepath.Join(dir, "web", "certs")
	must(w.t, os.WriteFile(filepath.Join(certs, host+".crt"), chain, 0o600))
	must(w.t, os.WriteFile(filepath.Join(certs, host+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600))
	if policy != "" {
		wk := filepath.Join(dir, "web", "www", host, ".well-known")
		must(w.t, os.MkdirAll(wk, 0o755))
		must(w.t, os.WriteFile(filepath.Join(wk, "mta-sts.txt"), []byte(policy), 0o644))
	}
	w.dialer.Route(ip+":443", addr)
	w.update(zone, `_mta-sts.`+domain+`. 2 IN TXT "v=STSv1; id=`+strings.ReplaceAll(w.label, "-", "")+`"`, host+". 2 IN A "+ip)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// stsClient returns an MTA-STS client that asks Unbound, dials through the
// world's dialer and trusts the test CA, as delivery's own does.
func (w *world) stsClient() *sts.Client {
	return &sts.Client{Resolver: &dane.Resolver{Servers: []dane.Server{{Addr: w.resolver}}, Timeout: 2 * time.Second},
		DialContext: w.dialer.DialContext, RootCAs: w.ca.Pool(), Timeout: 10 * time.Second}
}

// TestSTSEnforcedOverWebPKI: an unsigned domain with an MTA-STS policy in
// enforce mode served by nginx is delivered to over TLS verified by the
// WebPKI (RFC 8461 §4.2); the TLSA record in its unsigned zone, which
// matches nothing, is ignored.
func TestSTSEnforcedOverWebPKI(t *testing.T) {
	w := newWorld(t)
	domain, host := w.name("", "insecure.test")[1:], w.name("mx", "insecure.test")
	sink := w.mx("insecure.test", domain, host, "127.0.2.1", "3 1 1 "+strings.Repeat("ab", 32))
	w.publishSTS("insecure.test", domain, "127.0.2.2", "version: STSv1\nmode: enforce\nmx: "+host+"\nmax_age: 86400\n")
	res := w.send(w.client(), "bob@"+domain)
	if res.Status != delivery.Delivered || res.Session.Auth != delivery.WebPKI {
		t.Fatalf("result %+v (auth %v), want delivered with a WebPKI-verified certificate", res, res.Session.Auth)
	}
	if n := len(sink.Messages()); n != 1 {
		t.Errorf("the MX host received %d messages", n)
	}
}

// TestSTSHostOutsidePolicyDefers: an MX host the enforced policy's mx
// patterns do not cover is not used (RFC 8461 §4.1).
func TestSTSHostOutsidePolicyDefers(t *testing.T) {
	w := newWorld(t)
	domain, host := w.name("", "insecure.test")[1:], w.name("mx", "insecure.test")
	sink := w.mx("insecure.test", domain, host, "127.0.2.3", "")
	w.publishSTS("insecure.test", domain, "127.0.2.4", "version: STSv1\nmode: enforce\nmx: mx.elsewhere.test\nmax_age: 86400\n")
	res := w.send(w.client(), "bob@"+domain)
	if res.Status != delivery.TemporaryFailure {
		t.Fatalf("result %+v, want a temporary failure", res)
	}
	if n := len(sink.Messages()); n != 0 {
		t.Errorf("the MX host outside the policy received %d messages", n)
	}
}

// TestSTSFetchFromNginx: what nginx answers that is not a policy — a 404,
// a redirect (RFC 8461 §3.3: not followed), a media type other than
// text/plain — is a fetch failure; a policy served as text/plain is read.
func TestSTSFetchFromNginx(t *testing.T) {
	w := newWorld(t)
	policy := "version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 86400\n"
	for _, tc := range []struct {
		name, prefix, policy string
		err                  error  // nil: the policy is read
		why                  string // what the error says
	}{
		{"a policy served as text/plain", "ok-", policy, nil, ""},
		{"404", "missing-", "", sts.ErrFetch, "404"},
		{"a redirect is not followed", "redirect-", policy, sts.ErrFetch, "301"},
		{"application/octet-stream", "octet-", policy, sts.ErrFetch, "application/octet-stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			domain := tc.prefix + w.label + ".insecure.test"
			w.publishSTS("insecure.test", domain, "127.0.2.5", tc.policy)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res, err := w.stsClient().Lookup(ctx, domain)
			switch {
			case tc.err == nil && (err != nil || res.Policy == nil || res.Policy.Mode != sts.ModeEnforce):
				t.Fatalf("Lookup: %+v, %v; want the enforce policy", res, err)
			case tc.err != nil && (!errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.why)):
				t.Fatalf("Lookup: %+v, %v; want %v saying %q", res, err, tc.err, tc.why)
			}
		})
	}
}

// TestSTSNewIDRefetched: a domain that publishes a new policy with a new
// mx list and changes its TXT record's id has the new policy fetched and
// enforced (RFC 8461 §3.3, §5.1) once the old record's TTL has passed; a
// client keeps the cached one until then.
func TestSTSNewIDRefetched(t *testing.T) {
	w := newWorld(t)
	domain := w.name("", "insecure.test")[1:]
	w.publishSTS("insecure.test", domain, "127.0.2.6", "version: STSv1\nmode: enforce\nmx: mx1."+domain+"\nmax_age: 86400\n")
	c := w.stsClient()
	lookup := func() *sts.Policy {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res, err := c.Lookup(ctx, domain)
		if err != nil {
			t.Fatal(err)
		}
		return res.Policy
	}
	if p := lookup(); !p.Match("mx1."+domain) || p.Match("mx2."+domain) {
		t.Fatalf("first policy %+v", p)
	}
	_, dir := web(t)
	file := filepath.Join(dir, "web", "www", "mta-sts."+domain, ".well-known", "mta-sts.txt")
	must(t, os.WriteFile(file, []byte("version: STSv1\nmode: enforce\nmx: mx2."+domain+"\nmax_age: 86400\n"), 0o644))
	w.update("insecure.test", `_mta-sts.`+domain+`. 2 IN TXT "v=STSv1; id=2`+strings.ReplaceAll(w.label, "-", "")+`"`)
	eventually(t, "the policy of the new id is used", func() error {
		if p := lookup(); !p.Match("mx2." + domain) {
			return fmt.Errorf("policy mx %q", p.MX)
		}
		return nil
	})
	if p := lookup(); p.Match("mx1." + domain) {
		t.Errorf("the new policy still allows the old host: mx %q", p.MX)
	}
}
