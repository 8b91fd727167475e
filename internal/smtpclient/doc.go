// Package smtpclient is the SMTP client dialogue the delivery engine drives
// on a connection it has opened to an MX host: greeting, EHLO (HELO as a
// fallback), STARTTLS, EHLO again, then mail transactions with pipelining,
// one after another on the same connection, and QUIT.
//
// # Why not go-smtp's client
//
// github.com/emersion/go-smtp v0.25 is our test peer (its server), but its
// client cannot do what a sending MTA must:
//
//   - NewClientStartTLS says "EHLO localhost" before STARTTLS; an MTA must
//     give its own name in every EHLO (RFC 5321 §4.1.1.1), and some
//     receivers score or refuse "localhost".
//   - startTLS is unexported, so a caller cannot run STARTTLS after an EHLO
//     with its own name, check the advertised extensions first, or tell a
//     refused STARTTLS from a failed handshake — which DANE, MTA-STS and
//     TLS-RPT all need to tell apart.
//   - The greeting and the name in the server's EHLO reply are not
//     exposed; TLS-RPT reports the latter as receiving-mx-helo.
//   - It sends each command and waits for its reply: no PIPELINING (RFC
//     2920), so every message costs a round trip per recipient plus three.
//     Over a reused connection this package needs two round trips per
//     message: the envelope with DATA, then the content.
//
// So this package implements the client on bufio directly. Replies are
// parsed by the package itself rather than net/textproto, which accepts any
// reply length and cannot report enhanced status codes.
//
// # What it implements
//
//   - RFC 5321 §3.1 greeting (a 554 greeting is answered with QUIT), §4.1.1
//     commands, §4.1.4 HELO only when EHLO is refused with 500 or 502, §4.2
//     replies (multi-line, codes 200-559 checked, one code per reply),
//     §4.3.2 the replies each command may get (below),
//     §4.5.2 transparency (dot-stuffing) with every line end sent as CRLF
//     (§2.3.8), §4.5.3.2 timeouts as per-step deadlines (configurable,
//     capped by the context), §3.8 421 ends the session.
//   - RFC 2034 and RFC 3463 enhanced status codes, parsed from the text
//     when their class matches the reply code.
//   - RFC 3207 STARTTLS: the extensions and the server's name are forgotten
//     after the handshake (§4.2), and octets that arrive after the 220 but
//     before the handshake end the connection instead of being read as if
//     they came under TLS (the reply-injection attack of §5).
//   - RFC 2920 PIPELINING: MAIL, every RCPT and DATA in one write (in groups
//     of at most 100 commands), every reply checked (§3.1), including a
//     DATA accepted although no recipient was, which gets an empty message.
//     A transaction left open by the previous Send is ended by an RSET at
//     the head of the next group; a completed one needs none.
//   - RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8 (set when an
//     address needs it), RFC 3461 DSN (RET, ENVID, NOTIFY, ORCPT in xtext;
//     RFC 6533 utf-8-addr-xtext for a non-ASCII ORCPT), sent only when
//     advertised; RFC 8689 REQUIRETLS, sent only when advertised over TLS.
//     A message that needs SMTPUTF8, 8BITMIME, REQUIRETLS or more than the
//     advertised SIZE is refused with a *CapabilityError before anything is
//     sent: the caller's policy decides what happens to it.
//   - RFC 4954 AUTH with any github.com/emersion/go-sasl client, for relay
//     hosts, masked in the trace.
//
// # Readings chosen
//
//   - A reply line may be 4096 octets, not 512 (§4.5.3.1.5): real servers
//     write longer ones, and §4.5.3.1 asks for tolerance. A reply may have
//     100 lines and 64 KiB; more is an error, as is a control character in
//     the text. A bare LF ending a reply line is accepted.
//   - Addresses are checked against RFC 5321 §4.1.2 before they go into a
//     command, so that no input can add a line or a parameter: stricter
//     than the RFC, a quoted local part may not hold spaces or angle
//     brackets, which a naive server would split at. Looser than the RFC, a
//     local part with leading, trailing or doubled dots is allowed, since
//     some large providers issue such addresses and they endanger nothing.
//   - The positive replies RFC 5321 §4.3.2 lists are enforced exactly,
//     per step (see Reply codes); every 4yz and 5yz is accepted for every
//     step as a refusal of its class (§4.2.1), listed for the command or
//     not: a refusal is never mistaken for success, the lists are not
//     complete (RFC 3207, 4954, 1870, 3461, 6531 and 7504 add codes), and
//     real servers answer RCPT with 554 or 504.
//   - Each command has exactly one reply (§4.2, RFC 2920 §3.1). Octets
//     already waiting after the reply to the last command sent — a
//     duplicated reply, one sent before its command, one injected after
//     STARTTLS (RFC 3207 §5) — are a *ProtocolError that ends the Conn, so
//     that they are never read as the next command's reply. A stray reply
//     that arrives only later cannot be told from the next one; it must
//     then pass the table above, which a reply meant for another command
//     seldom does (the 250 of a duplicated RCPT reply fails DATA).
//   - A 421 reply, a malformed reply or one the step does not allow, a
//     timeout, a lost connection and a cancelled context all end the Conn,
//     and all match ErrConnLost, so the caller moves on to the next host
//     with one test. A Conn that ended is never used again (Err).
//   - Message content is streamed: never held in memory, traced only as its
//     length.
//   - SMTP smuggling (CVE-2023-51764, -51765, -51766) is prevented by
//     normalising, not refusing: every bare CR and every bare LF goes out as
//     CRLF (RFC 5321 §2.3.8 forbids sending them bare), CR CR LF being two
//     line ends, and every line that then begins with "." is dot-stuffed
//     (§4.5.2). So the content on the wire holds no CR or LF outside a
//     CRLF, and CRLF "." CRLF only as its terminator: no receiver, however
//     lax, finds an earlier end of data ("\n.\n", "\r.\r", "\n.\r\n",
//     "\r\n.\n", ...). This holds however the reader cuts the content,
//     one octet at a time included. Refusing such content instead would
//     bounce mail that old software writes with bare LFs every day; the
//     price of normalising is that a DKIM signature made over bare line
//     ends no longer verifies, which was never going to survive transit.
//
// # Reply codes
//
// A positive reply not in this table is a *ProtocolError that ends the
// Conn, never a success: a 250 to DATA delivers nothing, and the
// recipients are not accepted. 421 ends the session wherever it comes
// (RFC 5321 §3.8).
//
//	step          positive replies   where
//	greeting      220                RFC 5321 §4.3.2, §3.1
//	EHLO, HELO    250                RFC 5321 §4.3.2
//	STARTTLS      220                RFC 3207 §4
//	AUTH          235, 334           RFC 4954 §4
//	MAIL          250                RFC 5321 §4.3.2
//	RCPT          250, 251           RFC 5321 §4.3.2, §3.4
//	DATA          354                RFC 5321 §4.3.2 (intermediate only)
//	end of data   250                RFC 5321 §4.3.2
//	RSET, NOOP    250                RFC 5321 §4.3.2
//	QUIT          221                RFC 5321 §4.3.2
//
// 252 is not taken for RCPT: §4.3.2 lists it for VRFY and EXPN only, and
// §3.5.3 makes it "cannot verify" — not an answer about this recipient.
//
// # What it does not do
//
// It does not resolve, dial, choose TLS settings or verify peers (the
// tls.Config the caller passes does), convert 8-bit content to 7-bit, turn
// U-labels into A-labels, use CHUNKING/BDAT, or wrap lines longer than
// 1000 octets. A Conn serves one goroutine at a time; pooling is the
// caller's.
//
// # Example
//
//	c, err := smtpclient.New(ctx, conn, smtpclient.Options{})
//	if err != nil { ... }
//	defer c.Close()
//	err = c.Hello(ctx, "mta.example.org")
//	err = c.StartTLS(ctx, &tls.Config{ServerName: "mx.example.net"})
//	err = c.Hello(ctx, "mta.example.org")
//	res, err := c.Send(ctx, smtpclient.Envelope{
//		From:  "alice@example.org",
//		Rcpts: []smtpclient.Rcpt{{Addr: "bob@example.net"}},
//	}, message)
//	err = c.Quit(ctx)
package smtpclient
