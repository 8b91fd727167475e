package testenv

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// Stage names a point of an SMTP session at which a sink drops the
// connection without a reply, as a crashing or overloaded MX host does.
type Stage int

const (
	// StageNone never drops a connection.
	StageNone Stage = iota
	// StageConnect closes the connection right after accepting it, before
	// the greeting.
	StageConnect
	// StageEHLO closes the connection when the client sends EHLO or HELO
	// on the plaintext connection.
	StageEHLO
	// StageSTARTTLS closes the connection when the client's TLS ClientHello
	// arrives, after the 220 reply to STARTTLS.
	StageSTARTTLS
	// StageTLSEHLO closes the connection when the client sends EHLO over
	// TLS, after a completed handshake.
	StageTLSEHLO
	// StageMAIL closes the connection when MAIL FROM arrives.
	StageMAIL
	// StageRCPT closes the connection when the first RCPT TO arrives.
	StageRCPT
	// StageDATA closes the connection after the whole message content was
	// received, before the final reply: the client cannot know whether
	// the message was taken. The message is not recorded.
	StageDATA
)

// defaultMaxMessageBytes bounds what a sink keeps of one message when
// SMTPOptions.MaxMessageBytes is zero, so that a runaway client cannot
// exhaust the test's memory.
const defaultMaxMessageBytes = 32 << 20

// SMTPOptions configures an SMTP sink. The zero value is a sink on
// 127.0.0.1 with a random port that offers no STARTTLS and accepts every
// message.
type SMTPOptions struct {
	// Addr is the address to listen on. Empty means "127.0.0.1:0". Tests
	// give each MX host its own loopback address ("127.0.0.3:0") so that
	// hosts are told apart by IP as in the real world.
	Addr string

	// Hostname is the name in the 220 greeting. Empty means "localhost".
	// go-smtp answers EHLO with "Hello <client name>", never with its own
	// name, so the EHLO reply does not carry it.
	Hostname string

	// Certificate is the server certificate offered after STARTTLS. Nil
	// means STARTTLS is not advertised and the command is refused.
	Certificate *tls.Certificate

	// MinTLSVersion and MaxTLSVersion bound the TLS versions the sink
	// accepts (tls.VersionTLS10 ... tls.VersionTLS13). Zero means Go's
	// defaults (TLS 1.2 to 1.3). Setting MinTLSVersion below TLS 1.2 is
	// needed to offer old versions at all.
	MinTLSVersion, MaxTLSVersion uint16

	// REQUIRETLS advertises RFC 8689 REQUIRETLS; go-smtp advertises it only
	// on TLS connections, as RFC 8689 §4 requires. False means the sink
	// neither advertises it nor accepts MAIL FROM ... REQUIRETLS (504).
	REQUIRETLS bool
	// DSN advertises RFC 3461 DSN and accepts RET, ENVID, NOTIFY and ORCPT.
	// False means those parameters are refused with 504.
	DSN bool
	// SMTPUTF8 advertises RFC 6531 SMTPUTF8. False means MAIL FROM ...
	// SMTPUTF8 is refused with 504.
	SMTPUTF8 bool
	// BINARYMIME advertises RFC 3030 BINARYMIME. False refuses
	// BODY=BINARYMIME.
	BINARYMIME bool

	// MaxMessageBytes is the limit advertised as "SIZE n" and enforced
	// (552). Zero advertises a bare "SIZE" and keeps at most 32 MiB.
	MaxMessageBytes int64
	// MaxRecipients limits recipients per transaction (452 beyond it) and
	// is advertised as LIMITS RCPTMAX. Zero means no limit.
	MaxRecipients int

	// GreetingReply, when set, replaces the 220 greeting: the sink sends
	// this reply on every connection (e.g. 421 4.3.2 or 554 5.3.2) and
	// then closes it (after 421) or answers only QUIT (otherwise, as RFC
	// 5321 §3.1 asks of a 554 greeting).
	GreetingReply *smtp.SMTPError

	// MailReply, when set, is asked for the reply to each MAIL FROM; nil
	// from it (or a nil MailReply) accepts the sender.
	MailReply func(from string, opts *smtp.MailOptions) *smtp.SMTPError
	// RcptReply, when set, is asked for the reply to each RCPT TO; nil
	// from it (or a nil RcptReply) accepts the recipient. Refused
	// recipients do not appear in the recorded message.
	RcptReply func(to string, opts *smtp.RcptOptions) *smtp.SMTPError
	// DataReply, when set, is asked for the final reply to a message after
	// its content arrived; nil from it (or a nil DataReply) accepts and
	// records the message. A refused message is not recorded.
	DataReply func(m *Message) *smtp.SMTPError

	// DropAt makes the sink close connections at the given stage. The zero
	// value (StageNone) never drops.
	DropAt Stage

	// Trace, when set, receives a copy of every byte of the SMTP dialogue
	// (plaintext part, and the TLS part after decryption).
	Trace io.Writer
}

// Message is one message a sink accepted, with the envelope and the
// connection it arrived over.
type Message struct {
	// Conn is the sequence number (from 1) of the connection that carried
	// the message: two messages with equal Conn came over one connection.
	Conn int
	// Helo is the name the client gave in EHLO or HELO.
	Helo string
	// From is the reverse-path of MAIL FROM, without angle brackets.
	From string
	// MailOptions are the MAIL FROM parameters: Body, Size, RequireTLS,
	// UTF8, Return (RET), EnvelopeID (ENVID).
	MailOptions smtp.MailOptions
	// Rcpts are the accepted recipients in order, with their parameters.
	Rcpts []Recipient
	// Data is the message content as received (dot-unstuffed, CRLF line
	// endings as sent).
	Data []byte
	// TLS is the state of the TLS connection the message arrived over: the
	// version, cipher suite and the SNI name the client sent
	// (ServerName). Nil means plaintext.
	TLS *tls.ConnectionState
}

// Recipient is one accepted RCPT TO.
type Recipient struct {
	// Addr is the forward-path without angle brackets.
	Addr string
	// Options are the RCPT parameters: Notify, OriginalRecipient(Type).
	Options smtp.RcptOptions
}

// SMTPServer is an SMTP sink standing in for an MX host: a go-smtp server
// on loopback that records every message it accepts. Its methods are safe
// for concurrent use.
type SMTPServer struct {
	opts      SMTPOptions
	srv       *smtp.Server
	ln        net.Listener
	served    chan struct{}
	conns     atomic.Int64
	tlsHellos atomic.Int64
	live      liveConns

	mu       sync.Mutex
	messages []Message
	arrived  chan struct{} // closed and replaced when a message is recorded
}

// StartSMTP starts an SMTP sink. Call Close when done.
func StartSMTP(opts SMTPOptions) (*SMTPServer, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("testenv: smtp sink: %w", err)
	}
	s := &SMTPServer{opts: opts, ln: ln, served: make(chan struct{}), arrived: make(chan struct{})}

	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = opts.Hostname
	if srv.Domain == "" {
		srv.Domain = "localhost"
	}
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.Debug = opts.Trace
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.EnableREQUIRETLS = opts.REQUIRETLS
	srv.EnableDSN = opts.DSN
	srv.EnableSMTPUTF8 = opts.SMTPUTF8
	srv.EnableBINARYMIME = opts.BINARYMIME
	srv.MaxMessageBytes = opts.MaxMessageBytes
	srv.MaxRecipients = opts.MaxRecipients
	if opts.Certificate != nil {
		srv.TLSConfig = s.tlsConfig()
	}
	s.srv = srv

	go func() {
		defer close(s.served)
		_ = srv.Serve(&sinkListener{Listener: ln, s: s})
	}()
	return s, nil
}

func (s *SMTPServer) tlsConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{*s.opts.Certificate},
		MinVersion:   s.opts.MinTLSVersion,
		MaxVersion:   s.opts.MaxTLSVersion,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			s.tlsHellos.Add(1)
			if s.opts.DropAt == StageSTARTTLS {
				hello.Conn.Close()
				return nil, errors.New("testenv: dropped at STARTTLS")
			}
			return nil, nil
		},
	}
}

// Addr returns the address the sink listens on, e.g. "127.0.0.3:40123".
func (s *SMTPServer) Addr() string { return s.ln.Addr().String() }

// Close stops the sink and closes every open connection. It may be called
// more than once.
func (s *SMTPServer) Close() {
	_ = s.srv.Close()
	// go-smtp closes only listeners Serve has registered; one not yet
	// registered would keep Serve accepting forever.
	s.ln.Close()
	<-s.served
	s.live.closeAll()
}

// Messages returns a copy of the messages accepted so far, in order of
// arrival.
func (s *SMTPServer) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// WaitMessages waits until at least n messages were accepted and returns
// them all, or returns ctx's error with the messages accepted so far.
func (s *SMTPServer) WaitMessages(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		msgs, arrived := append([]Message(nil), s.messages...), s.arrived
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-arrived:
		case <-ctx.Done():
			return msgs, fmt.Errorf("testenv: waiting for %d messages, have %d: %w", n, len(msgs), ctx.Err())
		}
	}
}

// Connections returns how many TCP connections the sink accepted,
// including those it refused at the greeting or dropped.
func (s *SMTPServer) Connections() int { return int(s.conns.Load()) }

// TLSHandshakes returns how many TLS handshakes clients began (ClientHellos
// received after STARTTLS), whether or not they completed. Completed ones
// show in Message.TLS.
func (s *SMTPServer) TLSHandshakes() int { return int(s.tlsHellos.Load()) }

func (s *SMTPServer) record(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

// sinkListener numbers connections, tracks them for Close and handles the
// cases go-smtp cannot: no greeting at all, or a greeting other than 220.
type sinkListener struct {
	net.Listener
	s *SMTPServer
}

func (l *sinkListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		s := l.s
		id := int(s.conns.Add(1))
		sc := &sinkConn{Conn: c, id: id, live: &s.live}
		if !s.live.add(sc) {
			continue
		}
		switch {
		case s.opts.DropAt == StageConnect:
			sc.Close()
		case s.opts.GreetingReply != nil:
			go s.refuse(sc)
		default:
			return sc, nil
		}
	}
}

// refuse sends the configured greeting failure. After a 421 the server
// closes at once; after another code it must wait for QUIT (RFC 5321
// §3.1), answering everything else with 503.
func (s *SMTPServer) refuse(c net.Conn) {
	defer c.Close()
	r := s.opts.GreetingReply
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, formatReply(r)); err != nil || r.Code == 421 {
		return
	}
	br := bufio.NewReaderSize(c, 1024)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		if strings.EqualFold(strings.TrimSpace(string(line)), "QUIT") {
			io.WriteString(c, "221 2.0.0 Bye\r\n")
			return
		}
		if _, err := io.WriteString(c, "503 5.5.1 No service, only QUIT\r\n"); err != nil {
			return
		}
	}
}

// formatReply writes an SMTP reply line the way go-smtp does: with the
// enhanced code when one is set.
func formatReply(e *smtp.SMTPError) string {
	if e.EnhancedCode == smtp.EnhancedCodeNotSet || e.EnhancedCode == smtp.NoEnhancedCode {
		return fmt.Sprintf("%d %s\r\n", e.Code, e.Message)
	}
	c := e.EnhancedCode
	return fmt.Sprintf("%d %d.%d.%d %s\r\n", e.Code, c[0], c[1], c[2], e.Message)
}

// sinkConn is one accepted connection with its sequence number.
type sinkConn struct {
	net.Conn
	id   int
	live *liveConns
}

func (c *sinkConn) Close() error {
	err := c.Conn.Close()
	c.live.remove(c)
	return err
}

// liveConns is the set of open connections of a server, so that Close can
// end them all, including one go-smtp accepted but has not yet registered
// (its own Close would miss it and the handler would wait for its read
// timeout). Once closeAll ran, connections added are closed at once.
type liveConns struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// add tracks c; it reports false, having closed c, when closeAll already ran.
func (l *liveConns) add(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return false
	}
	if l.conns == nil {
		l.conns = make(map[net.Conn]struct{})
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *liveConns) remove(c net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
}

// closeAll closes every open connection and any added later.
func (l *liveConns) closeAll() {
	l.mu.Lock()
	l.closed = true
	conns := make([]net.Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// connID finds the sequence number of the connection under a go-smtp
// connection, which is a *tls.Conn after STARTTLS.
func connID(c net.Conn) int {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if sc, ok := c.(*sinkConn); ok {
		return sc.id
	}
	return 0
}

func (s *SMTPServer) newSession(c *smtp.Conn) (smtp.Session, error) {
	sess := &sinkSession{s: s, conn: c.Conn(), id: connID(c.Conn()), helo: c.Hostname()}
	if st, ok := c.TLSConnectionState(); ok {
		sess.tls = &st
	}
	if (s.opts.DropAt == StageEHLO && sess.tls == nil) || (s.opts.DropAt == StageTLSEHLO && sess.tls != nil) {
		sess.conn.Close()
		return nil, errDropped
	}
	return sess, nil
}

var errDropped = errors.New("testenv: connection dropped")

// sinkSession is one go-smtp session: from EHLO to the end of the
// connection or to STARTTLS, which starts a new one.
type sinkSession struct {
	s    *SMTPServer
	conn net.Conn
	id   int
	helo string
	tls  *tls.ConnectionState

	from     string
	mailOpts smtp.MailOptions
	rcpts    []Recipient
}

// replyError turns an optional reply into the error go-smtp expects; a nil
// *SMTPError must become a nil error, not a non-nil interface.
func replyError(e *smtp.SMTPError) error {
	if e == nil {
		return nil
	}
	return e
}

func (ss *sinkSession) Mail(from string, opts *smtp.MailOptions) error {
	if ss.s.opts.DropAt == StageMAIL {
		ss.conn.Close()
		return errDropped
	}
	if f := ss.s.opts.MailReply; f != nil {
		if err := replyError(f(from, opts)); err != nil {
			return err
		}
	}
	ss.from, ss.rcpts = from, nil
	if opts != nil {
		ss.mailOpts = *opts
	}
	return nil
}

func (ss *sinkSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	if ss.s.opts.DropAt == StageRCPT {
		ss.conn.Close()
		return errDropped
	}
	if f := ss.s.opts.RcptReply; f != nil {
		if err := replyError(f(to, opts)); err != nil {
			return err
		}
	}
	r := Recipient{Addr: to}
	if opts != nil {
		r.Options = *opts
	}
	ss.rcpts = append(ss.rcpts, r)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	limit := ss.s.opts.MaxMessageBytes
	if limit <= 0 {
		limit = defaultMaxMessageBytes
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return err
	}
	if int64(len(data)) > limit {
		return smtp.ErrDataTooLarge
	}
	if ss.s.opts.DropAt == StageDATA {
		ss.conn.Close()
		return errDropped
	}
	m := Message{
		Conn:        ss.id,
		Helo:        ss.helo,
		From:        ss.from,
		MailOptions: ss.mailOpts,
		Rcpts:       append([]Recipient(nil), ss.rcpts...),
		Data:        data,
		TLS:         ss.tls,
	}
	if f := ss.s.opts.DataReply; f != nil {
		if err := replyError(f(&m)); err != nil {
			return err
		}
	}
	ss.s.record(m)
	return nil
}

func (ss *sinkSession) Reset() {
	ss.from, ss.mailOpts, ss.rcpts = "", smtp.MailOptions{}, nil
}

func (ss *sinkSession) Logout() error { return nil }
