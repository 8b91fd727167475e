package smtpclient

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-sasl"
)

// maxAuthRounds bounds the challenges one AUTH exchange may take, so that
// a server cannot keep a client answering forever.
const maxAuthRounds = 10

// maxCommandLine is the longest command line RFC 5321 §4.5.3.1.4 allows,
// CRLF included; RFC 4954 §4 sends an initial response that would not fit
// after an empty challenge instead.
const maxCommandLine = 512

// masked stands for a credential in the trace.
const masked = "*****"

// Auth authenticates with SASL (RFC 4954), for a submission or relay host;
// MX hosts do not take AUTH. The mechanism the client chooses must be
// among those the server advertised. Over a connection without TLS, Auth
// refuses unless Options.AllowInsecureAuth is set. The trace shows the
// mechanism but masks every payload.
//
// A refusal (535 ...) is a *Reply; an error of the SASL client or an
// undecodable challenge cancels the exchange ("*", RFC 4954 §4) and is
// returned wrapped.
func (c *Conn) Auth(ctx context.Context, a sasl.Client) error {
	if err := c.usable(); err != nil {
		return err
	}
	if c.ext == nil {
		return fmt.Errorf("%w: AUTH before EHLO", ErrBadSequence)
	}
	mechs, ok := c.ext["AUTH"]
	if !ok {
		return &CapabilityError{Extension: "AUTH", Reason: "AUTH was not advertised in the EHLO reply"}
	}
	if c.tlsState == nil && !c.opts.AllowInsecureAuth {
		return &CommandError{Command: "AUTH", Field: "connection", Reason: "refusing to send credentials without TLS (Options.AllowInsecureAuth)"}
	}
	mech, ir, err := a.Start()
	if err != nil {
		return fmt.Errorf("smtpclient: AUTH: starting SASL: %w", err)
	}
	if !slices.ContainsFunc(strings.Fields(mechs), func(m string) bool { return strings.EqualFold(m, mech) }) {
		return &CapabilityError{Extension: "AUTH " + mech, Reason: fmt.Sprintf("mechanism %s not among those advertised (%s)", mech, mechs)}
	}
	if reason := checkMechanism(mech); reason != "" {
		return &CommandError{Command: "AUTH", Field: "mechanism", Value: mech, Reason: reason}
	}
	if err := c.begin(ctx); err != nil {
		return err
	}
	defer c.end()
	return c.authExchange(a, mech, ir)
}

// authExchange runs AUTH and its challenges (RFC 4954 §4).
func (c *Conn) authExchange(a sasl.Client, mech string, ir []byte) error {
	line := "AUTH " + mech
	var pending []byte // an initial response that waits for the first challenge
	if ir != nil {
		enc := encodeResponse(ir)
		if len(line)+1+len(enc)+2 <= maxCommandLine {
			line += " " + enc
			c.writeLine(line, "AUTH "+mech+" "+masked)
		} else {
			pending = ir
			c.writeLine(line, "")
		}
	} else {
		c.writeLine(line, "")
	}
	if err := c.flush("AUTH", c.to.Command); err != nil {
		return err
	}
	for round := 0; ; round++ {
		r, err := c.reply("AUTH", c.to.Command)
		if err != nil {
			return err
		}
		switch {
		case r.Code == 235:
			return nil
		case r.Code != 334:
			return c.refused("AUTH", r)
		case round >= maxAuthRounds:
			return c.authCancel(&ProtocolError{Op: "AUTH", Reason: fmt.Sprintf("more than %d challenges", maxAuthRounds)})
		}
		var resp []byte
		if pending != nil {
			resp, pending = pending, nil
		} else {
			challenge, err := base64.StdEncoding.DecodeString(r.Text)
			if err != nil {
				return c.authCancel(&ProtocolError{Op: "AUTH", Reason: "challenge is not base64", Got: truncate(r.Text)})
			}
			if resp, err = a.Next(challenge); err != nil {
				return c.authCancel(fmt.Errorf("smtpclient: AUTH %s: %w", mech, err))
			}
		}
		c.writeLine(encodeResponse(resp), masked)
		if err := c.flush("AUTH", c.to.Command); err != nil {
			return err
		}
	}
}

// authCancel ends an exchange with "*" (RFC 4954 §4), reads the server's
// 501 and returns cause, unless the connection failed meanwhile.
func (c *Conn) authCancel(cause error) error {
	if _, err := c.cmd("AUTH", c.to.Command, "*"); err != nil {
		return err
	}
	return cause
}

// encodeResponse encodes a SASL response; an empty one is "=" (RFC 4954
// §4).
func encodeResponse(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

// checkMechanism checks a SASL mechanism name (RFC 4422 §3.1: upper-case
// letters, digits, "-" and "_", at most 20 characters).
func checkMechanism(m string) string {
	if m == "" || len(m) > 20 {
		return "a mechanism name has 1 to 20 characters"
	}
	for i := 0; i < len(m); i++ {
		b := m[i]
		if !('A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
			return "character not allowed in a mechanism name"
		}
	}
	return ""
}
