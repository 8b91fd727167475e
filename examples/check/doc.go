// Command check is for domain owners: it looks at a domain's inbound mail
// security set-up the way sending MTAs see it, and prints what it found,
// each finding with a severity (ok, warning, error) and a fix.
//
// Usage:
//
//	go run ./examples/check [-resolver ip[:port]] [-timeout 10s] [-json] example.com
//
// It checks, using the sealpost packages for every rule:
//
//   - the resolver: does it answer, and does it validate DNSSEC (without
//     that, DANE cannot be judged);
//   - MX records (RFC 5321 §5.1, RFC 7505): null MX, null MX beside other
//     records, implicit MX, targets that are addresses or CNAMEs, hosts
//     without addresses;
//   - MTA-STS (RFC 8461): exactly one valid _mta-sts TXT record (§3.1); the
//     policy fetched over HTTPS with a WebPKI-valid certificate for
//     mta-sts.<domain> (§3.2, §3.3); mode (testing and none are warnings);
//     max_age (under a day is a warning, over 31557600 seconds makes the
//     policy invalid); mx values that are ignored; every MX host covered by
//     an mx pattern (§4.1);
//   - each MX host, at each of its addresses: STARTTLS offered, the TLS
//     version, the certificate under RFC 8461 §4.2 (chain, name, dates),
//     and its expiry;
//   - DANE (RFC 7672): which TLSA records apply (§2.2), records that are
//     unusable for SMTP (usages 0 and 1, §3.1.3), records in a zone that is
//     not DNSSEC-signed (senders ignore them), failing TLSA look-ups, and the
//     certificate each host presents after STARTTLS verified against the
//     records (§3); a fix names the "3 1 1" record for the key presented;
//   - TLS-RPT (RFC 8460 §3): one valid _smtp._tls record, and mailto:
//     destinations whose domain can receive the reports;
//   - SPF on mta-sts.<domain>.
//
// # Readings
//
// SPF on the policy host: RFC 8461 does not mention SPF. The policy host
// has an address but sends no mail, and a name with an address can be
// forged in MAIL FROM and HELO, which receivers check with SPF (RFC 7208
// §2.3, §2.4); "v=spf1 -all" (RFC 7208 §5.1) tells them the name sends
// nothing. That is the usual advice for every such name, so its absence is
// a warning — not an error, because delivery to the domain does not depend
// on it and DMARC on the parent domain already covers forged From headers.
// A policy host that is a CNAME cannot carry its own record (RFC 1034
// §3.6.2); the target's applies, and the check only says so.
//
// DANE through an unsigned MX RRset: the check looks TLSA records up as the
// library does by default (dane.InsecureMXDANE, RFC 7672 §2.2.1 allows it)
// and warns that many senders ignore them in that case.
//
// A certificate that is not WebPKI-valid is an error only when an enforced
// MTA-STS policy covers the host; in testing mode, or without MTA-STS, it
// is a warning; for a host DANE authenticates and no policy covers, it is
// fine.
//
// -resolver names one resolver whose DNSSEC validation (AD bit) is
// believed even when it is not on loopback: the check only reports, so a
// lie on the path to it changes what is shown, never what is sent. Without
// it, /etc/resolv.conf is read and, as in the library, only loopback
// resolvers (or "options trust-ad") are believed.
//
// # Exit status
//
// 0 when every finding is ok, 1 when the worst is a warning, 2 when there
// is an error, 3 when the check did not run (bad flags or domain).
//
// # What it does not do
//
// It does not send mail, so it cannot see REQUIRETLS or a full delivery;
// it cannot tell how long a policy has been in testing mode; it does not
// POST test reports to https: destinations. It judges from where it runs:
// port 25 is blocked on many home and cloud networks, so when no MX host
// can be reached one warning says so; an IPv6 address this machine has no
// route to is a warning, not an error. An internationalised name may be
// given in U-labels or A-labels; it is converted by IDNA's UTS #46 lookup
// mapping (internal/dnsname), so "\u212aelvin.example" (KELVIN SIGN) is
// checked as kelvin.example, which is what a sender would look up.
//
// The checks run over an injectable Env (resolver, dialer, HTTP client,
// root CAs, clock), so that the tests run them against the loopback world
// of internal/testenv.
package main
