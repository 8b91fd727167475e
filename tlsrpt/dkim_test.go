package tlsrpt

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"io"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

var (
	rsaKeyOnce sync.Once
	rsaKey     *rsa.PrivateKey
)

// testKeys returns an RSA and an Ed25519 DKIM key of sender.example and
// the TXT records publishing them, as go-msgauth looks them up.
func testKeys(t *testing.T) ([]DKIMKey, map[string][]string) {
	t.Helper()
	rsaKeyOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaPub, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keys := []DKIMKey{
		{Domain: "sender.example", Selector: "rsa2025", Signer: rsaKey},
		{Domain: "sender.example", Selector: "ed2025", Signer: edKey},
	}
	// The key records as DKIMKey's doc recommends them: without s=.
	txt := map[string][]string{
		"rsa2025._domainkey.sender.example": {"v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(rsaPub)},
		"ed2025._domainkey.sender.example":  {"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(edPub)},
	}
	return keys, txt
}

func verify(t *testing.T, msg []byte, txt map[string][]string) []*dkim.Verification {
	t.Helper()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if r, ok := txt[name]; ok {
				return r, nil
			}
			return nil, io.EOF
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestDKIMSignedReportMailVerifies(t *testing.T) {
	keys, txt := testKeys(t)
	signer, err := NewDKIMSigner(keys...)
	if err != nil {
		t.Fatal(err)
	}
	_, raw := testReportMail(t)
	signed, err := signer.Sign(raw)
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, signed)
	vs := verify(t, signed, txt)
	if len(vs) != 2 {
		t.Fatalf("%d signatures, want 2 (RSA and Ed25519)", len(vs))
	}
	for _, v := range vs {
		if v.Err != nil || v.Domain != "sender.example" {
			t.Errorf("signature of %s: %v", v.Domain, v.Err)
		}
		// RFC 8460 §5.3: the TLS-RPT header fields SHOULD be signed.
		for _, h := range []string{"From", "Subject", "TLS-Report-Domain", "TLS-Report-Submitter", "Content-Type"} {
			if !slices.ContainsFunc(v.HeaderKeys, func(k string) bool { return strings.EqualFold(k, h) }) {
				t.Errorf("%s is not signed: h=%v", h, v.HeaderKeys)
			}
		}
	}
	// RFC 8460 §3: no l= tag.
	if bytes.Contains(signed[:bytes.Index(signed, []byte("\r\n\r\n"))], []byte(" l=")) {
		t.Error("a signature limits the body length")
	}
	// The report changed in transit no longer verifies.
	tampered := bytes.Replace(signed, []byte("Successful TLS sessions: 47"), []byte("Successful TLS sessions: 48"), 1)
	for _, v := range verify(t, tampered, txt) {
		if v.Err == nil {
			t.Error("a tampered report verifies")
		}
	}
	tampered = bytes.Replace(signed, []byte("TLS-Report-Domain: example.com"), []byte("TLS-Report-Domain: example.net"), 1)
	for _, v := range verify(t, tampered, txt) {
		if v.Err == nil {
			t.Error("a report with a changed TLS-Report-Domain verifies")
		}
	}
}

func TestReporterSendsDKIMSignedMail(t *testing.T) {
	keys, txt := testKeys(t)
	signer, err := NewDKIMSigner(keys[1])
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: day0.Add(26 * time.Hour)}
	mail := &fakeMailSender{clock: clock}
	dns := &fakeTXT{answers: map[string][]string{}}
	dns.publish("example.com", "v=TLSRPTv1; rua=mailto:tlsrpt@example.com")
	r, err := NewReporter(Config{OrganizationName: "Sender", Submitter: "sender.example", Resolver: dns,
		MailSender: mail, MailSigner: signer, Now: clock.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r.Store().AddCounts(context.Background(), []Counts{{Day: DayOf(day0), Policy: stsPolicy, Successful: 3}})
	if err := r.SendDay(context.Background(), DayOf(day0)); err != nil {
		t.Fatal(err)
	}
	sent := mail.to("tlsrpt@example.com")
	if len(sent) != 1 {
		t.Fatalf("%d mails", len(sent))
	}
	vs := verify(t, sent[0].msg, txt)
	if len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("verification %+v", vs)
	}
	rep, err := ParseReportMail(bytes.NewReader(sent[0].msg))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Summary().TotalSuccessfulSessionCount != 3 {
		t.Fatalf("report in the mail: %+v", rep)
	}
}

// smallRSA is a signer with a 512-bit RSA public key.
type smallRSA struct{}

func (smallRSA) Public() crypto.PublicKey {
	return &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 511), E: 65537}
}
func (smallRSA) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return nil, nil }

func TestNewDKIMSignerChecksKeys(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	tests := map[string][]DKIMKey{
		"no key":                         nil,
		"no selector":                    {{Domain: "d.example", Signer: ed}},
		"no domain":                      {{Selector: "s", Signer: ed}},
		"RSA under 1024 bits (RFC 8301)": {{Domain: "d.example", Selector: "s", Signer: smallRSA{}}},
		"ECDSA is not a DKIM algorithm":  {{Domain: "d.example", Selector: "s", Signer: ec}},
	}
	for name, keys := range tests {
		if _, err := NewDKIMSigner(keys...); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// The recommended key record (no s=) verifies; of the spellings RFC 8460 §3
// suggests, go-msgauth refuses "s=tlsrpt" (and dkimpy 1.1.4 refuses
// "s=email:tlsrpt", see DKIMKey), which is why neither is recommended.
func TestDKIMKeyRecordServiceTypes(t *testing.T) {
	keys, txt := testKeys(t)
	signer, err := NewDKIMSigner(keys[1])
	if err != nil {
		t.Fatal(err)
	}
	_, raw := testReportMail(t)
	signed, err := signer.Sign(raw)
	if err != nil {
		t.Fatal(err)
	}
	name := "ed2025._domainkey.sender.example"
	p := txt[name][0][strings.Index(txt[name][0], "p="):]
	for _, tc := range []struct {
		record   string
		verifies bool
	}{
		{"v=DKIM1; k=ed25519; " + p, true},
		{"v=DKIM1; k=ed25519; s=*; " + p, true},
		{"v=DKIM1; k=ed25519; s=email:tlsrpt; " + p, true},
		{"v=DKIM1; k=ed25519; s=tlsrpt; " + p, false},
	} {
		vs := verify(t, signed, map[string][]string{name: {tc.record}})
		if len(vs) != 1 || (vs[0].Err == nil) != tc.verifies {
			t.Errorf("%q: %d signatures, first error %v; want verified %v", tc.record[:30], len(vs), vs[0].Err, tc.verifies)
		}
	}
}
