// Package dane answers, for one MX host, whether DNSSEC-secure TLSA records
// bind its TLS keys, and whether a TLS connection satisfies them (DANE for
// SMTP, RFC 7672, with RFC 7671 and RFC 6698). It also holds the
// DNSSEC-aware DNS layer the rest of sealpost looks names up through.
//
// # DNS layer
//
// A Resolver asks recursive resolvers (by default those of
// /etc/resolv.conf) with EDNS0, the DO bit and the AD bit set (RFC 3225,
// RFC 6840 §5.7), a 1232-byte UDP buffer and a retry over TCP when an
// answer is truncated, failing over across resolvers on timeouts, network
// errors, SERVFAIL and REFUSED. It does not validate signatures itself: it
// believes the AD bit of a resolver the configuration trusts (a loopback
// resolver, or one marked TrustAlways — glibc's "options trust-ad" —
// because the path to it is protected) and of no other. Every Answer says
// whether it is Secure; every failure is a *DNSError of one of four kinds:
// ErrNXDomain, ErrNoData (both with a Secure flag for validated denial of
// existence), ErrTemporary (SERVFAIL, timeout, REFUSED, network) and
// ErrBogus (SERVFAIL carrying an RFC 8914 extended DNSSEC error code). A
// bogus verdict from a trusted resolver is final: the Resolver does not go
// on asking other resolvers until one answers without validating.
//
// CNAME chains are followed to a bound (RFC 6604 §3: the rcode speaks of the
// chain's last name); an Answer keeps the name asked, the chain and the
// canonical name, and is Secure only when every link was. Answers are
// cached for their TTL (negative ones for the SOA minimum, RFC 2308 §5;
// failures for a few seconds, RFC 2308 §7), and identical look-ups in
// flight share one query.
//
// CheckHealth tells an operator whether the configured resolvers answer,
// validate, pass RRSIGs through and work over TCP: a resolver that does not
// validate silently disables DANE, and one that cannot answer stalls mail to
// every domain, so both deserve a plain message at start-up.
package dane
