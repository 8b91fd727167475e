package sts

import (
	"crypto/x509"
	"time"
)

// Client answers the question the delivery engine asks for every recipient
// domain: what does its MTA-STS policy demand right now? It discovers,
// fetches, caches and refreshes policies, and checks MX certificates.
//
// The zero value is ready to use. A Client is safe for concurrent use and
// meant to be shared; it must not be copied after first use, and its fields
// must not change once it is in use.
type Client struct {
	// RootCAs are the roots the certificates of MX hosts (and of policy
	// hosts, when HTTPClient is nil) must chain to. Nil means the system's
	// roots.
	RootCAs *x509.CertPool

	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}
