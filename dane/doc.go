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
// errors, SERVFAIL and REFUSED (among the trusted ones only; see below). It does not validate signatures itself: it
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
// An answer from a resolver that is not trusted can never prove a name
// unsigned while a trusted one is configured. So when the list mixes them
// (the everyday resolv.conf: a validating resolver on 127.0.0.53, then the
// router), only the trusted ones are asked, for every question: a timeout,
// SERVFAIL or REFUSED from the validating resolver fails over to the next
// trusted one and, when there is none, is a temporary failure, so the host
// is not used now. Failing over to the router would let an attacker who
// makes the validating resolver fail, and answers the router's question,
// turn DANE off and strip STARTTLS. IgnoredServers and CheckHealth name the
// resolvers that are never asked, so that an operator who meant them as a
// fallback learns they are not one. With no trusted resolver configured all
// answers are insecure anyway and the resolvers fail over among themselves.
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
//
// # DANE for SMTP
//
// Discovery.Lookup decides, for one MX host, which TLSA records apply
// (RFC 7672 §2.2). TLSA records are asked for only when the host's address
// records are secure, so that name servers which answer TLSA questions for
// unsigned zones with SERVFAIL or NOTIMP never stall mail to unsigned
// domains. When the host is a CNAME whose chain is secure,
// _25._tcp.<expanded name> is tried first and _25._tcp.<host> second; when
// only the chain's first link is secure, only the host name is tried
// (RFC 7672 §2.2.3, RFC 7671 §7). The outcome is AuthenticationRequired
// (secure records, at least one usable: DANE-TA(2) or DANE-EE(3), selector
// 0 or 1, matching type 0, 1 or 2 with a digest of the right length),
// TLSRequired (secure records, none usable), NotApplicable (secure denial,
// or nothing secure), or a temporary *RequirementError (a look-up failed or
// was bogus: the host is not used now, and security is never relaxed).
//
// Requirement.TLSConfig sends the TLSA base domain as SNI (§8.1) and
// authenticates the server with Requirement.Verify instead of the WebPKI.
// DANE-EE matches the leaf certificate or key without checking names or
// dates (§3.1.1). DANE-TA requires a matching certificate in the chain
// (or, for "2 1 0", a certificate signed by the given key), a chain valid
// at the injected time, and a leaf naming the base domain or the MX host
// (§3.2). Within one usage and selector, SHA2-512 records set SHA2-256 ones
// aside (digest algorithm agility, RFC 7671 §9). Failures carry RFC 8460
// result types.
//
// Insecure MX RRsets: by default (InsecureMXDANE) the secure TLSA records
// of a host named by an MX RRset that is not DNSSEC-signed are looked up
// and enforced. RFC 7672 §2.2.1 allows it — the client may proceed to use
// DANE TLS even with MX hosts obtained through an insecure MX RRset — and it
// is the stronger choice: an unsigned domain hosted by a provider with a
// signed zone gets the provider's protection. It is Postfix's choice
// (smtp_tls_dane_insecure_mx_policy=dane). The cost is that a provider's
// broken TLSA records also defer mail for its unsigned customers.
// InsecureMXIgnore (mox's behaviour) turns it off and asks no TLSA question
// for such hosts.
//
// Discovery.LookupPort does the same for a server on another port (a smart
// host on 587): the owner names carry the port, _<port>._tcp.<base domain>
// (RFC 6698 §3).
//
// Not done: PKIX-TA and PKIX-EE records (unusable for SMTP, RFC 7672
// §3.1.3), DNSSEC validation in-process (the resolver's AD bit is trusted),
// and the TLS DNSSEC chain extension (RFC 9102).
package dane
