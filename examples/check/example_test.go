package main

import (
	"context"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/testenv"
)

// Check a domain that publishes a null MX, in a loopback world: there is
// no inbound mail to secure, so the check says so and stops.
func ExampleCheck() {
	w, err := testenv.NewWorld()
	if err != nil {
		panic(err)
	}
	defer w.Close()
	_ = w.DNS.Zone(".", testenv.Secure)
	_ = w.DNS.Zone("nomail.example", testenv.Secure, "@ 300 IN MX 0 .")

	env := &Env{
		Resolver: &dane.Resolver{Servers: []dane.Server{{Addr: w.DNS.Addr}}},
		Dial:     w.Dialer.DialContext,
		RootCAs:  w.CA.Pool(),
		Timeout:  2 * time.Second,
	}
	rep := Check(context.Background(), env, "nomail.example")
	for _, f := range rep.Findings {
		fmt.Printf("%-7s %-8s %s\n", f.Severity, f.Area, f.Message)
	}
	fmt.Println("worst:", rep.Worst())
	// Output:
	// ok      resolver validates DNSSEC
	// ok      mx       null MX (RFC 7505): the domain accepts no mail, so there is no inbound TLS to secure
	// worst: ok
}
