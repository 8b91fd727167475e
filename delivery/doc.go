// Package delivery makes one delivery attempt of a message to the MX hosts
// of its recipients' domains: it resolves the route (RFC 5321 §5.1, null MX
// of RFC 7505), decides each host's security requirement (DANE, MTA-STS,
// local policy, REQUIRETLS), connects, negotiates STARTTLS, verifies the
// peer, transfers the message and records every TLS session for TLS-RPT.
package delivery
