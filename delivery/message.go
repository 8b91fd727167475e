package delivery

import (
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-smtp"

	"github.com/sealpost/sealpost/internal/dnsname"
)

// Message is one message to deliver: its envelope and where to read its
// content. A Message is only read by the Client; several deliveries of the
// same Message may run at once.
type Message struct {
	// From is the envelope sender (the reverse-path of MAIL FROM), without
	// angle brackets. Empty is the null reverse-path "<>" of bounces and
	// TLS-RPT reports (RFC 5321 §4.5.5).
	From string

	// Recipients are the forward-paths, each with its DSN parameters.
	// Recipients of different domains are delivered separately, each
	// domain to its own MX hosts; the results come back in this order.
	Recipients []Recipient

	// Body is the message content: header and body, lines ending in CRLF,
	// not dot-stuffed. A bare LF or a bare CR is sent as CRLF, so that no
	// content can end the message early on any receiver (SMTP smuggling;
	// see internal/smtpclient). Each transaction reads it once
	// from offset 0 to Size through an io.SectionReader, so a file or a
	// database value can back it without a second copy in memory;
	// transactions to different domains read it concurrently, as
	// io.ReaderAt allows. Nil with Size 0 is an empty message.
	Body io.ReaderAt
	// Size is the length of Body in bytes. It is announced with SIZE (RFC
	// 1870) and checked against the server's limit before anything is sent.
	// A Body that ends before Size aborts the transaction (a temporary
	// failure, 4.3.0) rather than deliver the message cut short.
	Size int64

	// Return is the DSN RET parameter (RFC 3461 §4.3): smtp.DSNReturnFull,
	// smtp.DSNReturnHeaders, or "" for none. DSN parameters are passed only
	// to servers that advertise DSN.
	Return smtp.DSNReturn
	// EnvID is the DSN ENVID parameter (RFC 3461 §4.4), unencoded; empty
	// means none.
	EnvID string

	// RequireTLS asks for RFC 8689 REQUIRETLS: the message goes only to a
	// host found through a DNSSEC-secure MX answer or validated by an
	// MTA-STS policy, over TLS authenticated by DANE or the WebPKI, and
	// only to a server that advertises REQUIRETLS; otherwise it fails
	// permanently with 5.7.30. It takes precedence over TLSOptional
	// (RFC 8689 §3).
	RequireTLS bool
	// TLSOptional says the message carries the header field
	// "TLS-Required: No" (RFC 8689 §3, §4.2.2): the recipient domain's DANE and
	// MTA-STS policies are checked and reported but not enforced, so the
	// message gets through a broken configuration; STARTTLS is still used
	// whenever offered. The operator's LocalPolicy still applies. Inspect
	// sets it.
	TLSOptional bool

	// SMTPUTF8 says the message needs RFC 6531 SMTPUTF8 because its header
	// carries UTF-8. Non-ASCII envelope addresses need it too; the Client
	// sees those itself. A server that does not offer SMTPUTF8 to a message
	// that needs it makes a permanent failure, 5.6.7 (RFC 6531 §3.2).
	// Inspect sets it.
	SMTPUTF8 bool
	// EightBit says the body has bytes above 127 and is sent as
	// BODY=8BITMIME (RFC 6152). A server that does not offer 8BITMIME makes
	// a permanent failure, 5.6.3: sealpost does not convert content to
	// 7 bits (RFC 6152 §3 allows returning it instead). Inspect sets it.
	EightBit bool

	// NextHop, when set, sends every recipient of this message through
	// that host instead of their domains' MX hosts: "relay.example" (its
	// MX records are looked up), "[smtp.relay.example]" (the host itself,
	// no MX look-up), either with ":port" (default 25). The security
	// requirement is then that of the next hop: its DANE records (those of
	// its port, _<port>._tcp), and the MTA-STS policy and LocalPolicy rules
	// of its own domain (the bracketed host name is its own domain), made
	// stricter by the requirements the LocalPolicy writes for the
	// recipient domain. It overrides DomainPolicy.NextHop.
	NextHop string

	// TLSReport marks a TLS-RPT report (RFC 8460 §3): it is delivered
	// without enforcing the recipient domain's DANE or MTA-STS policy (the
	// policy may be what the report is about) and its sessions are not
	// recorded, so that reports cannot loop.
	TLSReport bool
}

// Recipient is one forward-path with its RFC 3461 DSN parameters.
type Recipient struct {
	// Address is the recipient's mailbox, without angle brackets:
	// "local@domain". The domain may be an address literal
	// ("[192.0.2.1]"), which Config.AllowAddressLiterals must allow.
	Address string
	// Notify is the NOTIFY parameter (RFC 3461 §4.1): NEVER, or any of
	// SUCCESS, FAILURE and DELAY. Nil sends none.
	Notify []smtp.DSNNotify
	// ORcpt is the original recipient address for the ORCPT parameter
	// (RFC 3461 §4.2), unencoded; it is sent as "rfc822;" with xtext, or,
	// for a UTF-8 address, as "utf-8;" (RFC 6533 §3). Empty sends none.
	ORcpt string
}

// domain returns the recipient's domain as DNS wants it: lower-case
// A-labels (RFC 5890; an internationalised domain's U-labels are
// converted, the address itself is sent as given, under SMTPUTF8). It
// reports false for an address without a valid domain.
func (r Recipient) domain() (string, bool) {
	i := strings.LastIndexByte(r.Address, '@')
	if i < 0 || i == len(r.Address)-1 {
		return "", false
	}
	d := r.Address[i+1:]
	if strings.HasPrefix(d, "[") {
		return d, true // an address literal, checked by the route
	}
	d, err := dnsname.Canonical(d)
	return d, err == nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
