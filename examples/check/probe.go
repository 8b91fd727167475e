package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/sealpost/sealpost/internal/smtpclient"
)

// probe is what one SMTP conversation with one address of an MX host
// showed: how far it got, and the TLS session if there was one.
type probe struct {
	Host string
	Addr netip.Addr
	// Connected: the TCP connection was made.
	Connected bool
	// Err is set when the conversation ended before STARTTLS could be
	// tried: no connection, a refusing greeting, EHLO refused.
	Err error
	// STARTTLS: the EHLO reply advertised STARTTLS (RFC 3207 §4).
	STARTTLS bool
	// TLSErr is set when STARTTLS was refused or its handshake failed.
	TLSErr error
	// State is the TLS session, after a completed handshake.
	State *tls.ConnectionState
}

// maxAddrsPerHost bounds the addresses of one MX host that are probed.
const maxAddrsPerHost = 4

// probeMX has one SMTP conversation with addr, port 25, up to a TLS
// handshake, through internal/smtpclient. It accepts any certificate: the
// checks judge the session afterwards (sts.Client.VerifyConnection,
// dane.Requirement.Verify), so that a bad certificate becomes a finding
// that says what is wrong rather than a failed handshake. sni is the name
// sent in the handshake: the TLSA base domain for a DANE host (RFC 7672
// §8.1), the MX host name otherwise.
func probeMX(ctx context.Context, env *Env, host string, addr netip.Addr, sni string) probe {
	ctx, cancel := context.WithTimeout(ctx, env.timeout())
	defer cancel()
	p := probe{Host: host, Addr: addr}
	conn, err := env.dial(ctx, "tcp", netip.AddrPortFrom(addr, 25).String())
	if err != nil {
		p.Err = fmt.Errorf("cannot connect to port 25: %w", err)
		return p
	}
	p.Connected = true
	c, err := smtpclient.New(ctx, conn, smtpclient.Options{})
	if err != nil {
		p.Err = fmt.Errorf("no 220 greeting: %w", err)
		return p
	}
	defer c.Close()
	if err := c.Hello(ctx, env.heloName()); err != nil {
		p.Err = fmt.Errorf("EHLO failed: %w", err)
		return p
	}
	p.STARTTLS, _ = c.Extension("STARTTLS")
	if !p.STARTTLS {
		_ = c.Quit(ctx)
		return p
	}
	cfg := &tls.Config{
		ServerName: sni,
		// Verified afterwards by the library's own checks: see above.
		InsecureSkipVerify: true,
		// Accept what the server offers, down to TLS 1.0, so that an
		// old version is reported rather than a handshake failure.
		MinVersion: tls.VersionTLS10,
	}
	if err := c.StartTLS(ctx, cfg); err != nil {
		p.TLSErr = err
		return p
	}
	st, _ := c.TLSState()
	p.State = &st
	// RFC 3207 §4.2: a new EHLO after the handshake, then a polite end.
	if c.Hello(ctx, env.heloName()) == nil {
		_ = c.Quit(ctx)
	}
	return p
}

// describeSMTPError shortens the client's errors for a finding.
func describeSMTPError(err error) string {
	var r *smtpclient.Reply
	if errors.As(err, &r) {
		return fmt.Sprintf("the server replied %d %s", r.Code, firstLine(r.Text))
	}
	msg := err.Error()
	return strings.ReplaceAll(msg, "smtpclient: ", "")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
