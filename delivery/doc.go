// Package delivery makes one delivery attempt of a message to the MX hosts
// of its recipients' domains: it resolves the route (RFC 5321 §5.1, null MX
// of RFC 7505), decides each host's security requirement (DANE, MTA-STS,
// local policy, REQUIRETLS), connects, negotiates STARTTLS, verifies the
// peer, transfers the message and records every TLS session for TLS-RPT.
//
// It answers the question a queue asks for every message: what happened to
// each recipient just now — delivered, or a temporary or permanent failure
// with the reply code, the enhanced status code and the text to put in a
// bounce — and over which session (MX host, IP, TLS version and cipher,
// and how the server was authenticated). Client.Explain answers, without
// sending, where a domain's mail would go and what each host would be held
// to; Client.ExplainMessage answers it for one message (REQUIRETLS,
// "TLS-Required: No", its next hop) with the same decision code as Deliver.
//
// # One attempt
//
// Recipients are grouped by domain and the domains delivered concurrently.
// For one domain:
//
//  1. The route: the domain's MX hosts by preference, equal preferences
//     shuffled (RFC 5321 §5.1); no MX but an address is an implicit MX; a
//     null MX (RFC 7505 §3) or NXDOMAIN fails permanently; any other DNS
//     failure, a bogus answer included, is temporary. A next hop (per
//     message or per domain) replaces the domain's MX hosts: "relay.example"
//     by its MX records, "[host]" directly; its own domain's policies then
//     apply.
//  2. The MTA-STS policy of the policy domain (RFC 8461 §5.1, through the
//     sts package's cache), or, when the domain publishes none or its
//     policy cannot be had, the operator's preloaded one.
//  3. For each host in order, its requirement, in this order of precedence
//     and never relaxed to make a delivery succeed:
//     - DNSSEC-secure usable TLSA records: TLS, authenticated by them
//     (RFC 7672 §2.2, §3), SNI set to the TLSA base domain (§8.1); they
//     are those of the port connected to, _25._tcp for MX hosts and
//     _<port>._tcp for a next hop on another port (RFC 6698 §3);
//     MTA-STS is not applied to such a host (RFC 8461 §2), except that
//     a host named by an insecure MX answer must still match an enforced
//     policy's mx patterns: TLSA records authenticate the server, not the
//     forgeable MX answer that chose it;
//     - secure TLSA records none of which is usable: TLS, unauthenticated;
//     - a TLSA look-up that failed or was bogus: the host is not used now;
//     - an MTA-STS policy in enforce mode: the host must match its mx
//     patterns (RFC 8461 §4.1), TLS 1.2 or newer with a WebPKI certificate
//     for the host (§4.2); in testing mode the same is checked and
//     reported, not enforced;
//     - the operator's LocalPolicy (require TLS, require an authenticated
//     server, DANE only, a preloaded policy), which only tightens;
//     - REQUIRETLS on the message (RFC 8689 §4.2.1): a host from a
//     DNSSEC-secure MX answer or matching the domain's MTA-STS policy,
//     TLS authenticated by DANE or the WebPKI, and a server advertising
//     REQUIRETLS; otherwise 5.7.30;
//     - otherwise opportunistic STARTTLS.
//     The decision is one function of the facts looked up (decideHost in
//     decide.go): the attempt looks them up, then logs the overrides the
//     decision used and records for TLS-RPT the refusals it made; Explain
//     calls the same function and does neither. Its matrix is tested row
//     by row in decide_test.go.
//  4. Every address of a host (IPv6 and IPv4 interleaved, IPv6 first) is
//     tried before the next host. A refused or dropped connection, a 421,
//     a greeting refused, a session that fails its requirement move on to
//     the next address. When no host is left the recipients get a temporary
//     failure naming the most telling reason — and, under an enforced
//     MTA-STS policy, the policy is fetched again (rate-limited by the sts
//     client) and, if it changed, the hosts are walked once more (RFC 8461
//     §5).
//  5. The transaction (internal/smtpclient): MAIL with SIZE, BODY=8BITMIME,
//     SMTPUTF8, REQUIRETLS and, when the server offers DSN, RET and ENVID;
//     RCPT with NOTIFY and ORCPT; DATA; pipelined (RFC 2920) when offered.
//     Each recipient gets its own RCPT reply, or the final reply to the
//     message: a DATA failure applies to every accepted recipient. A
//     reply its command does not allow (RFC 5321 §4.3.2: a 250 to DATA, a
//     252 to RCPT, a 221 to the end of data) or one that arrives out of
//     turn (a duplicated reply, one before its command) is a protocol
//     error, never a success: the session is dropped, not reused, and the
//     recipients are a temporary failure, 451 4.4.2, like a lost
//     connection. Message content goes with every bare CR and LF made
//     CRLF, so that no content can end it early at a receiver (SMTP
//     smuggling); a Body that ends before Size aborts the transaction.
//  6. Every TLS session, and every session that should have been one, is
//     handed to the TLS-RPT recorder with the policy that applied ("tlsa"
//     with its records, "sts" with its lines, "no-policy-found") and, on
//     failure, the RFC 8460 §4.3 result type, the MX host, its EHLO name,
//     its IP and ours. Sessions of TLS-RPT report mail are not recorded.
//
// Sessions are reused: a pool keeps idle sessions per host and requirement
// (the very policy they were verified against), bounds the sessions open
// to a host, and closes idle ones after a timeout, so a burst of mail to
// one domain costs one TLS handshake.
//
// # The SMTP client
//
// The dialogue is internal/smtpclient, written for this package on bufio:
// go-smtp's client (v0.25) says "EHLO localhost" before STARTTLS, does not
// export STARTTLS on an established session, hides the server's greeting
// and EHLO name (TLS-RPT's receiving-mx-helo), and does not pipeline. A
// sending MTA needs all of these; the server side of the tests is go-smtp.
//
// # Readings
//
// Where the RFCs leave a choice, this package chose:
//   - Opportunistic means opportunistic (RFC 7435): when nothing is
//     enforced and the TLS handshake itself fails, the host is tried again
//     in plaintext and the failure recorded; never when a policy, a local
//     rule or REQUIRETLS demands TLS. An MTA-STS policy in testing mode is
//     not enforced (RFC 8461 §5), so it allows the retry. Opportunistic TLS
//     accepts TLS 1.0 and 1.1, which beat plaintext (RFC 7525 §5.2);
//     authenticated TLS wants 1.2 or newer.
//   - "TLS-Required: No" (RFC 8689 §3, §4.2.2) and TLS-RPT report mail (RFC 8460
//     §3) relax the recipient domain's DANE, MTA-STS and preloaded
//     policies to checked-and-reported; the operator's own rules still
//     apply. REQUIRETLS makes the header ignored (RFC 8689 §3).
//   - REQUIRETLS accepts a host validated by an MTA-STS policy in enforce or
//     testing mode (the certificate is then checked anyway), not by a
//     preloaded policy, which is the operator's, not the domain's.
//   - A server lacking an extension the message needs (SIZE, 8BITMIME,
//     SMTPUTF8, REQUIRETLS) fails the host permanently and the next host is
//     tried; the recipients fail permanently only when every host did
//     (5.3.4, 5.6.3, 5.6.7, 5.7.30). Content is never converted to 7 bits.
//   - A connection lost after the message content was sent fails the
//     accepted recipients temporarily without trying another host: the
//     server may have the message (RFC 5321 §6.1 prefers a duplicate to a
//     loss, but not two at once).
//   - Our own refusals use the codes large providers use: 4.4.8 for a host
//     outside the MTA-STS policy, 4.7.5 for certificate and TLS failures,
//     4.7.10 for a server without STARTTLS where TLS is mandatory, 4.4.3 for
//     DNS (and TLSA) failures, 5.7.30 for REQUIRETLS.
//   - TLS-RPT: a host outside the mx patterns is "validation-failure" with
//     failure-reason-code "mx-not-in-policy" (RFC 8460 has no type of its
//     own for it); a failed handshake is "validation-failure" with the TLS
//     alert as code; a failed MTA-STS look-up is reported with the
//     sessions that went ahead without the policy; sessions under a
//     preloaded policy count as "no-policy-found", since the domain
//     published nothing; a TLS session to a host whose secure TLSA
//     records are all unusable is "tlsa-invalid" (RFC 8460 §4.3.3: none
//     of the records was valid) with code "no-usable-tlsa-record", though
//     the message went over the TLS those records require; a reply to
//     STARTTLS that breaks the protocol (octets injected after the 220)
//     is "validation-failure" with code "starttls-protocol-error".
//   - A policy the domain publishes takes precedence over the operator's
//     preloaded one in every mode: enforce, testing, and none, which is the
//     domain saying it has no active policy (RFC 8461 §5). The preloaded
//     policy protects the first contact and covers a domain that publishes
//     nothing, or whose policy cannot be fetched and is not cached.
//   - An Override that ignores a domain's TLSA records drops DANE only: the
//     hosts are then held to the domain's MTA-STS policy (or the preloaded
//     one) as hosts without TLSA records are, since RFC 8461 §2 sets
//     MTA-STS aside for DANE hosts only because DANE is stronger; with no
//     such policy the records are checked and reported, not enforced.
//   - LocalPolicy.DANEOnly demands DANE of the domain, not of a host: a host
//     with usable TLSA records named by an MX answer that is not
//     DNSSEC-secure is refused too (RFC 7672 §2.2.1, §6: a forged MX answer
//     can name an attacker's own DANE host), with 4.7.5, and recorded as
//     "dane-required" (RFC 8460 §4.3.2.1: the sender requires DANE and no
//     DANE-validated host was found), failure-reason-code
//     "mx-rrset-insecure".
//   - Between messages on a reused session no RSET is sent when the last
//     transaction ended cleanly (RFC 5321 §4.1.1.4 leaves the session
//     ready); the SMTP client sends RSET before a transaction when the
//     previous one was left open. A pooled session found dead before the
//     server saw anything is replaced without counting as a failure.
//
// It does not: convert 8-bit content, authenticate to a smart host (AUTH),
// use implicit TLS (port 465), issue "relayed" DSNs for servers without DSN
// (Session.DSN tells the caller when RFC 3461 §5.2.2 asks for one).
//
// Example:
//
//	c, err := delivery.NewClient(delivery.Config{Hostname: "mail.example.org"})
//	if err != nil {
//		log.Fatal(err) // a *ConfigError per field that cannot work as written
//	}
//	defer c.Close()
//	results, err := c.Deliver(ctx, &delivery.Message{
//		From:       "alice@example.org",
//		Recipients: []delivery.Recipient{{Address: "bob@example.com"}},
//		Body:       file, // an io.ReaderAt: *os.File, *bytes.Reader ...
//		Size:       size,
//	})
package delivery
