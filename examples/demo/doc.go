// Command demo shows sealpost at work without touching the network: it
// builds a small internet on loopback (a DNS server with DNSSEC-signed and
// unsigned zones, an MTA-STS policy server, a CA and one SMTP server per
// recipient domain, some behind an attacker), sends a message through the
// queue — stored in a bbolt file in a temporary directory, which also keeps
// the MTA-STS policy cache (so that a restart never reopens RFC 8461
// §10.2's trust-on-first-use window) and the TLS-RPT counts — to a
// recipient at each domain, and prints what became of each recipient and
// why:
//
//   - dane.example: DNSSEC-signed, a "3 1 1" TLSA record → delivered,
//     the server authenticated by DANE-EE (RFC 7672 §3.1.1);
//   - sts-enforce.example: MTA-STS in enforce mode → delivered over TLS
//     authenticated by the WebPKI (RFC 8461 §4.2);
//   - sts-testing.example: MTA-STS in testing mode, an expired certificate
//     → delivered, the session saying why the check failed
//     (delivery.Session.CheckErr) and the failure counted for TLS-RPT
//     (RFC 8461 §5);
//   - stripped-sts.example, stripped-dane.example: an on-path attacker
//     strips STARTTLS under an enforced policy or DANE → deferred with
//     4.7.10, nothing sent in plaintext, the attacker sees no mail;
//   - forged-sts.example: an on-path attacker answers STARTTLS with a
//     certificate of its own under an enforced policy → deferred with
//     4.7.5, the attacker sees no mail;
//   - nullmx.example: "MX 0 ." → bounced with 5.1.10 (RFC 7505), the DSN
//     queued to the sender and delivered to the sender's MX host;
//   - no-requiretls.example: DANE like dane.example, but its recipient gets
//     a second message, which carries REQUIRETLS (RFC 8689 makes it a
//     property of the message), and the MX host does not advertise
//     REQUIRETLS → bounced with 5.7.30 (RFC 8689 §4.2.1), a DSN of its own
//     to the sender;
//   - plain.example: no STARTTLS and no policy → delivered in plaintext.
//
// It ends with the TLS-RPT report (RFC 8460 §4.4) sealpost would send for
// one domain. It exits 1 if a recipient did not end as expected, so the demo
// doubles as a smoke test of the library.
//
// Usage:
//
//	go run ./examples/demo [-v] [-report domain]
//
// -v writes the library's logs to stderr; -report chooses the domain whose
// report is shown (default sts-testing.example; "" shows none). Colour is
// used only when stdout is a terminal and NO_COLOR is not set.
//
// The files: scenarios.go is the table of recipient domains and what each
// must show, world.go builds them with internal/testenv, send.go runs the
// queue and gathers the outcome, track.go follows the queue's observer
// until the mail is at rest (the messages are sent one after the other, so
// that each bounce is known to belong to its message), print.go writes the
// table and the report.
package main
