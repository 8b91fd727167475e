package smtpclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// writeBufferSize is the size of the buffer commands and message data are
// collected in before a write: one TLS record's worth, so that an
// envelope, or the whole of a typical message, is one write.
const writeBufferSize = 16 << 10

// quitCourtesy bounds the wait for the reply to the QUIT sent after a
// refusing greeting.
const quitCourtesy = 10 * time.Second

// Timeouts bounds the wait at each step of a session. Each is a deadline on
// the connection for that step; a context deadline that comes sooner wins.
// The zero value of each field takes the value RFC 5321 §4.5.3.2 gives.
type Timeouts struct {
	// Greeting bounds the wait for the 220 greeting. Zero means 5 minutes
	// (§4.5.3.2.1).
	Greeting time.Duration
	// Mail bounds the reply to MAIL. Zero means 5 minutes (§4.5.3.2.2).
	Mail time.Duration
	// Rcpt bounds the reply to each RCPT. Zero means 5 minutes
	// (§4.5.3.2.3).
	Rcpt time.Duration
	// DataInit bounds the 354 reply to DATA. Zero means 2 minutes
	// (§4.5.3.2.4).
	DataInit time.Duration
	// DataBlock bounds each write of message content. Zero means 3
	// minutes (§4.5.3.2.5).
	DataBlock time.Duration
	// DataTerm bounds the reply to the final "." (the server may be
	// scanning the message). Zero means 10 minutes (§4.5.3.2.6).
	DataTerm time.Duration
	// Command bounds the other commands: EHLO, HELO, STARTTLS, AUTH,
	// RSET, NOOP, QUIT. RFC 5321 names no value; zero means 5 minutes, as
	// for MAIL.
	Command time.Duration
	// TLSHandshake bounds the TLS handshake after STARTTLS. Zero means 1
	// minute.
	TLSHandshake time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Greeting, 5*time.Minute)
	def(&t.Mail, 5*time.Minute)
	def(&t.Rcpt, 5*time.Minute)
	def(&t.DataInit, 2*time.Minute)
	def(&t.DataBlock, 3*time.Minute)
	def(&t.DataTerm, 10*time.Minute)
	def(&t.Command, 5*time.Minute)
	def(&t.TLSHandshake, time.Minute)
	return t
}

// Direction says who sent a traced line.
type Direction int

const (
	// Sent is a line the client sent.
	Sent Direction = iota + 1
	// Received is a line the server sent.
	Received
)

func (d Direction) String() string {
	switch d {
	case Sent:
		return "C"
	case Received:
		return "S"
	}
	return "Direction(" + strconv.Itoa(int(d)) + ")"
}

// Options configures a Conn. The zero value is ready to use.
type Options struct {
	// Timeouts bounds each step; zero fields take RFC 5321's values.
	Timeouts Timeouts
	// Trace, when set, is called with every command and reply line,
	// without the CRLF, in the order they are written and read. AUTH
	// payloads are replaced by "*"s; message content is not traced line
	// by line, only as one "[message content: N octets]" line. Nil means
	// no trace.
	Trace func(dir Direction, line string)
	// AllowInsecureAuth lets Auth send credentials over a connection
	// without TLS. False means Auth refuses to.
	AllowInsecureAuth bool
}

// Conn is an SMTP client session on one connection. It is used by one
// goroutine at a time; Close may be called from any goroutine, and ends a
// blocked call.
//
// Any error that matches ErrConnLost leaves the Conn closed; every later
// call returns that error again without touching the network (see Err).
type Conn struct {
	raw  net.Conn // the TCP connection; closing it ends everything
	conn net.Conn // raw, or the *tls.Conn on top of it after StartTLS
	br   *bufio.Reader
	bw   *bufio.Writer
	opts Options
	to   Timeouts

	greeting   string
	serverName string
	ext        map[string]string // EHLO keywords (upper case) and parameters; nil before Hello
	tlsState   *tls.ConnectionState
	inTx       bool // MAIL was accepted and the transaction not ended

	err    error       // sticky: set when the connection became unusable
	closed atomic.Bool // Close was called

	// The call in progress: its context, the context's deadline, the
	// stop function of the watcher that closes raw on cancellation, and
	// the write timeout in force.
	ctx         context.Context
	ctxDeadline time.Time
	stopWatch   func() bool
	wTimeout    time.Duration
}

// New reads the server's greeting on an established connection (RFC 5321
// §3.1). A greeting other than 220 is an error: a *Reply for 4xx and 5xx
// (QUIT is sent first, as §3.1 asks after a 554, except after a 421), a
// *ConnError otherwise. On error the connection is closed.
func New(ctx context.Context, conn net.Conn, opts Options) (*Conn, error) {
	c := &Conn{raw: conn, conn: conn, opts: opts, to: opts.Timeouts.withDefaults()}
	c.br = bufio.NewReaderSize(conn, maxReplyLine)
	c.bw = bufio.NewWriterSize(deadlineWriter{c}, writeBufferSize)
	if err := c.begin(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	defer c.end()
	r, err := c.reply("greeting", c.to.Greeting)
	switch {
	case err != nil:
		return nil, err
	case r.Code == 220:
		c.greeting = r.Text
		return c, nil
	}
	if r.Code != 421 {
		// RFC 5321 §3.1: after a 554 greeting the client sends QUIT; a
		// courtesy, so a server that refused service does not get to
		// hold the client for long.
		wait := min(c.to.Command, quitCourtesy)
		c.writeLine("QUIT", "")
		if c.flush("QUIT", wait) == nil {
			_, _ = c.reply("QUIT", wait)
		}
	}
	c.fail(r)
	return nil, r
}

// Greeting returns the text of the server's 220 greeting; its first word is
// the name the server gives itself.
func (c *Conn) Greeting() string { return c.greeting }

// ServerName returns the first word of the server's reply to EHLO or HELO:
// the name it gives itself (RFC 5321 §4.1.1.1), which TLS-RPT reports as
// receiving-mx-helo. It is "" before Hello, and again after StartTLS until
// the next Hello.
func (c *Conn) ServerName() string { return c.serverName }

// Extension reports whether the server advertised the EHLO keyword name
// (case-insensitive), and its parameters. It reports false before Hello,
// after StartTLS until the next Hello, and after a HELO fallback.
func (c *Conn) Extension(name string) (ok bool, param string) {
	param, ok = c.ext[strings.ToUpper(name)]
	return ok, param
}

// MaxSize returns the message size limit of RFC 1870 SIZE: ok reports
// whether SIZE was advertised, and max is 0 when it was advertised without
// a usable limit ("SIZE", "SIZE 0", or an unparsable value).
func (c *Conn) MaxSize() (max int64, ok bool) {
	p, ok := c.ext["SIZE"]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(p, 10, 64)
	if err != nil || n < 0 {
		return 0, true
	}
	return n, true
}

// TLSState returns the state of the TLS connection after a successful
// StartTLS.
func (c *Conn) TLSState() (tls.ConnectionState, bool) {
	if c.tlsState == nil {
		return tls.ConnectionState{}, false
	}
	return *c.tlsState, true
}

// Err returns nil while the connection can carry another command, or the
// error that ended it. A pool calls it before reusing a Conn.
func (c *Conn) Err() error {
	if c.err == nil && c.closed.Load() {
		return &ConnError{Op: "close", Err: net.ErrClosed}
	}
	return c.err
}

// Hello introduces the client as name (a domain, or an address literal
// such as "[192.0.2.1]"), by EHLO, and by HELO only when the server refuses
// EHLO as unrecognised or unimplemented (500, 502; RFC 5321 §4.1.4,
// §3.2). On success the server's extensions and name are known.
func (c *Conn) Hello(ctx context.Context, name string) error {
	if err := checkHelloName(name); err != nil {
		return err
	}
	if err := c.begin(ctx); err != nil {
		return err
	}
	defer c.end()
	r, err := c.cmd("EHLO", c.to.Command, "EHLO "+name)
	if err != nil {
		return err
	}
	if r.Code == 500 || r.Code == 502 {
		if r, err = c.cmd("HELO", c.to.Command, "HELO "+name); err != nil {
			return err
		}
		if r.Code != 250 {
			return c.refused("HELO", r)
		}
		c.learn(r, false)
		return nil
	}
	if r.Code != 250 {
		return c.refused("EHLO", r)
	}
	c.learn(r, true)
	return nil
}

// learn records the server's name and, for EHLO, its extensions (RFC 5321
// §4.1.1.1: the first line carries the domain, each further line an
// ehlo-keyword and its parameters).
func (c *Conn) learn(r *Reply, ehlo bool) {
	c.serverName, _, _ = strings.Cut(r.lines[0], " ")
	c.ext = make(map[string]string, len(r.lines))
	if !ehlo {
		return
	}
	for _, l := range r.lines[1:] {
		kw, param, _ := strings.Cut(strings.TrimSpace(l), " ")
		if kw != "" {
			c.ext[strings.ToUpper(kw)] = strings.TrimSpace(param)
		}
	}
}

// StartTLS sends STARTTLS and runs the TLS handshake with cfg (which
// carries ServerName, RootCAs and any VerifyConnection the caller's policy
// needs). RFC 3207 §4.2: afterwards everything learnt from the server
// before the handshake is forgotten, so the caller says Hello again.
//
// A refusal (454, 502 ...) is a *Reply and the connection stays usable in
// plaintext. A failed handshake is a *TLSError and the connection is
// closed. A server that sends anything after its 220 before the handshake
// (RFC 3207 §5: a man in the middle injecting replies to be read as if they
// came under TLS) gets a *ConnError holding a *ProtocolError.
func (c *Conn) StartTLS(ctx context.Context, cfg *tls.Config) error {
	if err := c.usable(); err != nil {
		return err
	}
	switch {
	case c.tlsState != nil:
		return fmt.Errorf("%w: STARTTLS on a connection already under TLS", ErrBadSequence)
	case c.ext == nil:
		return fmt.Errorf("%w: STARTTLS before EHLO", ErrBadSequence)
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		return &CapabilityError{Extension: "STARTTLS", Reason: "STARTTLS was not advertised in the EHLO reply"}
	}
	if err := c.begin(ctx); err != nil {
		return err
	}
	defer c.end()
	r, err := c.cmd("STARTTLS", c.to.Command, "STARTTLS")
	if err != nil {
		return err
	}
	if r.Code != 220 {
		return c.refused("STARTTLS", r)
	}
	// RFC 3207 §5: nothing the server sent before the handshake may be
	// taken as sent under TLS; reply has made sure that nothing followed
	// the 220.
	if cfg == nil {
		cfg = &tls.Config{}
	}
	tc := tls.Client(c.conn, cfg)
	_ = c.conn.SetDeadline(c.deadline(c.to.TLSHandshake))
	if err := tc.HandshakeContext(ctx); err != nil {
		if ctx.Err() != nil || c.closed.Load() {
			return c.ioFail("STARTTLS", err)
		}
		return c.fail(&TLSError{Err: err})
	}
	st := tc.ConnectionState()
	c.conn, c.tlsState = tc, &st
	c.br.Reset(tc)
	c.bw.Reset(deadlineWriter{c})
	// RFC 3207 §4.2: discard the extensions (and the name) learnt in
	// plaintext.
	c.ext, c.serverName = nil, ""
	return nil
}

// Reset sends RSET (RFC 5321 §4.1.1.5), ending any transaction. A pool
// need not call it between messages: Send itself ends a transaction left
// open (pipelining the RSET with the next envelope when it can), and MAIL
// directly after a completed transaction is legal.
func (c *Conn) Reset(ctx context.Context) error {
	if err := c.begin(ctx); err != nil {
		return err
	}
	defer c.end()
	return c.rset()
}

func (c *Conn) rset() error {
	r, err := c.cmd("RSET", c.to.Command, "RSET")
	if err != nil {
		return err
	}
	if r.Code != 250 {
		return c.refused("RSET", r)
	}
	c.inTx = false
	return nil
}

// Noop sends NOOP (RFC 5321 §4.1.1.9): a cheap check that an idle pooled
// connection is still alive.
func (c *Conn) Noop(ctx context.Context) error {
	if err := c.begin(ctx); err != nil {
		return err
	}
	defer c.end()
	r, err := c.cmd("NOOP", c.to.Command, "NOOP")
	if err != nil {
		return err
	}
	if r.Code != 250 {
		return c.refused("NOOP", r)
	}
	return nil
}

// Quit sends QUIT (RFC 5321 §4.1.1.10), waits for the 221 and closes the
// connection, whatever the server answered.
func (c *Conn) Quit(ctx context.Context) error {
	if err := c.begin(ctx); err != nil {
		return err
	}
	defer c.end()
	r, err := c.cmd("QUIT", c.to.Command, "QUIT")
	c.fail(&ConnError{Op: "QUIT", Err: net.ErrClosed})
	if err != nil {
		return err
	}
	if r.Code != 221 {
		return r
	}
	return nil
}

// Close closes the connection without QUIT. It may be called from any
// goroutine, more than once, and unblocks a call in progress.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	return c.raw.Close()
}

// usable returns the error that ended the connection, if any.
func (c *Conn) usable() error {
	if c.err != nil {
		return c.err
	}
	if c.closed.Load() {
		c.err = &ConnError{Op: "close", Err: net.ErrClosed}
		return c.err
	}
	return nil
}

// begin starts a call that talks to the server: it refuses when the
// connection is gone or ctx is already done (then nothing was sent), and
// arranges for ctx's cancellation to close the connection, which unblocks
// any read or write. end undoes it.
func (c *Conn) begin(ctx context.Context) error {
	if err := c.usable(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.ctx = ctx
	c.ctxDeadline, _ = ctx.Deadline()
	if ctx.Done() != nil {
		raw := c.raw
		c.stopWatch = context.AfterFunc(ctx, func() { raw.Close() })
	}
	return nil
}

// end finishes a call begun by begin. When the context fired during the
// call, the connection was closed under it and is marked as such even if
// the call itself completed.
func (c *Conn) end() {
	if c.stopWatch != nil && !c.stopWatch() && c.err == nil {
		c.fail(&ConnError{Op: "cancel", Err: context.Cause(c.ctx)})
	}
	c.ctx, c.ctxDeadline, c.stopWatch = nil, time.Time{}, nil
}

// deadline returns the deadline for a step that may take d, capped by the
// context's deadline.
func (c *Conn) deadline(d time.Duration) time.Time {
	t := time.Now().Add(d)
	if !c.ctxDeadline.IsZero() && c.ctxDeadline.Before(t) {
		return c.ctxDeadline
	}
	return t
}

// fail marks the connection unusable with err, closes it, and returns err.
func (c *Conn) fail(err error) error {
	if c.err == nil {
		c.err = err
	}
	c.closed.Store(true)
	_ = c.raw.Close()
	return err
}

// ioFail turns a read or write failure during op into a *ConnError, with
// the context's error as the cause when the context ended the call.
func (c *Conn) ioFail(op string, err error) error {
	if c.ctx != nil && c.ctx.Err() != nil {
		err = context.Cause(c.ctx)
	}
	var pe *ProtocolError
	if errors.As(err, &pe) && pe.Op == "" {
		pe.Op = op
	}
	return c.fail(&ConnError{Op: op, Err: err})
}

// protocolFail ends the connection over a reply that makes no sense at
// this step.
func (c *Conn) protocolFail(op, reason string, r *Reply) error {
	got := strconv.Itoa(r.Code)
	if r.Text != "" {
		got += " " + r.Text
	}
	return c.fail(&ConnError{Op: op, Err: &ProtocolError{Op: op, Reason: reason, Got: truncate(got)}})
}

// refused returns a negative reply as the error, and ends the connection
// over a positive reply that is not the expected one.
func (c *Conn) refused(op string, r *Reply) error {
	if r.Code >= 400 {
		return r
	}
	return c.protocolFail(op, "unexpected reply code", r)
}

// trace hands a line to the trace hook.
func (c *Conn) trace(dir Direction, line string) {
	if c.opts.Trace != nil {
		c.opts.Trace(dir, line)
	}
}

// writeLine buffers a command line; traced, when set, is what the trace
// shows instead of line.
func (c *Conn) writeLine(line, traced string) {
	c.bw.WriteString(line)
	c.bw.WriteString("\r\n")
	if traced == "" {
		traced = line
	}
	c.trace(Sent, traced)
}

// flush writes what is buffered, each write bounded by timeout.
func (c *Conn) flush(op string, timeout time.Duration) error {
	c.wTimeout = timeout
	if err := c.bw.Flush(); err != nil {
		return c.ioFail(op, err)
	}
	return nil
}

// reply reads the reply to op, the last command the client sent, within
// timeout. A 421 ends the connection and is returned as the error too (RFC
// 5321 §3.8). A positive reply op does not allow (allowedReply), and any
// octet that arrived after the reply, are protocol errors that end the
// connection: the reply is then not returned.
func (c *Conn) reply(op string, timeout time.Duration) (*Reply, error) {
	r, err := c.groupReply(op, timeout)
	if err != nil {
		return r, err
	}
	if err := c.nothingPending(op); err != nil {
		return nil, err
	}
	return r, nil
}

// groupReply is reply for a command of a pipelined group that is not the
// last one: the replies to the commands after it may follow.
func (c *Conn) groupReply(op string, timeout time.Duration) (*Reply, error) {
	_ = c.conn.SetReadDeadline(c.deadline(timeout))
	var trace func(string)
	if c.opts.Trace != nil {
		trace = func(l string) { c.opts.Trace(Received, l) }
	}
	r, err := readReply(c.br, trace)
	if err != nil {
		return nil, c.ioFail(op, err)
	}
	if r.Code == 421 {
		return r, c.fail(r)
	}
	if ok, rule := allowedReply(op, r.Code); !ok {
		return nil, c.protocolFail(op, rule, r)
	}
	return r, nil
}

// nothingPending ends the connection when octets are waiting after the
// reply to the last command sent. RFC 5321 §4.2 and RFC 2920 §3.1 give
// each command exactly one reply, in order; more means a duplicated reply,
// one sent before its command, or one injected by a man in the middle
// (RFC 3207 §5 after STARTTLS), any of which would be read as the answer
// to the next command: an unsolicited 250 read as the reply to DATA or to
// the end of data would mark mail delivered that never went. Only what has
// already arrived can be seen; a stray reply that comes later is read as
// the next command's and must then pass allowedReply.
func (c *Conn) nothingPending(op string) error {
	n := c.br.Buffered()
	if n == 0 {
		return nil
	}
	peek, _ := c.br.Peek(n)
	return c.fail(&ConnError{Op: op, Err: &ProtocolError{
		Op:     op,
		Reason: fmt.Sprintf("%d octets arrived after the reply to %s, before the client sent anything more: a reply to no command (duplicated, early or injected)", n, op),
		Got:    truncate(string(peek)),
	}})
}

// cmd sends one command line and reads its reply.
func (c *Conn) cmd(op string, timeout time.Duration, line string) (*Reply, error) {
	c.writeLine(line, "")
	if err := c.flush(op, timeout); err != nil {
		return nil, err
	}
	return c.reply(op, timeout)
}

// deadlineWriter sets a write deadline before each write to the connection,
// so that RFC 5321 §4.5.3.2.5's per-send limit holds for message content.
type deadlineWriter struct{ c *Conn }

func (w deadlineWriter) Write(p []byte) (int, error) {
	_ = w.c.conn.SetWriteDeadline(w.c.deadline(w.c.wTimeout))
	return w.c.conn.Write(p)
}
