package interop

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/delivery"
)

// postfix returns the receiving Postfix's address and the "3 1 1" TLSA
// data of its key, or skips (fails under CI) without it.
func postfix(t *testing.T) (addr, tlsa, dir string) {
	t.Helper()
	servers(t)
	addr, dir = os.Getenv("SEALPOST_INTEROP_POSTFIX"), os.Getenv("SEALPOST_INTEROP_DIR")
	if addr == "" || dir == "" {
		t.Fatal("interop: SEALPOST_INTEROP_POSTFIX or SEALPOST_INTEROP_DIR is not set: .ci/interop-up is older than the tests")
	}
	b, err := os.ReadFile(filepath.Join(dir, "postfix", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("postfix/cert.pem holds no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return addr, "3 1 1 " + hex.EncodeToString(sum[:]), filepath.Join(dir, "postfix", "mail")
}

// maildir returns the messages Postfix delivered to rcpt: its one
// Maildir holds every test's mail, told apart by the To field.
func maildir(base, rcpt string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(base, "all", "new", "*"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if strings.Contains(string(b), "\nTo: "+rcpt+"\r\n") || strings.Contains(string(b), "\nTo: "+rcpt+"\n") {
			out = append(out, string(b))
		}
	}
	return out, nil
}

// TestPostfixUnderDANE: the library delivers to a real Postfix whose key
// a DNSSEC-signed TLSA 3 1 1 record pins; the message lands in its
// Maildir, and Postfix's Received field says the session was TLS.
func TestPostfixUnderDANE(t *testing.T) {
	addr, tlsa, mail := postfix(t)
	w := newWorld(t)
	domain, host := w.name("", "secure.test")[1:], w.name("mx", "secure.test")
	w.dialer.Route("127.0.3.1:25", addr)
	w.update("secure.test", domain+". 2 IN MX 10 "+host+".", host+". 2 IN A 127.0.3.1", "_25._tcp."+host+". 2 IN TLSA "+tlsa)
	res := w.send(w.client(), "bob@"+domain)
	if res.Status != delivery.Delivered || res.Session.Auth != delivery.DANEEE {
		t.Fatalf("result %+v (auth %v), want delivered to Postfix under DANE-EE", res, res.Session.Auth)
	}
	eventually(t, "the message is in Postfix's Maildir", func() error {
		msgs, err := maildir(mail, "bob@"+domain)
		switch {
		case err != nil:
			return err
		case len(msgs) != 1:
			return fmt.Errorf("%d messages in the Maildir", len(msgs))
		case !strings.Contains(msgs[0], "(using TLSv1.") || !strings.Contains(msgs[0], "Subject: interop"):
			return fmt.Errorf("the message does not show a TLS session:\n%s", msgs[0])
		}
		return nil
	})
}

// TestPostfixPinnedWrongly: Postfix answers, offers STARTTLS and would
// take the message, but the TLSA record pins another key: nothing is
// sent, the recipient is deferred.
func TestPostfixPinnedWrongly(t *testing.T) {
	addr, _, mail := postfix(t)
	w := newWorld(t)
	domain, host := w.name("", "secure.test")[1:], w.name("mx", "secure.test")
	w.dialer.Route("127.0.3.2:25", addr)
	w.update("secure.test", domain+". 2 IN MX 10 "+host+".", host+". 2 IN A 127.0.3.2", "_25._tcp."+host+". 2 IN TLSA 3 1 1 "+strings.Repeat("ab", 32))
	res := w.send(w.client(), "bob@"+domain)
	if res.Status != delivery.TemporaryFailure {
		t.Fatalf("result %+v, want a temporary failure", res)
	}
	if msgs, err := maildir(mail, "bob@"+domain); err != nil || len(msgs) != 0 {
		t.Errorf("%d messages reached Postfix despite the failed DANE check (%v)", len(msgs), err)
	}
}
