// Package interop tests sealpost against real servers instead of the
// in-process world the project wrote itself, so that the tests do not
// merely agree with the code's own reading of the standards.
//
// The servers run on loopback and are started by .ci/interop-up, which
// .ci/run calls before the tests: Knot DNS serves secure.test (signed with
// ECDSA P-256 and re-signed as tests change it by RFC 2136 updates),
// insecure.test (unsigned) and bogus.test (signed, but anchored in Unbound
// on a key that does not sign it), Unbound validates, with Knot as its
// only upstream, and nginx serves the MTA-STS policies over HTTPS, with a
// certificate per host name and hosts that redirect or serve the wrong
// media type. The MX hosts are the in-process SMTP sinks of
// internal/testenv, and a real Postfix with STARTTLS and a Maildir, each
// reached by address through testenv's dialer.
//
// Without the servers the tests skip, saying how to start them; under CI
// (CI=true) a skip is a failure.
package interop
