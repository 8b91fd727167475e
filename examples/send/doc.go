// Command send delivers one message straight to its recipients' MX hosts
// with the sealpost delivery package — no queue, no relay: one attempt,
// and a table saying what happened to each recipient and why.
//
// Usage:
//
//	send -from alice@example.org [-message file] [flags] bob@example.com ...
//	send -explain example.com carol@example.net ...
//
// The message (header and body, CRLF or LF line ends) is read from
// -message, or from standard input when -message is absent or "-". Each
// recipient domain's MX hosts are tried in order, each held to its own
// security requirement: DANE (RFC 7672) where DNSSEC-secure TLSA records
// exist, MTA-STS (RFC 8461) where the domain publishes a policy, the rules
// of -policy, REQUIRETLS (RFC 8689) with -requiretls, otherwise
// opportunistic STARTTLS.
//
// Flags:
//
//	-from addr            envelope sender (MAIL FROM); "<>" is the null sender
//	-message file         the message; default standard input
//	-ehlo name            name sent in EHLO; default this machine's fully
//	                      qualified name (send refuses to guess when it has none)
//	-resolver r           DNS resolver: "ip[:port]", or a resolv.conf(5) file;
//	                      default /etc/resolv.conf
//	-trust-ad             believe the AD bit of a -resolver that is not on
//	                      loopback (only when the path to it is protected)
//	-require-dane-resolver  refuse to run without a validating resolver
//	-dnssec-probe name    DNSSEC-signed name the health check asks for;
//	                      default the root zone (Postfix's dnssec_probe)
//	-requiretls           ask for REQUIRETLS: the message is sent only over
//	                      authenticated TLS to servers that promise to keep it so
//	-policy file          local policy (see below)
//	-explain              print each domain's route decision, send nothing
//	-trace                print the SMTP dialogues to standard error
//	-connect-timeout d    bound on one TCP connection (default 30s)
//	-v                    log what the library decides (hosts skipped, sessions);
//	                      its warnings, such as an override in use, always are
//
// Start-up checks: send asks the resolvers about the root zone, or the
// -dnssec-probe name (dane.Resolver.CheckHealth). A resolver that answers
// but not the probe (split horizon, lab resolvers that do not serve the
// root) is a warning, unless -require-dane-resolver asks for a validating
// resolver; one that does not answer at all stops send. Resolvers listed
// beside a trusted one are never asked, and send names them. A resolver that does not validate DNSSEC,
// or whose AD bit is not trusted, makes DANE impossible; send says so
// ("no validating resolver configured: DANE cannot be used") and goes on,
// or, with -require-dane-resolver, stops. When every connection to an MX
// host times out, send says that port 25 is unreachable from here — the
// usual cause is a network that blocks outgoing port 25.
//
// # Output
//
// One line per recipient, in aligned columns: the recipient, its status
// (delivered, deferred — a temporary failure — or failed — a permanent
// one), the SMTP reply code and enhanced status code, the MX host and
// address that decided it, the TLS version, how the server was
// authenticated (DANE-EE, DANE-TA, WebPKI, unauthenticated TLS,
// plaintext), the policy that set the requirement, and the server's reply
// (or the reason of our own refusal).
//
// With -explain, for each recipient domain (recipients may be given as
// bare domains): the MX hosts in the order they would be tried, and for
// each the requirement (opportunistic, TLS required, authenticated TLS
// required), the check (DANE, WebPKI) and the reason; nothing is sent and
// no MX host is contacted. With -requiretls they are those of a message
// with REQUIRETLS (delivery.Client.ExplainMessage): hosts REQUIRETLS rules
// out are shown with 5.7.30; whether a server advertises REQUIRETLS is
// only known once connected.
//
// # Exit status
//
// 0 when every recipient was delivered (or -explain ran), 75 (EX_TEMPFAIL)
// when some were deferred and none failed permanently, 1 when some failed
// permanently, 64 (EX_USAGE) for bad flags, arguments or an unreadable
// message, 78 (EX_CONFIG) for a bad policy file, no usable EHLO name, or a
// resolver -require-dane-resolver refuses.
//
// # Policy file
//
// -policy names a JSON file of the operator's own rules
// (delivery.LocalPolicy), in the format examples/relay reads too; "go doc
// ./internal/policyfile" documents every field. Rules only ever tighten
// what a domain publishes; the one way to loosen it is an override, which
// must give a reason:
//
//	{
//	  "default": {"require_tls": true},
//	  "domains": {
//	    "example.com": {
//	      "require_authenticated": true,
//	      "mta_sts": {"mode": "enforce", "mx": ["mx1.example.com", "*.mail.example.com"]}
//	    },
//	    ".example.net": {"dane_only": true},
//	    "broken.example": {
//	      "override": {"ignore_dane": true, "reason": "TLSA records stale, ticket 4711",
//	                   "until": "2025-07-01T00:00:00Z"}
//	    }
//	  }
//	}
//
// The file is read strictly — an unknown field, a key given twice, a
// domain that is not an A-label name, an invalid mx pattern or an override
// without a reason is an error, because a misspelt rule that is silently
// dropped is a rule that does not protect — and an error names the line,
// the column and the setting: "policy.json:3:21: domains["example.com"]:
// unknown field "requre_tls" ...".
//
// # Testing
//
// The program is the function run over an Env (resolver, dialer, root
// CAs, clock, standard streams, host name), so that its tests run it
// against the loopback world of internal/testenv.
package main
