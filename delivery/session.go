package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/sealpost/sealpost/internal/smtpclient"
	"github.com/sealpost/sealpost/tlsrpt"
)

// session is an SMTP session ready for mail: greeted, TLS negotiated as
// its requirement demands and verified, EHLO said (again).
type session struct {
	conn     *smtpclient.Conn
	info     Session
	key      poolKey
	messages int       // transactions carried
	idleAt   time.Time // when it was last put in the pool
	idle     *time.Timer
}

// connectError is a failed session set-up; policy marks a failure of the
// host's security requirement (as opposed to the network or the server).
type connectError struct {
	err    *Error
	policy bool
}

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// connect opens a session to ip as host's requirement demands, and records
// it for TLS-RPT. Opportunistic sessions whose TLS handshake fails are
// opened again without STARTTLS (RFC 7435: opportunistic security
// falls back to cleartext rather than not deliver).
func (a *attempt) connect(ctx context.Context, host MXHost, ip netip.Addr, req *Requirement, key poolKey) (*session, error) {
	c := a.c
	start := c.now()
	s, err := a.open(ctx, host, ip, req, true)
	var te *smtpclient.TLSError
	if err != nil && req.Level == Opportunistic && errors.As(err, &te) {
		c.log.Info("delivery: TLS handshake failed, retrying without STARTTLS (opportunistic TLS)",
			"domain", a.d.t.domain, "host", host.Name, "ip", ip.String(), "error", err.Error())
		s, err = a.open(ctx, host, ip, req, false)
	}
	if f := c.cfg.Observer.SessionStarted; f != nil {
		info := a.last
		if s != nil {
			info = s.info
		}
		f(info, c.now().Sub(start), err)
	}
	if err != nil {
		return nil, err
	}
	s.key = key
	return s, nil
}

// open makes one connection; useTLS false skips STARTTLS (the plaintext
// retry of an opportunistic session).
func (a *attempt) open(ctx context.Context, host MXHost, ip netip.Addr, req *Requirement, useTLS bool) (*session, error) {
	c := a.c
	port := a.d.t.port
	info := Session{Domain: a.d.t.domain, MXHost: host.Name, IP: ip, Port: port, Requirement: *req, Auth: NoSession}
	a.last = info
	conn, err := a.dialAddr(ctx, ip, port)
	if err != nil {
		return nil, &connectError{err: failure(451, codeConnect, err, "cannot connect to %s [%s]:%d", host.Name, ip, port)}
	}
	if la, ok := conn.LocalAddr().(*net.TCPAddr); ok {
		info.LocalIP = la.AddrPort().Addr().Unmap()
	}
	a.last = info
	sc, err := smtpclient.New(ctx, conn, smtpclient.Options{Timeouts: c.smtpTimeouts(), Trace: c.tracer(host.Name, ip)})
	if err != nil {
		return nil, &connectError{err: sessionFailure(host.Name, "greeting", err)}
	}
	s := &session{conn: sc, info: info}
	fail := func(err error) (*session, error) {
		sc.Close()
		return nil, err
	}
	if err := sc.Hello(ctx, c.hostname); err != nil {
		return fail(&connectError{err: sessionFailure(host.Name, "EHLO", err)})
	}
	s.info.HELO = sc.ServerName()
	a.last = s.info
	offered, _ := sc.Extension("STARTTLS")
	if !offered || !useTLS {
		if err := a.plaintext(s, !offered); err != nil {
			return fail(err)
		}
		return s, nil
	}
	v := &verification{c: c, req: req, host: host.Name}
	err = sc.StartTLS(ctx, c.tlsConfig(req, host.Name, v))
	var reply *smtpclient.Reply
	if errors.As(err, &reply) && !errors.Is(err, smtpclient.ErrConnLost) {
		// The server advertised STARTTLS and then refused it (454): the
		// session goes on in plaintext, if the requirement allows.
		if err := a.plaintext(s, true); err != nil {
			return fail(err)
		}
		return s, nil
	}
	if err != nil {
		return fail(a.tlsFailed(s, v, err))
	}
	st, _ := sc.TLSState()
	s.info.TLSVersion, s.info.CipherSuite = st.Version, st.CipherSuite
	s.info.Auth, s.info.CheckErr = v.auth(), v.err
	a.last = s.info
	if req.record {
		// The TLS session is what RFC 8460 counts, whatever follows it.
		f := v.reportFailure()
		if f == nil && req.Basis == BasisDANEUnusable {
			// RFC 8460 §4.3.3: none of the secure TLSA records was usable.
			// The session met what they ask (TLS), but the domain must
			// learn its records protect nothing.
			f = &tlsrpt.Failure{ResultType: tlsrpt.ResultTLSAInvalid, FailureReasonCode: "no-usable-tlsa-record"}
		}
		c.record(req.report, f, &s.info)
	}
	if err := sc.Hello(ctx, c.hostname); err != nil {
		return fail(&connectError{err: sessionFailure(host.Name, "EHLO after STARTTLS", err)})
	}
	if name := sc.ServerName(); name != "" {
		s.info.HELO = name
	}
	a.last = s.info
	return s, nil
}

// plaintext decides whether a session without TLS may carry the message.
// notSupported says the server offered no STARTTLS (or refused it), which
// is recorded; a plaintext retry after a failed handshake was recorded as
// that failure already.
func (a *attempt) plaintext(s *session, notSupported bool) error {
	c := a.c
	req := &s.info.Requirement
	s.info.Auth = Plaintext
	a.last = s.info
	if notSupported && req.record {
		// RFC 8460 §4.3.1, for DANE hosts too: "dane-required" (§4.3.2.1)
		// means a sender demanding DANE of a host without TLSA records.
		c.record(req.report, &tlsrpt.Failure{ResultType: tlsrpt.ResultSTARTTLSNotSupported}, &s.info)
	}
	if req.Level == Opportunistic {
		return nil
	}
	return &connectError{policy: true, err: failure(451, codeTLSNotOffered, nil,
		"MX host %s [%s] did not offer STARTTLS, which %s makes mandatory", s.info.MXHost, s.info.IP, req.Basis)}
}

// tlsFailed records and classifies a failed STARTTLS handshake.
func (a *attempt) tlsFailed(s *session, v *verification, err error) error {
	c := a.c
	info := &s.info
	var te *smtpclient.TLSError
	var pe *smtpclient.ProtocolError
	if errors.As(err, &pe) && info.Requirement.record {
		// A reply to STARTTLS that breaks the protocol — octets after the
		// 220, the injection RFC 3207 §5 warns of, or a code STARTTLS
		// does not allow — is what an on-path attacker does: the domain
		// must hear of it (RFC 8460 §4.3.1 has only the general type).
		c.record(info.Requirement.report, &tlsrpt.Failure{ResultType: tlsrpt.ResultValidationFailure,
			FailureReasonCode: "starttls-protocol-error"}, info)
	}
	if !errors.As(err, &te) && v.err == nil {
		// Lost before or outside the handshake (a dropped connection, a
		// canceled context): a connection failure, not a TLS one.
		return &connectError{err: sessionFailure(info.MXHost, "STARTTLS", err)}
	}
	info.CheckErr = v.err
	a.last = *info
	req := &info.Requirement
	if req.record {
		f := v.reportFailure()
		if f == nil {
			// The handshake itself failed (no shared version or cipher, a
			// reset): RFC 8460 §4.3.1 has only the general type for it.
			f = &tlsrpt.Failure{ResultType: tlsrpt.ResultValidationFailure, FailureReasonCode: handshakeReason(err)}
		}
		c.record(req.report, f, info)
	}
	if v.err != nil {
		return &connectError{policy: true, err: failure(451, codeCertificate, v.err,
			"MX host %s [%s] failed %s verification", info.MXHost, info.IP, req.Check)}
	}
	return &connectError{policy: req.Level > Opportunistic, err: failure(451, codeCertificate, err,
		"TLS handshake with MX host %s [%s] failed", info.MXHost, info.IP)}
}

// dialAddr connects to ip:port within the connect timeout, from the source
// address the domain's rules or the Config choose.
func (a *attempt) dialAddr(ctx context.Context, ip netip.Addr, port uint16) (net.Conn, error) {
	c := a.c
	return c.dialIP(ctx, ip, port, a.src)
}

// dialIP connects to ip:port within the connect timeout: through
// Config.Dial when set (which only ever receives "ip:port"), else from the
// source address local's rules or the Config choose.
func (c *Client) dialIP(ctx context.Context, ip netip.Addr, port uint16, local DomainPolicy) (net.Conn, error) {
	if c.dial != nil {
		ctx, cancel := context.WithTimeout(ctx, c.connectTimeout())
		defer cancel()
		return c.dial(ctx, "tcp", net.JoinHostPort(ip.String(), strconv.Itoa(int(port))))
	}
	return c.dialFrom(ctx, ip, port, local)
}

// dialFrom connects to ip:port with a net.Dialer within the connect
// timeout, from the source address local's rules or the Config choose.
func (c *Client) dialFrom(ctx context.Context, ip netip.Addr, port uint16, local DomainPolicy) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.connectTimeout())
	defer cancel()
	var d net.Dialer
	src := c.cfg.SourceIPv4
	if local.SourceIPv4.IsValid() {
		src = local.SourceIPv4
	}
	if ip.Is6() {
		src = c.cfg.SourceIPv6
		if local.SourceIPv6.IsValid() {
			src = local.SourceIPv6
		}
	}
	if src.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	return d.DialContext(ctx, "tcp", net.JoinHostPort(ip.String(), strconv.Itoa(int(port))))
}

func (c *Client) connectTimeout() time.Duration {
	if c.cfg.Timeouts.Connect > 0 {
		return c.cfg.Timeouts.Connect
	}
	return 30 * time.Second
}

func (c *Client) smtpTimeouts() smtpclient.Timeouts {
	t := c.cfg.Timeouts
	return smtpclient.Timeouts{Greeting: t.Greeting, Mail: t.Mail, Rcpt: t.Rcpt, DataInit: t.DataInit,
		DataBlock: t.DataBlock, DataTerm: t.DataTerm, Command: t.Command, TLSHandshake: t.TLSHandshake}
}

func (c *Client) tracer(host string, ip netip.Addr) func(smtpclient.Direction, string) {
	if c.cfg.Trace == nil {
		return nil
	}
	return func(dir smtpclient.Direction, line string) {
		c.cfg.Trace(TraceLine{Host: host, IP: ip, Sent: dir == smtpclient.Sent, Line: line})
	}
}

// sessionFailure turns a failure while setting a session up into an
// *Error: a server's negative reply keeps its code (and its class decides
// whether the host failed temporarily or permanently); anything else is a
// temporary connection failure.
func sessionFailure(host, step string, err error) *Error {
	var r *smtpclient.Reply
	if errors.As(err, &r) && r.Code >= 400 {
		return replyError(r, err)
	}
	return failure(451, codeConnection, err, "session with %s failed at %s", host, step)
}

// replyError turns a server's negative reply into an *Error.
func replyError(r *smtpclient.Reply, err error) *Error {
	e := &Error{Temporary: r.Code < 500, Code: r.Code, Enhanced: smtp.EnhancedCode(r.Enhanced), Message: r.Text, Remote: true, Err: err}
	if !r.HasEnhanced() {
		// RFC 3463 §3: without one from the server, the class follows
		// the reply code and the rest is "other or undefined".
		e.Enhanced = smtp.EnhancedCode{r.Code / 100, 0, 0} // X.0.0
	}
	return e
}

func handshakeReason(err error) string {
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return "tls-alert-" + strconv.Itoa(int(ae))
	}
	var re tls.RecordHeaderError
	if errors.As(err, &re) {
		return "tls-record-header"
	}
	return "tls-handshake-failed"
}

// record hands a session to the TLS-RPT recorder; a failure that names no
// MX host gets the session's host and addresses (RFC 8460 §4.4).
func (c *Client) record(p tlsrpt.Policy, f *tlsrpt.Failure, info *Session) {
	if c.cfg.TLSRPT == nil {
		return
	}
	if f != nil && info != nil && f.ReceivingMXHostname == "" {
		f.ReceivingMXHostname, f.SendingMTAIP, f.ReceivingIP, f.ReceivingMXHelo = info.MXHost, info.LocalIP, info.IP, info.HELO
	}
	c.cfg.TLSRPT.Record(tlsrpt.Session{Time: c.now(), Policy: p, Failure: f})
}

// recordFailure records a failure decided before any connection (a TLSA
// look-up that failed, a host outside the MTA-STS policy).
func (c *Client) recordFailure(p tlsrpt.Policy, rt tlsrpt.ResultType, host, reason string) {
	c.record(p, &tlsrpt.Failure{ResultType: rt, ReceivingMXHostname: host, FailureReasonCode: reason}, nil)
}

// resultTypeOf is resultType for the tlsrpt type.
func resultTypeOf(err error, def tlsrpt.ResultType) tlsrpt.ResultType {
	return tlsrpt.ResultType(resultType(err, string(def)))
}
