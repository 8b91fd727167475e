package queue_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/sealpost/sealpost/queue"
)

// dkimKeys makes an RSA and an Ed25519 key for example.org and the TXT
// records that publish them.
func dkimKeys(t *testing.T) ([]queue.Signer, map[string]string) {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	txt := map[string]string{
		"rsa._domainkey.example.org": "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der),
		"ed._domainkey.example.org":  "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(edPub),
	}
	var signers []queue.Signer
	for _, k := range []struct {
		sel string
		key crypto.Signer
	}{{"rsa", rsaKey}, {"ed", edKey}} {
		s, err := queue.NewDKIMSigner(&dkim.SignOptions{Domain: "Example.ORG.", Selector: k.sel, Signer: k.key})
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, s)
	}
	return signers, txt
}

func TestDKIMSignedOnceAtEnqueue(t *testing.T) {
	signers, txt := dkimKeys(t)
	other, _ := dkimKeys(t)
	q, err := queue.New(queue.Config{Store: &queue.MemoryStore{}, DKIM: append(signers, otherDomain(t, other[1]))})
	if err != nil {
		t.Fatal(err)
	}
	lf := strings.ReplaceAll(testMessage, "\r\n", "\n") // LF line ends are signed as sent: CRLF
	id, err := q.Enqueue(context.Background(), &queue.Envelope{From: "bounces@example.org", Recipients: rcpts("bob@example.com")}, []byte(lf))
	if err != nil {
		t.Fatal(err)
	}
	content, err := q.Content(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(content, []byte("\r\nDKIM-Signature:")) + bytes.Count(content[:16], []byte("DKIM-Signature:")); n != 2 {
		t.Fatalf("%d signatures, want 2 (RSA and Ed25519 of example.org, none of other.example)", n)
	}
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(content), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if v, ok := txt[name]; ok {
				return []string{v}, nil
			}
			return nil, fmt.Errorf("no TXT for %s", name)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range verifs {
		if v.Err != nil || v.Domain != "example.org" {
			t.Errorf("signature of %s: %v", v.Domain, v.Err)
		}
	}
	if len(verifs) != 2 {
		t.Errorf("%d verified signatures, want 2", len(verifs))
	}
}

// otherDomain is a signer for another domain, which must not sign.
func otherDomain(t *testing.T, s queue.Signer) queue.Signer {
	return &renamed{s, "other.example"}
}

type renamed struct {
	queue.Signer
	domain string
}

func (r *renamed) Domain() string { return r.domain }

func TestNewDKIMSignerRefusesIncompleteOptions(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	for _, opts := range []*dkim.SignOptions{nil, {Selector: "s", Signer: key}, {Domain: "d.example", Signer: key}, {Domain: "d.example", Selector: "s"}} {
		if _, err := queue.NewDKIMSigner(opts); err == nil {
			t.Errorf("NewDKIMSigner(%+v) succeeded", opts)
		}
	}
}
