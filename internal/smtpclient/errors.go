package smtpclient

import (
	"errors"
	"fmt"
	"strings"
)

// ErrConnLost is matched (errors.Is) by every error after which the
// connection cannot carry another command: a read or write failure, a
// timeout, cancellation, a malformed reply (the client closes the
// connection because it can no longer tell replies apart), and a 421 reply,
// with which the server closes the transmission channel (RFC 5321 §3.8). A
// sender moves on to the next address or MX host; RFC 5321 §6.1 asks it to
// treat a transaction cut off this way as if it had received a 451.
var ErrConnLost = errors.New("smtpclient: connection lost")

// ErrNoRecipients is returned by Send when the server refused every
// recipient; SendResult.Rcpts holds the reply to each.
var ErrNoRecipients = errors.New("smtpclient: every recipient was refused")

// ErrBadSequence is wrapped by errors for calls made in an order SMTP does
// not allow, e.g. Send before Hello, or Send after StartTLS without a new
// Hello (RFC 3207 §4.2). Nothing was sent; the connection stays usable.
var ErrBadSequence = errors.New("smtpclient: bad sequence of commands")

// ConnError is a failure of the connection during the step Op. The client
// has closed the connection. It matches ErrConnLost and is temporary.
type ConnError struct {
	// Op is the SMTP step that failed: "greeting", "EHLO", "HELO", "STARTTLS",
	// "MAIL", "RCPT", "DATA", "message data" (sending the content), "end
	// of data" (awaiting the final reply: the server may or may not have
	// taken the message), "RSET", "NOOP", "QUIT", "AUTH"; "cancel" when the
	// context ended a call that had otherwise finished; "close" after
	// Close.
	Op string
	// Err is the cause: a net.Error (errors.Is(err, os.ErrDeadlineExceeded)
	// for a timeout), io.ErrUnexpectedEOF, a *ProtocolError, or the
	// context's error.
	Err error
}

func (e *ConnError) Error() string {
	return fmt.Sprintf("smtpclient: %s: connection closed: %v", e.Op, e.Err)
}

func (e *ConnError) Unwrap() error { return e.Err }

// Is reports ErrConnLost.
func (e *ConnError) Is(target error) bool { return target == ErrConnLost }

// Temporary reports true: another host, or a later try, may succeed.
func (e *ConnError) Temporary() bool { return true }

// ProtocolError reports a server that broke the protocol: a malformed or
// over-long reply, an unexpected reply code, or data where none may be.
type ProtocolError struct {
	// Op is the SMTP step, as in ConnError.
	Op string
	// Reason says what was expected.
	Reason string
	// Got is what arrived, truncated for display; it may be empty.
	Got string
}

func (e *ProtocolError) Error() string {
	if e.Got == "" {
		return fmt.Sprintf("smtpclient: %s: %s", e.Op, e.Reason)
	}
	return fmt.Sprintf("smtpclient: %s: %s, got %q", e.Op, e.Reason, e.Got)
}

// Temporary reports true: a broken peer may be fixed, another host may work.
func (e *ProtocolError) Temporary() bool { return true }

// TLSError reports a failed STARTTLS handshake, including a certificate the
// tls.Config's verification refused. The client has closed the connection.
// Err is the crypto/tls or verification error (errors.As finds
// *tls.CertificateVerificationError, x509.HostnameError, ...).
type TLSError struct {
	Err error
}

func (e *TLSError) Error() string { return "smtpclient: TLS handshake: " + e.Err.Error() }

func (e *TLSError) Unwrap() error { return e.Err }

// Temporary reports true: the certificate may be fixed, another host may
// have a good one.
func (e *TLSError) Temporary() bool { return true }

// CommandError reports an argument the client refused to put into a
// command: an address or parameter that is not valid SMTP syntax, or one
// that could inject text into the dialogue (CR, LF, spaces). Nothing was
// sent; the connection stays usable. It is permanent: the same input fails
// the same way everywhere.
type CommandError struct {
	// Command is the SMTP command: "EHLO", "MAIL", "RCPT", "AUTH".
	Command string
	// Field names the argument: "address", "ENVID", "NOTIFY", ...
	Field string
	// Value is the refused value.
	Value string
	// Reason says what was expected.
	Reason string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("smtpclient: %s %s %q: %s", e.Command, e.Field, truncate(e.Value), e.Reason)
}

// Temporary reports false.
func (e *CommandError) Temporary() bool { return false }

// CapabilityError reports a transaction or command that needs a service
// extension the server did not advertise (or, for REQUIRETLS, a connection
// without TLS). Nothing was sent; the connection stays usable. It is
// permanent for this server; another MX host of the domain may differ.
type CapabilityError struct {
	// Extension is the EHLO keyword that was missing: "SMTPUTF8",
	// "8BITMIME", "REQUIRETLS", "SIZE", "STARTTLS", "AUTH".
	Extension string
	// Enhanced is the RFC 3463 code a bounce for this reason carries:
	// 5.6.7 (SMTPUTF8, RFC 6531 §3.2), 5.6.3 (8BITMIME), 5.7.30
	// (REQUIRETLS, RFC 8689 §5), 5.3.4 (SIZE, RFC 1870 §6); zero for the
	// others.
	Enhanced [3]int
	// Reason says what was needed.
	Reason string
}

func (e *CapabilityError) Error() string {
	return fmt.Sprintf("smtpclient: server lacks %s: %s", e.Extension, e.Reason)
}

// Temporary reports false.
func (e *CapabilityError) Temporary() bool { return false }

// SourceError reports that reading the message from the caller's io.Reader
// failed while its content was being sent. SMTP cannot abort DATA, so the
// client closed the connection; the message was not delivered. Whether a
// retry helps depends on the reader; Temporary reports true.
type SourceError struct {
	Err error
}

func (e *SourceError) Error() string { return "smtpclient: reading the message: " + e.Err.Error() }

func (e *SourceError) Unwrap() error { return e.Err }

// Temporary reports true.
func (e *SourceError) Temporary() bool { return true }

// truncate shortens s for an error message.
func truncate(s string) string {
	const max = 120
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "..."
}
