// Package testenv is the loopback world every sealpost test runs in: an
// authoritative DNS server that answers like a validating resolver, a test
// certificate authority, SMTP sinks standing in for MX hosts, an HTTPS server
// for MTA-STS policies, and a dialer that routes the library's connections to
// them. Nothing here reaches beyond 127.0.0.0/8 and ::1.
//
// It is internal: its API changes with the tests that use it.
package testenv
