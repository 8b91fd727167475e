package delivery_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/internal/testenv"
)

// exampleWorld builds a loopback internet for the examples: example.com
// is DNSSEC-signed, and its MX host pins its key with a TLSA record.
func exampleWorld() (*testenv.World, delivery.Config) {
	w, err := testenv.NewWorld()
	if err != nil {
		log.Fatal(err)
	}
	if err := w.DNS.Zone("example.com.", testenv.Secure, "example.com. 300 IN MX 10 mx.example.com."); err != nil {
		log.Fatal(err)
	}
	cert := w.CA.MustLeaf(testenv.LeafOptions{}, "mx.example.com")
	if _, _, err := w.MX("mx.example.com", testenv.SMTPOptions{Certificate: &cert, REQUIRETLS: true}); err != nil {
		log.Fatal(err)
	}
	if err := w.PublishTLSA("mx.example.com", cert); err != nil {
		log.Fatal(err)
	}
	// In production the zero values do: the system's resolver and roots,
	// net.Dialer. Here everything points at the loopback world.
	cfg := delivery.Config{
		Hostname: "mail.sender.example",
		Resolver: &dane.Resolver{Servers: []dane.Server{{Addr: w.DNS.Addr}}},
		Dial:     w.Dialer.DialContext,
		RootCAs:  w.CA.Pool(),
	}
	return w, cfg
}

func ExampleClient_Deliver() {
	w, cfg := exampleWorld()
	defer w.Close()
	c, err := delivery.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	body := "From: alice@sender.example\r\nTo: bob@example.com\r\nSubject: hello\r\n\r\nHi Bob.\r\n"
	msg := &delivery.Message{
		From:       "alice@sender.example",
		Recipients: []delivery.Recipient{{Address: "bob@example.com"}},
		Body:       strings.NewReader(body),
		Size:       int64(len(body)),
		RequireTLS: true, // RFC 8689: only over authenticated TLS, all the way
	}
	results, err := c.Deliver(context.Background(), msg)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range results {
		fmt.Printf("%s: %s via %s, %s, peer authenticated by %s (%s)\n",
			r.Recipient, r.Status, r.Session.MXHost, r.Session.TLSVersionName(), r.Session.Auth, r.Session.Requirement.Basis)
	}
	// Output:
	// bob@example.com: delivered via mx.example.com, TLS 1.3, peer authenticated by DANE-EE (DANE)
}

func ExampleClient_Explain() {
	w, cfg := exampleWorld()
	defer w.Close()
	c, err := delivery.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ex, err := c.Explain(context.Background(), "example.com")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("MX answer DNSSEC-secure:", ex.Route.Secure)
	for _, h := range ex.Hosts {
		r := h.Requirement
		fmt.Printf("%s: %s, checked by %s, because of %s\n", h.Host.Name, r.Level, r.Check, r.Basis)
	}
	// Output:
	// MX answer DNSSEC-secure: true
	// mx.example.com: authenticated TLS required, checked by DANE, because of DANE
}

func ExampleClient_ExplainMessage() {
	w, cfg := exampleWorld()
	defer w.Close()
	c, err := delivery.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// What a message carrying "TLS-Required: No" would be held to.
	ex, err := c.ExplainMessage(context.Background(), "example.com", &delivery.Message{TLSOptional: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, h := range ex.Hosts {
		r := h.Requirement
		fmt.Printf("%s: %s, checked by %s (%s)\n", h.Host.Name, r.Level, r.Check, r.Basis)
	}
	// Output:
	// mx.example.com: opportunistic, checked by DANE (DANE)
}

func ExampleMessage_Inspect() {
	content := "Subject: report\r\nTLS-Required: No\r\n\r\nCaf\xc3\xa9\r\n"
	m := &delivery.Message{Body: strings.NewReader(content), Size: int64(len(content))}
	if err := m.Inspect(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("8BITMIME:", m.EightBit, "SMTPUTF8:", m.SMTPUTF8, "TLS-Required: No:", m.TLSOptional)
	// Output:
	// 8BITMIME: true SMTPUTF8: false TLS-Required: No: true
}
