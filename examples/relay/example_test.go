package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/testenv"
)

// Run a relay in a loopback world, submit one message with go-smtp's
// client, and see it arrive at the recipient's MX host; then stop the
// relay as SIGTERM would.
func Example() {
	w, err := testenv.NewWorld()
	if err != nil {
		panic(err)
	}
	defer w.Close()
	_ = w.DNS.Zone(".", testenv.Secure)
	_ = w.DNS.Zone("example.com", testenv.Secure, "@ 300 IN MX 10 mx.example.com.")
	cert := w.CA.MustLeaf(testenv.LeafOptions{}, "mx.example.com")
	mx, _, _ := w.MX("mx.example.com", testenv.SMTPOptions{Certificate: &cert})
	_ = w.PublishTLSA("mx.example.com", cert)

	dir, _ := os.MkdirTemp("", "relay-example")
	defer os.RemoveAll(dir)
	cfg := Config{
		Listen:   "127.0.0.1:0",
		Hostname: "relay.example.org",
		Store:    filepath.Join(dir, "relay.db"),
		TLSRPT:   TLSRPTConfig{Disabled: true},
	}
	env := &Env{
		Resolver: &dane.Resolver{Servers: []dane.Server{{Addr: w.DNS.Addr}}},
		Dial:     w.Dialer.DialContext,
		RootCAs:  w.CA.Pool(),
	}
	ctx, stop := context.WithCancel(context.Background())
	relay, err := New(ctx, cfg, env)
	if err != nil {
		panic(err)
	}
	done := make(chan error)
	go func() { done <- relay.Run(ctx) }()

	msg := "From: alice@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"
	c, err := smtp.Dial(relay.Addr().String())
	if err != nil {
		panic(err)
	}
	err = c.SendMail("alice@example.org", []string{"bob@example.com"}, strings.NewReader(msg))
	fmt.Println("submitted:", err == nil)
	c.Quit()

	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, _ := mx.WaitMessages(wctx, 1)
	fmt.Println("arrived from:", got[0].From, "over", tls.VersionName(got[0].TLS.Version))

	stop()
	fmt.Println("stopped:", <-done)
	// Output:
	// submitted: true
	// arrived from: alice@example.org over TLS 1.3
	// stopped: <nil>
}
