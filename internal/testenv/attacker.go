package testenv

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// AttackMode is what an on-path attacker does to STARTTLS.
type AttackMode int

const (
	// StripSTARTTLS removes STARTTLS from the server's EHLO reply and
	// answers a STARTTLS command itself with 454, so a client either gives
	// up or talks plaintext to the real server (RFC 3207 §6, the downgrade
	// MTA-STS and DANE exist to stop).
	StripSTARTTLS AttackMode = iota + 1
	// InterceptTLS advertises STARTTLS, answers it itself with the
	// attacker's certificate, and relays the decrypted dialogue in
	// plaintext to the real server.
	InterceptTLS
)

func (m AttackMode) String() string {
	switch m {
	case StripSTARTTLS:
		return "strip-starttls"
	case InterceptTLS:
		return "intercept-tls"
	}
	return fmt.Sprintf("AttackMode(%d)", int(m))
}

// AttackerOptions configures an Attacker.
type AttackerOptions struct {
	// Target is the real server's address, such as a sink's Addr(). It
	// must be a loopback address.
	Target string
	// Mode says what to do to STARTTLS; it must be set.
	Mode AttackMode
	// Certificate is what InterceptTLS presents. Nil means a fresh
	// self-signed certificate for "attacker.invalid".
	Certificate *tls.Certificate
	// Addr is the address to listen on. Empty means "127.0.0.1:0".
	Addr string
}

// Limits that keep a misbehaving peer from hanging or bloating the proxy.
const (
	maxAttackLine      = 4096 // bytes in one SMTP line, CRLF included
	maxAttackReplyRows = 100  // lines in one multi-line reply
	attackTimeout      = 10 * time.Second
)

// Attacker is a man-in-the-middle between an SMTP client and a real server:
// route the server's dialed address to the attacker's Addr with a Dialer.
// Until the client starts a mail transaction the attacker relays the
// dialogue command by command, rewriting what its Mode says; from MAIL on
// it copies bytes both ways. Lines it relays keep their octets and line
// ends, and a reply it rewrites stays within the limits it reads with
// (maxAttackLine, maxAttackReplyRows), so a client's limits are never
// broken by the attacker itself. Its methods are safe for concurrent use.
type Attacker struct {
	opts   AttackerOptions
	tls    *tls.Config
	ln     net.Listener
	live   liveConns
	wg     sync.WaitGroup
	conns  atomic.Int64
	shakes atomic.Int64
	mails  atomic.Int64
}

// StartAttacker starts an attacker listening on loopback. Call Close when
// done.
func StartAttacker(opts AttackerOptions) (*Attacker, error) {
	if opts.Mode != StripSTARTTLS && opts.Mode != InterceptTLS {
		return nil, fmt.Errorf("testenv: attacker: mode %v, want StripSTARTTLS or InterceptTLS", opts.Mode)
	}
	if t, err := netip.ParseAddrPort(opts.Target); err != nil || !t.Addr().Unmap().IsLoopback() {
		return nil, fmt.Errorf("testenv: attacker: target %q is not a loopback address", opts.Target)
	}
	a := &Attacker{opts: opts}
	if opts.Mode == InterceptTLS {
		cert := opts.Certificate
		if cert == nil {
			c, err := selfSigned("attacker.invalid")
			if err != nil {
				return nil, err
			}
			cert = &c
		}
		a.tls = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("testenv: attacker: %w", err)
	}
	a.ln = ln
	a.wg.Add(1)
	go a.serve()
	return a, nil
}

func selfSigned(name string) (tls.Certificate, error) {
	ca, err := NewCA(name)
	if err != nil {
		return tls.Certificate{}, err
	}
	return ca.Leaf(LeafOptions{SelfSigned: true}, name)
}

// Addr returns the address the attacker listens on.
func (a *Attacker) Addr() string { return a.ln.Addr().String() }

// Close stops the attacker, closes every connection on both sides and
// waits for its goroutines. It may be called more than once.
func (a *Attacker) Close() {
	a.ln.Close()
	a.live.closeAll()
	a.wg.Wait()
}

// Connections returns how many client connections the attacker accepted.
func (a *Attacker) Connections() int { return int(a.conns.Load()) }

// Handshakes returns how many TLS handshakes with clients the attacker
// completed (InterceptTLS): each is a client that accepted its certificate.
func (a *Attacker) Handshakes() int { return int(a.shakes.Load()) }

// Transactions returns how many MAIL commands clients sent through the
// attacker: a client that must refuse the downgrade never gets this far.
func (a *Attacker) Transactions() int { return int(a.mails.Load()) }

func (a *Attacker) serve() {
	defer a.wg.Done()
	for {
		c, err := a.ln.Accept()
		if err != nil {
			return
		}
		a.conns.Add(1)
		if !a.live.add(c) {
			continue
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			defer a.live.remove(c)
			defer c.Close()
			a.relay(c)
		}()
	}
}

// relay runs one proxied session.
func (a *Attacker) relay(client net.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), attackTimeout)
	defer cancel()
	var nd net.Dialer
	server, err := nd.DialContext(ctx, "tcp", a.opts.Target)
	if err != nil {
		return
	}
	if !a.live.add(server) {
		return
	}
	defer a.live.remove(server)
	defer server.Close()

	s := &attackSession{a: a, rawClient: client, client: client, server: server,
		cr: bufio.NewReaderSize(client, maxAttackLine), sr: bufio.NewReaderSize(server, maxAttackLine)}
	if err := s.negotiate(); err != nil {
		return
	}
	s.copyBoth()
}

// attackSession is the state of one proxied connection.
type attackSession struct {
	a         *Attacker
	rawClient net.Conn // the TCP connection, even after TLS
	client    net.Conn // rawClient, or the TLS connection over it
	server    net.Conn
	cr, sr    *bufio.Reader
	tls       bool
}

// negotiate relays the greeting and every command up to MAIL one at a time
// (each command has exactly one reply, even when pipelined), rewriting
// EHLO replies and handling STARTTLS itself. It returns nil when the
// client sent MAIL and the rest is to be copied as bytes.
func (s *attackSession) negotiate() error {
	greeting, err := readReply(s.sr)
	if err != nil {
		return err
	}
	if err := writeLines(s.client, greeting); err != nil {
		return err
	}
	for {
		line, err := readLine(s.cr)
		if err != nil {
			return err
		}
		verb, _, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		verb = strings.ToUpper(verb)
		switch verb {
		case "STARTTLS":
			if err := s.startTLS(); err != nil {
				return err
			}
			continue
		case "MAIL":
			// The transaction starts: from here on bytes are copied.
			s.a.mails.Add(1)
			_, err := io.WriteString(s.server, line)
			return err
		}
		if _, err := io.WriteString(s.server, line); err != nil {
			return err
		}
		reply, err := readReply(s.sr)
		if err != nil {
			return err
		}
		if verb == "EHLO" && strings.HasPrefix(reply[0], "250") {
			reply = s.rewriteEHLO(reply)
		}
		if err := writeLines(s.client, reply); err != nil {
			return err
		}
		if verb == "QUIT" {
			return io.EOF
		}
	}
}

// rewriteEHLO removes STARTTLS from the capabilities, or in InterceptTLS
// mode before TLS makes sure it is there. Each line keeps its own line
// end, and a reply already at maxAttackReplyRows lines gives its last
// keyword's place to STARTTLS, so that the rewrite never makes a reply
// longer than the attacker would itself accept.
func (s *attackSession) rewriteEHLO(reply []string) []string {
	out := []string{reply[0]} // the first line is the greeting, not a keyword
	for _, l := range reply[1:] {
		if !strings.EqualFold(strings.TrimSpace(replyText(l)), "STARTTLS") {
			out = append(out, l)
		}
	}
	if s.a.opts.Mode == InterceptTLS && !s.tls {
		if len(out) == maxAttackReplyRows {
			out = out[:len(out)-1]
		}
		out = append(out, "250 STARTTLS\r\n")
	}
	for i, l := range out {
		sep := byte('-')
		if i == len(out)-1 {
			sep = ' '
		}
		if bare := strings.TrimSuffix(l, lineEnd(l)); len(bare) > 3 && bare[3] == sep || len(bare) == 3 && sep == ' ' {
			continue // already right: relayed as it came
		}
		out[i] = l[:3] + string(sep) + replyText(l) + lineEnd(l)
	}
	return out
}

// replyText returns the text of a reply line: what follows the code and
// its separator, without the line end.
func replyText(l string) string {
	l = strings.TrimSuffix(l, lineEnd(l))
	if len(l) <= 4 {
		return ""
	}
	return l[4:]
}

// lineEnd returns the line end a line came with: CRLF or a bare LF.
func lineEnd(l string) string {
	if strings.HasSuffix(l, "\r\n") {
		return "\r\n"
	}
	return "\n"
}

// startTLS answers the client's STARTTLS: refused in StripSTARTTLS mode;
// in InterceptTLS mode accepted and the TLS handshake run with the
// attacker's certificate.
func (s *attackSession) startTLS() error {
	if s.a.opts.Mode == StripSTARTTLS {
		return writeLines(s.client, []string{"454 4.7.0 TLS not available due to temporary reason\r\n"})
	}
	if s.tls {
		return writeLines(s.client, []string{"503 5.5.1 TLS already active\r\n"})
	}
	if err := writeLines(s.client, []string{"220 2.0.0 Ready to start TLS\r\n"}); err != nil {
		return err
	}
	// RFC 3207 §4: the client waits for the 220 before its ClientHello;
	// anything it pipelined after STARTTLS is dropped, not replayed.
	tc := tls.Server(s.rawClient, s.a.tls)
	ctx, cancel := context.WithTimeout(context.Background(), attackTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	s.a.shakes.Add(1)
	s.client, s.tls = tc, true
	s.cr = bufio.NewReaderSize(tc, maxAttackLine)
	return nil
}

// copyBoth copies bytes both ways until either side closes, then closes
// both, so the other copy ends too.
func (s *attackSession) copyBoth() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(s.server, s.cr)
		s.server.Close()
		s.rawClient.Close()
	}()
	io.Copy(s.client, s.sr)
	s.server.Close()
	s.rawClient.Close()
	<-done
}

// readLine reads one line, a bare LF tolerated, and returns it with its
// line end, so that relaying it adds no octet.
func readLine(r *bufio.Reader) (string, error) {
	b, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", fmt.Errorf("testenv: attacker: line longer than %d bytes", maxAttackLine)
		}
		return "", err
	}
	return string(b), nil
}

// readReply reads a whole SMTP reply: lines "ddd-text" up to the last one,
// "ddd text" or "ddd" (RFC 5321 §4.2.1), each with its line end.
func readReply(r *bufio.Reader) ([]string, error) {
	var lines []string
	for len(lines) < maxAttackReplyRows {
		raw, err := readLine(r)
		if err != nil {
			return nil, err
		}
		l := strings.TrimSuffix(raw, lineEnd(raw))
		if len(l) < 3 || !isDigits(l[:3]) || len(l) > 3 && l[3] != ' ' && l[3] != '-' ||
			len(lines) > 0 && l[:3] != lines[0][:3] {
			return nil, fmt.Errorf("testenv: attacker: malformed reply line %q", l)
		}
		lines = append(lines, raw)
		if len(l) == 3 || l[3] == ' ' {
			return lines, nil
		}
	}
	return nil, fmt.Errorf("testenv: attacker: reply longer than %d lines", maxAttackReplyRows)
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// writeLines writes reply lines, each with its line end, in one write.
func writeLines(w io.Writer, lines []string) error {
	_, err := io.WriteString(w, strings.Join(lines, ""))
	return err
}
