package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The points of a dialogue a ScriptedServer answers, besides the command
// verbs themselves ("EHLO", "MAIL", "RCPT", "DATA", "QUIT", ...): they
// name ScriptEvent.Command.
const (
	// ScriptGreeting is the connection's opening, before any command.
	ScriptGreeting = "greeting"
	// ScriptEndOfData is the end of message content, after the final ".".
	ScriptEndOfData = "end of data"
)

// Limits that keep a runaway client from bloating a scripted server.
const (
	maxScriptLine    = 64 << 10 // octets in one command line
	maxScriptContent = 32 << 20 // octets of one message's content
	scriptTimeout    = 30 * time.Second
)

// ScriptOptions configures a ScriptedServer. The zero value is a plain
// ESMTP server without STARTTLS that accepts everything.
type ScriptOptions struct {
	// Addr is the address to listen on. Empty means "127.0.0.1:0".
	Addr string
	// Hostname is the name in the greeting and the EHLO reply. Empty
	// means "scripted.invalid".
	Hostname string
	// Extensions are the EHLO keywords advertised after the name line.
	// Nil means PIPELINING, 8BITMIME and ENHANCEDSTATUSCODES, and STARTTLS
	// before TLS when Certificate is set. A test that wants STARTTLS
	// offered and then refused lists "STARTTLS" without a Certificate.
	Extensions []string
	// Certificate is what the server presents after a 220 to STARTTLS.
	// Nil means the normal reply to STARTTLS is 454.
	Certificate *tls.Certificate
	// Script chooses the server's answer at each event; a nil Script, or
	// a nil *ScriptStep from it, gives the normal reply (ScriptEvent.Normal).
	// It is called from the connection's goroutine, one event at a time
	// per connection; connections run concurrently.
	Script func(ScriptEvent) *ScriptStep
}

// ScriptEvent is a point of a dialogue at which the server answers.
type ScriptEvent struct {
	// Conn is the sequence number of the connection, from 1.
	Conn int
	// Command is ScriptGreeting, ScriptEndOfData, or the command's verb
	// in upper case ("EHLO", "MAIL", "RCPT", "DATA", "STARTTLS", ...).
	Command string
	// Line is the command line as received, without its line end; empty
	// for the greeting and the end of data.
	Line string
	// N counts the events of this Command on this connection, from 1:
	// the second RCPT of a connection has N 2.
	N int
	// TLS says the connection is under TLS.
	TLS bool
	// Normal is the reply a well-behaved server would give, with its
	// CRLFs: a script that duplicates a reply sends Normal twice.
	Normal string
}

// ScriptStep is what the server does at one event instead of giving the
// normal reply.
type ScriptStep struct {
	// Reply is written as it is, in one write: any octets, so a test can
	// send a wrong code, two replies, a reply to a command not yet sent,
	// a broken multi-line reply, a bare LF or a line of any length. Empty
	// writes nothing. The server reads message content after DATA when,
	// and only when, what it wrote begins with "354"; and it runs a TLS
	// handshake after STARTTLS when what it wrote begins with "220" and it
	// has a Certificate (without one it then closes the connection).
	Reply string
	// Close closes the connection after Reply was written.
	Close bool
}

// ScriptedMessage is message content a ScriptedServer received, whatever
// it replied to it.
type ScriptedMessage struct {
	// Conn is the sequence number of the connection that carried it.
	Conn int
	// Mail and Rcpts are the MAIL and RCPT command lines of the
	// transaction, as received.
	Mail  string
	Rcpts []string
	// Raw is the content as it came over the wire, dot-stuffed, without
	// the final ".\r\n": what a smuggling test inspects.
	Raw []byte
	// Data is Raw with the dot-stuffing undone (RFC 5321 §4.5.2).
	Data []byte
}

// ScriptedServer is a hostile SMTP server for the tests of the SMTP
// client and everything built on it. It speaks the protocol well enough to
// carry a client to the point a test wants to break, and there answers
// exactly what the test's Script says: wrong reply codes, duplicated
// replies, replies before their command, broken multi-line replies, over
// long lines, 421 or a dropped connection at any step, STARTTLS offered
// and refused. It never checks what the client sends; it records it. Its
// message content ends only at CRLF "." CRLF (RFC 5321 §4.1.1.4), so a
// client's stray line ends show up in ScriptedMessage.Raw. Its methods are
// safe for concurrent use.
type ScriptedServer struct {
	opts  ScriptOptions
	ln    net.Listener
	live  liveConns
	wg    sync.WaitGroup
	conns atomic.Int64

	mu       sync.Mutex
	events   []ScriptEvent
	messages []ScriptedMessage
}

// StartScripted starts a scripted server on loopback. Call Close when
// done.
func StartScripted(opts ScriptOptions) (*ScriptedServer, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if opts.Hostname == "" {
		opts.Hostname = "scripted.invalid"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("testenv: scripted smtp: %w", err)
	}
	s := &ScriptedServer{opts: opts, ln: ln}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr returns the address the server listens on.
func (s *ScriptedServer) Addr() string { return s.ln.Addr().String() }

// Close stops the server, closes every connection and waits for their
// goroutines. It may be called more than once.
func (s *ScriptedServer) Close() {
	s.ln.Close()
	s.live.closeAll()
	s.wg.Wait()
}

// Connections returns how many connections the server accepted.
func (s *ScriptedServer) Connections() int { return int(s.conns.Load()) }

// Events returns every event so far, in order, with Normal as it was.
func (s *ScriptedServer) Events() []ScriptEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ScriptEvent(nil), s.events...)
}

// Messages returns the message contents received so far.
func (s *ScriptedServer) Messages() []ScriptedMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ScriptedMessage(nil), s.messages...)
}

func (s *ScriptedServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		n := int(s.conns.Add(1))
		if !s.live.add(c) {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.live.remove(c)
			defer c.Close()
			sc := &scriptConn{s: s, id: n, raw: c, conn: c, br: bufio.NewReaderSize(c, maxScriptLine), counts: map[string]int{}}
			sc.run()
		}()
	}
}

// scriptConn is one connection of a scripted server.
type scriptConn struct {
	s      *ScriptedServer
	id     int
	raw    net.Conn // the TCP connection
	conn   net.Conn // raw, or the TLS connection over it
	br     *bufio.Reader
	tls    bool
	counts map[string]int
	tx     ScriptedMessage // the transaction in progress
}

// errScriptClosed ends a connection the script closed.
var errScriptClosed = errors.New("testenv: scripted server closed the connection")

func (c *scriptConn) run() {
	_ = c.raw.SetDeadline(time.Now().Add(scriptTimeout))
	if _, err := c.answer(ScriptGreeting, ""); err != nil {
		return
	}
	for {
		line, err := c.readLine()
		if err != nil {
			return
		}
		_ = c.raw.SetDeadline(time.Now().Add(scriptTimeout))
		verb, _, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		switch verb {
		case "MAIL":
			c.tx = ScriptedMessage{Conn: c.id, Mail: line}
		case "RCPT":
			c.tx.Rcpts = append(c.tx.Rcpts, line)
		case "RSET":
			c.tx = ScriptedMessage{Conn: c.id}
		}
		written, err := c.answer(verb, line)
		if err == nil {
			err = c.follow(verb, written)
		}
		if err != nil {
			return
		}
	}
}

// follow does what the reply just written implies: content after a 354,
// TLS after a 220 to STARTTLS, the end after a 221 to QUIT.
func (c *scriptConn) follow(verb, written string) error {
	switch {
	case verb == "DATA" && strings.HasPrefix(written, "354"):
		return c.content()
	case verb == "STARTTLS" && strings.HasPrefix(written, "220"):
		return c.startTLS()
	case verb == "QUIT" && strings.HasPrefix(written, "221"):
		return io.EOF
	}
	return nil
}

// answer asks the script for the reply at an event and writes it.
func (c *scriptConn) answer(command, line string) (string, error) {
	c.counts[command]++
	ev := ScriptEvent{Conn: c.id, Command: command, Line: line, N: c.counts[command], TLS: c.tls, Normal: c.normal(command)}
	c.s.mu.Lock()
	c.s.events = append(c.s.events, ev)
	c.s.mu.Unlock()
	step := &ScriptStep{Reply: ev.Normal}
	if c.s.opts.Script != nil {
		if st := c.s.opts.Script(ev); st != nil {
			step = st
		}
	}
	if step.Reply != "" {
		if _, err := io.WriteString(c.conn, step.Reply); err != nil {
			return "", err
		}
	}
	if step.Close {
		return "", errScriptClosed
	}
	return step.Reply, nil
}

// normal is a well-behaved server's reply at an event.
func (c *scriptConn) normal(command string) string {
	host := c.s.opts.Hostname
	switch command {
	case ScriptGreeting:
		return "220 " + host + " ESMTP scripted\r\n"
	case "EHLO":
		return c.ehloReply()
	case "HELO":
		return "250 " + host + "\r\n"
	case "MAIL":
		return "250 2.1.0 Ok\r\n"
	case "RCPT":
		return "250 2.1.5 Ok\r\n"
	case "DATA":
		return "354 End data with <CR><LF>.<CR><LF>\r\n"
	case ScriptEndOfData:
		return fmt.Sprintf("250 2.0.0 Ok: queued as S%d\r\n", c.id)
	case "RSET", "NOOP":
		return "250 2.0.0 Ok\r\n"
	case "QUIT":
		return "221 2.0.0 Bye\r\n"
	case "STARTTLS":
		if c.s.opts.Certificate != nil && !c.tls {
			return "220 2.0.0 Ready to start TLS\r\n"
		}
		return "454 4.7.0 TLS not available\r\n"
	}
	return "502 5.5.2 Command not implemented\r\n"
}

func (c *scriptConn) ehloReply() string {
	ext := c.s.opts.Extensions
	if ext == nil {
		ext = []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"}
		if c.s.opts.Certificate != nil && !c.tls {
			ext = append(ext, "STARTTLS")
		}
	}
	lines := append([]string{c.s.opts.Hostname}, ext...)
	var b strings.Builder
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		b.WriteString("250" + sep + l + "\r\n")
	}
	return b.String()
}

// readLine reads one command line, without its line end.
func (c *scriptConn) readLine() (string, error) {
	b, err := c.br.ReadSlice('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// content reads message content up to CRLF "." CRLF, strictly: a "." line
// after a bare LF or CR does not end it (RFC 5321 §4.1.1.4). It records
// the message, and answers the end of data.
func (c *scriptConn) content() error {
	var raw []byte
	afterCRLF := true // the DATA line's CRLF counts
	for {
		line, err := c.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Part of a line longer than the buffer.
			raw, afterCRLF = append(raw, line...), false
		} else if err != nil {
			return err
		} else if afterCRLF && string(line) == ".\r\n" {
			break
		} else {
			raw = append(raw, line...)
			afterCRLF = bytes.HasSuffix(raw, []byte("\r\n"))
		}
		if len(raw) > maxScriptContent {
			return fmt.Errorf("testenv: scripted server: message over %d octets", maxScriptContent)
		}
	}
	m := c.tx
	m.Conn, m.Raw, m.Data = c.id, raw, unstuff(raw)
	c.s.mu.Lock()
	c.s.messages = append(c.s.messages, m)
	c.s.mu.Unlock()
	c.tx = ScriptedMessage{Conn: c.id}
	_, err := c.answer(ScriptEndOfData, "")
	return err
}

// unstuff undoes RFC 5321 §4.5.2 transparency: a line that begins with
// "." after a CRLF loses that dot.
func unstuff(raw []byte) []byte {
	var out []byte
	for len(raw) > 0 {
		if raw[0] == '.' {
			raw = raw[1:]
		}
		i := bytes.Index(raw, []byte("\r\n"))
		if i < 0 {
			return append(out, raw...)
		}
		out, raw = append(out, raw[:i+2]...), raw[i+2:]
	}
	return out
}

// startTLS runs the server side of the handshake after a 220 to STARTTLS.
func (c *scriptConn) startTLS() error {
	if c.s.opts.Certificate == nil || c.tls {
		return errScriptClosed
	}
	tc := tls.Server(c.raw, &tls.Config{Certificates: []tls.Certificate{*c.s.opts.Certificate}})
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	c.conn, c.tls = tc, true
	c.br = bufio.NewReaderSize(tc, maxScriptLine)
	return nil
}
