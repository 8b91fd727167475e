package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/testenv"
)

// Explain, in a loopback world, where mail for a domain with an MTA-STS
// policy in enforce mode would go, without sending anything: the program
// run as "send -explain example.com".
func Example_explain() {
	w, err := testenv.NewWorld()
	if err != nil {
		panic(err)
	}
	defer w.Close()
	_ = w.DNS.Zone(".", testenv.Secure) // answers the resolver health check
	_ = w.DNS.Zone("example.com", testenv.Insecure, "@ 300 IN MX 10 mx.example.com.")
	_, _, _ = w.MX("mx.example.com", testenv.SMTPOptions{})
	_ = w.PublishSTS("example.com", "1", "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n")

	var out strings.Builder
	env := &Env{
		Resolver: &dane.Resolver{Servers: []dane.Server{{Addr: w.DNS.Addr}}},
		Dial:     w.Dialer.DialContext,
		RootCAs:  w.CA.Pool(),
		Stdout:   &out,
	}
	code := run(context.Background(), []string{"-explain", "example.com"}, env)
	// The explanation has more lines (the MTA-STS policy, the host's
	// address, why); these say what matters.
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "domain ") || strings.Contains(line, ", check ") {
			fmt.Println(strings.TrimSpace(line))
		}
	}
	fmt.Println("exit", code)
	// Output:
	// domain example.com
	// authenticated TLS required, check WebPKI (MTA-STS)
	// exit 0
}
