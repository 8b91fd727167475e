package policyfile_test

import (
	"fmt"

	"github.com/sealpost/sealpost/internal/policyfile"
)

// Parse a policy file and use its rules; a mistake is reported with its
// line, column and setting.
func ExampleParse() {
	lp, err := policyfile.Parse([]byte(`{
  "domains": {
    "example.com": {"require_authenticated": true},
    ".example.net": {"dane_only": true}
  }
}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(lp.Domains["example.com"].RequireAuthenticated, lp.Domains[".example.net"].DANEOnly)

	_, err = policyfile.Parse([]byte(`{
  "domains": {
    "example.com": {"requre_tls": true}
  }
}`))
	fmt.Println(err)
	// Output:
	// true true
	// policy file:3:21: domains["example.com"]: unknown field "requre_tls" (want one of dane_only, mta_sts, next_hop, override, require_authenticated, require_tls, source_ipv4, source_ipv6)
}
