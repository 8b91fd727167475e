package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/sealpost/sealpost/queue"
	"golang.org/x/crypto/bcrypt"
)

// maxAuthFailures is how many failed AUTH attempts a connection gets
// before it is closed: enough for a typo, too few to guess.
const maxAuthFailures = 3

// enqueueTimeout bounds storing one accepted message. The store fsyncs;
// a disk slower than this is better answered with 451 than waited on.
const enqueueTimeout = 30 * time.Second

// Replies of our own (RFC 4954 §6 for AUTH, RFC 3463 for the codes).
var (
	errAuthRequired  = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errTooManyAuth   = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many failed authentication attempts"}
	errRequireTLS    = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 10}, Message: "REQUIRETLS needs a TLS session: send STARTTLS first (RFC 8689)"}
	errQueueFailed   = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Could not queue the message, try again later"}
	errShuttingDown  = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Shutting down, try again later"}
	errBadRecipient  = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: `Bad recipient address syntax: want "local@domain"`}
	errBadSender     = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: `Bad sender address syntax: want "local@domain" or "<>"`}
	errTooManyRcpts  = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "Too many recipients"}
	errBadNotify     = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "Malformed NOTIFY parameter"}
	errNoMailCommand = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "MAIL first"}
)

// users checks passwords against bcrypt hashes.
type users struct {
	hashes map[string][]byte
	// dummy is compared against for unknown users, so that an unknown
	// name costs as long as a wrong password and names cannot be probed.
	dummy []byte
}

func newUsers(m map[string]string) *users {
	u := &users{hashes: make(map[string][]byte, len(m))}
	cost := bcrypt.DefaultCost
	for name, h := range m {
		u.hashes[name] = []byte(h)
		if c, err := bcrypt.Cost([]byte(h)); err == nil {
			cost = c // the dummy costs what a real check costs
		}
	}
	u.dummy, _ = bcrypt.GenerateFromPassword([]byte("not a password"), cost)
	return u
}

func (u *users) check(name, password string) bool {
	h, ok := u.hashes[name]
	if !ok {
		_ = bcrypt.CompareHashAndPassword(u.dummy, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword(h, []byte(password)) == nil
}

// submission is the go-smtp backend: it queues what clients submit.
type submission struct {
	queue    *queue.Queue
	hostname string
	users    *users // nil: no AUTH, anyone who can connect may send
	maxRcpts int
	now      func() time.Time
	log      *slog.Logger

	// ctx ends when the relay stops: messages already accepted are still
	// stored (context.WithoutCancel), new ones are refused.
	ctx context.Context
}

// NewSession implements smtp.Backend.
func (b *submission) NewSession(c *smtp.Conn) (smtp.Session, error) {
	if b.ctx.Err() != nil {
		return nil, errShuttingDown
	}
	return &session{b: b, conn: c}, nil
}

// session is one client connection. go-smtp calls its methods, and the
// AUTH callback, from the connection's one goroutine.
type session struct {
	b    *submission
	conn *smtp.Conn

	user         string // authenticated user, "" before AUTH
	authFailures int

	env     *queue.Envelope // nil before MAIL
	rcptSet map[string]bool
}

// AuthMechanisms implements smtp.AuthSession: PLAIN (RFC 4616) when users
// are configured. go-smtp offers it only over TLS, or on loopback.
func (s *session) AuthMechanisms() []string {
	if s.b.users == nil {
		return nil
	}
	return []string{sasl.Plain}
}

// Auth implements smtp.AuthSession.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if s.b.users == nil || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	if s.authFailures >= maxAuthFailures {
		s.conn.Close()
		return nil, errTooManyAuth
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		// No proxy authorization: the identity, if given, is the user.
		if (identity == "" || identity == username) && s.b.users.check(username, password) {
			s.user = username
			s.b.log.Info("relay: authenticated", "user", username, "remote", s.remote())
			return nil
		}
		s.authFailures++
		s.b.log.Warn("relay: authentication failed", "user", username, "remote", s.remote())
		return smtp.ErrAuthFailed
	}), nil
}

func (s *session) authenticated() (string, bool) { return s.user, s.user != "" }

func (s *session) remote() string {
	if nc := s.conn.Conn(); nc != nil {
		return nc.RemoteAddr().String()
	}
	return ""
}

func (s *session) tlsState() (tls.ConnectionState, bool) { return s.conn.TLSConnectionState() }

// Mail implements smtp.Session.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if _, ok := s.authenticated(); s.b.users != nil && !ok {
		return errAuthRequired
	}
	if from != "" && !validAddress(from) {
		return errBadSender
	}
	env := &queue.Envelope{From: from}
	if opts != nil {
		if _, isTLS := s.tlsState(); opts.RequireTLS && !isTLS {
			return errRequireTLS
		}
		env.RequireTLS = opts.RequireTLS
		env.EnvID = opts.EnvelopeID
		switch opts.Return {
		case smtp.DSNReturnFull:
			env.Ret = queue.RetFull
		case smtp.DSNReturnHeaders:
			env.Ret = queue.RetHeaders
		}
	}
	s.env, s.rcptSet = env, make(map[string]bool)
	return nil
}

// Rcpt implements smtp.Session.
func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if s.env == nil {
		return errNoMailCommand
	}
	if !validAddress(to) {
		return errBadRecipient
	}
	if s.rcptSet[to] {
		return nil // the same mailbox twice gets the message once
	}
	if len(s.env.Recipients) >= s.b.maxRcpts {
		return errTooManyRcpts
	}
	r := queue.Recipient{Addr: to}
	if opts != nil {
		if len(opts.Notify) > 0 {
			words := make([]string, len(opts.Notify))
			for i, n := range opts.Notify {
				words[i] = string(n)
			}
			n, err := queue.ParseNotify(strings.Join(words, ","))
			if err != nil {
				return errBadNotify
			}
			r.Notify = n
		}
		if opts.OriginalRecipient != "" {
			r.ORcpt = strings.ToLower(string(opts.OriginalRecipientType)) + ";" + opts.OriginalRecipient
		}
	}
	s.env.Recipients = append(s.env.Recipients, r)
	s.rcptSet[to] = true
	return nil
}

// Data implements smtp.Session: the message is queued, with a Received
// field on top (RFC 5321 §4.4), before the 250 reply.
func (s *session) Data(r io.Reader) error {
	if s.env == nil || len(s.env.Recipients) == 0 {
		return errNoMailCommand
	}
	content, err := io.ReadAll(r)
	if err != nil {
		return err // go-smtp turns a too-large message into 552
	}
	body := append([]byte(s.received()), content...)
	// The client has sent the whole message: store it even when the relay
	// is stopping, within a bound of our own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.b.ctx), enqueueTimeout)
	defer cancel()
	id, err := s.b.queue.Enqueue(ctx, s.env, body)
	if err != nil {
		var rej *queue.RejectError
		if errors.As(err, &rej) {
			return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: rej.Reason}
		}
		s.b.log.Error("relay: queueing a message", "err", err, "remote", s.remote())
		return errQueueFailed
	}
	user, _ := s.authenticated()
	s.b.log.Info("relay: message accepted", "id", id, "from", s.env.From, "recipients", len(s.env.Recipients), "size", len(body), "user", user)
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK: queued as " + string(id)}
}

// received returns the Received header field for the current message.
func (s *session) received() string {
	t := trace{helo: s.conn.Hostname(), by: s.b.hostname, when: s.b.now()}
	if nc := s.conn.Conn(); nc != nil {
		if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
			t.ip = ta.IP
		}
	}
	if state, ok := s.tlsState(); ok {
		t.tls = &state
	}
	_, t.auth = s.authenticated()
	// "for" only with one recipient: with several it would show each of
	// them all the others, Bcc included.
	if len(s.env.Recipients) == 1 {
		t.rcpt = s.env.Recipients[0].Addr
	}
	return t.field()
}

// trace is what the Received field of one message says.
type trace struct {
	helo string // the client's EHLO argument, as sent
	ip   net.IP // the client's address; nil when unknown
	by   string // this relay's name
	tls  *tls.ConnectionState
	auth bool
	rcpt string // the one recipient, or ""
	when time.Time
}

// field writes the Received header field (RFC 5321 §4.4; "with" protocol
// names of RFC 3848). Only helo comes from the client unchecked, and
// traceWord makes it one safe word; the recipient was checked by
// validAddress.
func (t trace) field() string {
	proto := "ESMTP"
	if t.tls != nil {
		proto += "S"
	}
	if t.auth {
		proto += "A"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s", traceWord(t.helo))
	if t.ip != nil {
		fmt.Fprintf(&b, " ([%s])", t.ip)
	}
	fmt.Fprintf(&b, "\r\n\tby %s with %s", t.by, proto)
	if t.tls != nil {
		fmt.Fprintf(&b, "\r\n\t(version=%s cipher=%s)", tls.VersionName(t.tls.Version), tls.CipherSuiteName(t.tls.CipherSuite))
	}
	if t.rcpt != "" {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", t.rcpt)
	}
	fmt.Fprintf(&b, ";\r\n\t%s\r\n", t.when.Format(time.RFC1123Z))
	return b.String()
}

// traceWord makes the client's EHLO argument safe inside a header field:
// printable ASCII without white space, parentheses or semicolons, at most
// 255 characters.
func traceWord(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 255; i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '(' || c == ')' || c == ';' || c == '\\' {
			c = '_'
		}
		b.WriteByte(c)
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}

// Reset implements smtp.Session.
func (s *session) Reset() { s.env, s.rcptSet = nil, nil }

// Logout implements smtp.Session.
func (s *session) Logout() error { return nil }

// validAddress accepts "local@domain" as the queue stores it: no angle
// brackets, white space or control characters.
func validAddress(a string) bool {
	at := strings.LastIndexByte(a, '@')
	if at <= 0 || at == len(a)-1 || len(a) > 320 {
		return false
	}
	for i := 0; i < len(a); i++ {
		if c := a[i]; c <= ' ' || c == 0x7f || c == '<' || c == '>' {
			return false
		}
	}
	return true
}
