// Command relay is a small mail relay built on sealpost: it accepts mail on
// a submission port, stores it durably in one file, delivers it to the
// recipients' MX hosts over the TLS their DANE (RFC 7672) and MTA-STS
// (RFC 8461) policies demand, DKIM-signs it when keys are configured,
// bounces what cannot be delivered (RFC 3464), and sends daily TLS-RPT
// reports (RFC 8460) about its TLS sessions.
//
// Usage:
//
//	relay [-config relay.json] [-listen 127.0.0.1:587] [-hostname mail.example.org]
//	      [-store relay.db] [-tls-cert cert.pem -tls-key key.pem]
//	      [-resolver ip[:port]|resolv.conf] [-policy-file policy.json]
//	      [-log-level info]
//	relay -hash-password < password.txt
//
// Flags override the fields of the -config file. A configuration with
// users, DKIM and TLS-RPT:
//
//	{
//	  "listen": "0.0.0.0:587",
//	  "hostname": "mail.example.org",
//	  "store": "/var/lib/relay/relay.db",
//	  "tls_cert": "/etc/relay/cert.pem", "tls_key": "/etc/relay/key.pem",
//	  "users": {"alice": "$2a$10$..."},
//	  "resolver": "127.0.0.1:53", "dnssec_probe": "example.org",
//	  "policy_file": "/etc/relay/policy.json",
//	  "dkim": [{"domain": "example.org", "selector": "s2025", "key_file": "/etc/relay/dkim.pem"}],
//	  "tlsrpt": {"organization": "Example Org", "submitter": "example.org",
//	             "contact": "tlsrpt@example.org"},
//	  "max_message_size": 26214400, "max_recipients": 100,
//	  "shutdown_timeout": "30s", "log_level": "info"
//	}
//
// Every field is optional; Config documents each default. The file is read
// strictly: an unknown field is an error, since a misspelt setting that is
// ignored may be a security setting.
//
// # Submission
//
// The server (go-smtp) listens on 127.0.0.1:587 by default. With users it
// offers AUTH PLAIN (RFC 4616, passwords as bcrypt hashes; -hash-password
// makes one) and requires it before MAIL (530 5.7.0, RFC 4954 §6); a
// connection that fails three times is closed. AUTH is offered only after
// STARTTLS, except on a loopback address without a certificate. The relay
// refuses to start in configurations that make an open relay (no users on
// a non-loopback address) or send passwords in the clear (users on a
// non-loopback address without a certificate). It offers STARTTLS (with
// tls_cert and tls_key), SIZE, 8BITMIME, SMTPUTF8, DSN (RFC 3461: NOTIFY,
// ORCPT, RET and ENVID are kept with the message and honoured in bounces)
// and, over TLS, REQUIRETLS (RFC 8689; MAIL FROM ... REQUIRETLS on a
// plaintext session is refused with 530 5.7.10). Each accepted message
// gets a Received field (RFC 5321 §4.4, with the RFC 3848 protocol name,
// "for" only with a single recipient) and is acknowledged only once it is
// on disk: "250 2.0.0 OK: queued as <id>".
//
// # Delivery and reports
//
// The queue (package queue, on queue/boltstore: one bbolt file) retries
// temporary failures with back-off for five days and bounces permanent
// failures to the envelope sender. Deliveries (package delivery) apply
// DANE, MTA-STS and REQUIRETLS, and the operator's own rules from
// policy_file: a JSON file (the format examples/send's -policy reads,
// documented in internal/policyfile) that can require TLS or an
// authenticated server for a domain, use only its DANE hosts, preload an
// MTA-STS policy, route it through a next hop, or loosen a broken policy
// with an override that gives a reason. The file is read strictly at
// start: an unknown field or a bad value stops the relay with the line,
// column and setting at fault. The MTA-STS policy cache is kept in the
// same file, so that a restart does not forget a domain's policy and let
// an attacker who blocks the policy fetch downgrade the domain's mail
// (RFC 8461 §10.2); every TLS session is counted for TLS-RPT there too. Once a day, early in the UTC day, the previous day's
// counts become one report per recipient domain, sent to the domain's
// _smtp._tls destinations: by HTTPS POST, or as mail through the queue,
// DKIM-signed with the keys of the contact address's domain (without such
// a key, reports go to https: destinations only). Report mail carries
// "TLS-Required: No", so that a broken policy does not stop the report
// about it.
//
// # Shutdown
//
// On SIGINT or SIGTERM the relay stops accepting connections and lets
// open submissions finish, stops the reporter, lets deliveries under way
// finish and stores their results (what is cut short by shutdown_timeout
// stays queued and is retried at the next start), writes the last TLS-RPT
// counts and closes the store.
//
// # What it does not do
//
// It does not restrict which envelope sender a user may use, add a
// missing Date or Message-ID (RFC 6409 §8), reload its configuration or
// certificate or policy file while running.
//
// # Testing
//
// The relay runs over an Env (resolver, dialer, root CAs, clock, listener,
// log output), so that its tests run it end to end against the loopback
// world of internal/testenv, with go-smtp's client as the submitting
// user.
package main
