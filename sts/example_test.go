package sts_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/sealpost/sealpost/sts"
)

// staticTXT answers TXT look-ups from a map, standing in for the DNS.
type staticTXT map[string][]string

func (m staticTXT) LookupTXT(_ context.Context, name string) ([]string, error) {
	if txt, ok := m[name]; ok {
		return txt, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// policyHost answers every policy fetch with the same policy, standing in
// for the HTTPS server of mta-sts.example.com.
type policyHost string

func (p policyHost) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"text/plain"}},
		Body:       io.NopCloser(strings.NewReader(string(p))),
		Request:    r,
	}, nil
}

func ExampleClient_Lookup() {
	// In production: Resolver is sealpost's *dane.Resolver, HTTPClient is
	// left nil (WebPKI-verified fetches), Store is persistent, and Run
	// renews policies in the background.
	c := &sts.Client{
		Resolver: staticTXT{"_mta-sts.example.com.": {"v=STSv1; id=20240101"}},
		HTTPClient: &http.Client{Transport: policyHost(
			"version: STSv1\nmode: enforce\nmx: *.mail.example.com\nmax_age: 604800\n")},
	}
	ctx := context.Background()

	r, err := c.Lookup(ctx, "example.com")
	if err != nil {
		// No policy applies: deliver without MTA-STS, and report
		// err's ResultType when there is one.
		fmt.Println("no policy:", err)
		return
	}
	fmt.Println("mode:", r.Policy.Mode, "from", r.Source, "id", r.ID)
	for _, mx := range []string{"mx1.mail.example.com.", "mail.example.com", "mx.attacker.example"} {
		fmt.Printf("%s allowed: %v\n", mx, r.Policy.Match(mx))
	}

	r, _ = c.Lookup(ctx, "example.com")
	fmt.Println("again from", r.Source)

	_, err = c.Lookup(ctx, "example.org")
	fmt.Println("example.org has no record:", errors.Is(err, sts.ErrNoRecord))
	// Output:
	// mode: enforce from fetch id 20240101
	// mx1.mail.example.com. allowed: true
	// mail.example.com allowed: false
	// mx.attacker.example allowed: false
	// again from cache
	// example.org has no record: true
}
