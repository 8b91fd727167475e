package smtpclient

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
)

// maxGroup is the most commands sent in one pipelined group. RFC 2920 §3.1
// (and §5's deadlock discussion) asks a client not to write so much that
// the server's replies fill the socket buffers while the client is still
// writing; a hundred commands and their replies fit easily.
const maxGroup = 100

// Envelope is the envelope of one message (RFC 5321 §3.3) with the
// parameters of the service extensions the client supports.
type Envelope struct {
	// From is the reverse-path without angle brackets; "" is the null
	// reverse-path that bounces carry (RFC 5321 §4.5.5).
	From string
	// Size is the message size in octets. When the server advertises SIZE
	// (RFC 1870) it goes as SIZE=, and a message over the server's limit
	// is refused with a *CapabilityError before anything is sent. Zero
	// means unknown: no SIZE parameter.
	Size int64
	// Body8BitMIME marks content with octets over 127: BODY=8BITMIME (RFC
	// 6152). Without 8BITMIME on the server, Send returns a
	// *CapabilityError (5.6.3); the caller may convert the message or
	// clear the flag to send it anyway. False sends no BODY parameter.
	Body8BitMIME bool
	// SMTPUTF8 marks a message with UTF-8 header fields (RFC 6531). It is
	// also set implicitly when an address is not ASCII. Without SMTPUTF8
	// on the server, Send returns a *CapabilityError (5.6.7).
	SMTPUTF8 bool
	// RequireTLS asks the server to pass the message on only over TLS
	// (RFC 8689). Without REQUIRETLS on the server, or on a connection
	// without TLS, Send returns a *CapabilityError (5.7.30): the caller's
	// policy decides whether to bounce or go elsewhere.
	RequireTLS bool
	// Ret is the DSN RET parameter (RFC 3461 §4.3): "FULL", "HDRS", or ""
	// for none. DSN parameters are sent only when the server advertises
	// DSN; otherwise they are dropped (the caller may then issue a
	// "relayed" notification, RFC 3461 §4.1).
	Ret string
	// EnvID is the DSN ENVID parameter (RFC 3461 §4.4), printable ASCII,
	// sent xtext-encoded; "" for none.
	EnvID string
	// Rcpts are the recipients, at least one.
	Rcpts []Rcpt
}

// Rcpt is one recipient with its DSN parameters (RFC 3461 §4.1, §4.2).
type Rcpt struct {
	// Addr is the forward-path without angle brackets.
	Addr string
	// Notify lists NOTIFY values: "NEVER" alone, or any of "SUCCESS",
	// "FAILURE", "DELAY". Empty means no NOTIFY parameter.
	Notify []string
	// ORcpt is the original recipient address, sent as ORCPT (type
	// rfc822, or utf-8 per RFC 6533 for a non-ASCII address). "" means
	// none.
	ORcpt string
}

// SendResult holds the server's replies to one transaction. Fields of
// steps that were not reached, or whose reply the step does not allow (a
// protocol error), are nil.
type SendResult struct {
	// Mail is the reply to MAIL.
	Mail *Reply
	// Rcpts holds the reply to each RCPT, in the order of Envelope.Rcpts.
	// A recipient with a 2xx reply was accepted, and the Data reply
	// decides its fate.
	Rcpts []*Reply
	// Data is the final reply after the message content (its text usually
	// names the server's queue id) or, when the content was not sent, the
	// reply refusing DATA.
	Data *Reply
}

// Accepted reports whether recipient i was accepted by RCPT and the
// message by the final reply.
func (r *SendResult) Accepted(i int) bool {
	return r.Data != nil && r.Data.Code/100 == 2 && r.Rcpts[i] != nil && r.Rcpts[i].Code/100 == 2
}

// transaction is an envelope turned into command lines.
type transaction struct {
	mail  string
	rcpts []string
}

// Send runs one mail transaction: MAIL, RCPT for each recipient, DATA and
// the message content streamed from r, dot-stuffed and with every line end
// made CRLF (RFC 5321 §4.1.1.4, §4.5.2). When the server advertises
// PIPELINING (RFC 2920) the envelope and DATA go in one write and the
// replies are read in order; otherwise each command waits for its reply.
//
// err is nil when the message was accepted for every recipient that RCPT
// accepted; res tells which those are. Otherwise err is the refusing *Reply
// (of MAIL, DATA, or the final one), ErrNoRecipients, an error matching
// ErrConnLost (the connection is gone; after Op "end of data" the server
// may or may not have the message; a reply the step does not allow, or one
// that came before its command, is a *ProtocolError inside it, and nobody
// was accepted), a *CommandError or *CapabilityError
// (nothing was sent), or a *SourceError. res is never nil.
//
// A connection may carry any number of transactions; Send starts with RSET
// when the previous one was left open.
func (c *Conn) Send(ctx context.Context, env Envelope, r io.Reader) (*SendResult, error) {
	res := &SendResult{Rcpts: make([]*Reply, len(env.Rcpts))}
	if err := c.usable(); err != nil {
		return res, err
	}
	if c.ext == nil {
		return res, fmt.Errorf("%w: MAIL before EHLO", ErrBadSequence)
	}
	t, err := c.transaction(&env)
	if err != nil {
		return res, err
	}
	if err := c.begin(ctx); err != nil {
		return res, err
	}
	defer c.end()
	if _, ok := c.ext["PIPELINING"]; ok {
		err = c.envelopePipelined(t, res)
	} else {
		err = c.envelopeInTurn(t, res)
	}
	if err != nil {
		return res, err
	}
	return res, c.data(r, res)
}

// envelopePipelined sends MAIL, the RCPTs and DATA in groups (RFC 2920
// §3.1: DATA only as the last command of a group) and reads every reply,
// as §3.1 requires even when MAIL failed. An open transaction is ended by
// an RSET at the head of the first group, which §3.1 allows anywhere.
func (c *Conn) envelopePipelined(t *transaction, res *SendResult) error {
	var cmds []string
	if c.inTx {
		cmds = append(cmds, "RSET")
	}
	cmds = append(cmds, t.mail)
	cmds = append(cmds, t.rcpts...)
	cmds = append(cmds, "DATA")
	rcpt := 0
	for start := 0; start < len(cmds); start += maxGroup {
		end := min(start+maxGroup, len(cmds))
		for _, line := range cmds[start:end] {
			c.writeLine(line, "")
		}
		if err := c.flush("MAIL", c.to.Mail); err != nil {
			return err
		}
		for i, line := range cmds[start:end] {
			// The last reply of a group must be the last thing the server
			// sent (nothingPending); the others are followed by the next.
			reply := c.groupReply
			if start+i == end-1 {
				reply = c.reply
			}
			var err error
			switch {
			case line == "RSET":
				var r *Reply
				if r, err = reply("RSET", c.to.Command); err == nil && r.Code == 250 {
					c.inTx = false
				}
			case line == "DATA":
				res.Data, err = reply("DATA", c.to.DataInit)
			case res.Mail == nil:
				res.Mail, err = reply("MAIL", c.to.Mail)
				if err == nil && res.Mail.Code/100 == 2 {
					c.inTx = true
				}
			default:
				res.Rcpts[rcpt], err = reply("RCPT", c.to.Rcpt)
				rcpt++
			}
			if err != nil {
				return err
			}
		}
		if res.Mail.Code/100 != 2 {
			// The rest would only earn 503s; the group just read
			// ended with DATA, or DATA was never sent.
			break
		}
	}
	return nil
}

// envelopeInTurn sends MAIL, the RCPTs and DATA one by one, stopping as
// soon as the transaction cannot go on.
func (c *Conn) envelopeInTurn(t *transaction, res *SendResult) error {
	if c.inTx {
		if err := c.rset(); err != nil {
			return err
		}
	}
	var err error
	if res.Mail, err = c.cmd("MAIL", c.to.Mail, t.mail); err != nil {
		return err
	}
	if res.Mail.Code/100 != 2 {
		return nil
	}
	c.inTx = true
	accepted := 0
	for i, line := range t.rcpts {
		if res.Rcpts[i], err = c.cmd("RCPT", c.to.Rcpt, line); err != nil {
			return err
		}
		if res.Rcpts[i].Code/100 == 2 {
			accepted++
		}
	}
	if accepted == 0 {
		return nil
	}
	res.Data, err = c.cmd("DATA", c.to.DataInit, "DATA")
	return err
}

// data finishes the transaction after the envelope replies: it sends the
// content after a 354, or only the final dot when a pipelined DATA was
// accepted for a transaction that has no recipients (RFC 2920 §3.1), and
// turns the replies into Send's error.
func (c *Conn) data(r io.Reader, res *SendResult) error {
	mailOK := res.Mail.Code/100 == 2
	accepted := 0
	for _, rr := range res.Rcpts {
		if rr != nil && rr.Code/100 == 2 {
			accepted++
		}
	}
	d := res.Data
	if r == nil {
		r = strings.NewReader("")
	}
	if d != nil && d.Code == 354 {
		if !mailOK || accepted == 0 {
			r = strings.NewReader("")
		}
		final, err := c.content(r)
		if final != nil {
			// Also a 421, which ended the connection.
			res.Data = final
		}
		if err != nil {
			return err
		}
		d = final
	}
	switch {
	case !mailOK:
		return c.refused("MAIL", res.Mail)
	case accepted == 0 || d == nil:
		return ErrNoRecipients
	case d.Code == 250:
		return nil
	default:
		return c.refused("DATA", d)
	}
}

// copyBufs holds the buffers content copies message data through, shared
// by all connections: a connection made for one message should not cost a
// buffer of its own, nor should an idle pooled one keep one.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// content streams the message and reads the final reply (RFC 5321
// §4.1.1.4). The transaction is over either way.
func (c *Conn) content(r io.Reader) (*Reply, error) {
	c.wTimeout = c.to.DataBlock
	dw := &dataWriter{w: c.bw, lineStart: true}
	buf := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(dw, r, *buf)
	copyBufs.Put(buf)
	if err == nil {
		err = dw.Close()
	}
	if err != nil {
		if dw.err == nil {
			// The reader failed; SMTP has no way to abort DATA but
			// to close the connection.
			c.fail(&ConnError{Op: "message data", Err: fmt.Errorf("aborted, reading the message failed: %w", err)})
			return nil, &SourceError{Err: err}
		}
		return nil, c.ioFail("message data", err)
	}
	c.trace(Sent, "[message content: "+strconv.FormatInt(n, 10)+" octets]")
	c.trace(Sent, ".")
	if err := c.flush("message data", c.to.DataBlock); err != nil {
		return nil, err
	}
	c.inTx = false
	return c.reply("end of data", c.to.DataTerm)
}

// transaction checks an envelope against the server's extensions and
// turns it into command lines (RFC 5321 §4.1.1.2, §4.1.1.3 with the
// parameters of RFC 1870, 6152, 6531, 3461 and 8689).
func (c *Conn) transaction(env *Envelope) (*transaction, error) {
	if len(env.Rcpts) == 0 {
		return nil, &CommandError{Command: "RCPT", Field: "recipients", Reason: "no recipients"}
	}
	utf8 := env.SMTPUTF8 || !isASCII(env.From)
	for _, r := range env.Rcpts {
		utf8 = utf8 || !isASCII(r.Addr)
	}
	mail, err := c.mailLine(env, utf8)
	if err != nil {
		return nil, err
	}
	t := &transaction{mail: mail, rcpts: make([]string, len(env.Rcpts))}
	_, dsn := c.ext["DSN"]
	for i, r := range env.Rcpts {
		if t.rcpts[i], err = rcptLine(r, dsn); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// mailLine builds the MAIL command.
func (c *Conn) mailLine(env *Envelope, utf8 bool) (string, error) {
	bad := func(field, value, reason string) (string, error) {
		return "", &CommandError{Command: "MAIL", Field: field, Value: value, Reason: reason}
	}
	if env.From != "" {
		if reason := checkMailbox(env.From); reason != "" {
			return bad("address", env.From, reason)
		}
	}
	var b strings.Builder
	b.WriteString("MAIL FROM:<" + env.From + ">")
	if env.Size < 0 {
		return bad("SIZE", strconv.FormatInt(env.Size, 10), "negative size")
	}
	if max, ok := c.MaxSize(); ok && env.Size > 0 {
		if max > 0 && env.Size > max {
			return "", &CapabilityError{Extension: "SIZE", Enhanced: [3]int{5, 3, 4},
				Reason: fmt.Sprintf("message of %d octets over the server's limit of %d (RFC 1870 §6)", env.Size, max)}
		}
		b.WriteString(" SIZE=" + strconv.FormatInt(env.Size, 10))
	}
	if env.Body8BitMIME {
		if _, ok := c.ext["8BITMIME"]; !ok {
			return "", &CapabilityError{Extension: "8BITMIME", Enhanced: [3]int{5, 6, 3},
				Reason: "8-bit content needs 8BITMIME (RFC 6152 §3)"}
		}
		b.WriteString(" BODY=8BITMIME")
	}
	if utf8 {
		if _, ok := c.ext["SMTPUTF8"]; !ok {
			return "", &CapabilityError{Extension: "SMTPUTF8", Enhanced: [3]int{5, 6, 7},
				Reason: "UTF-8 addresses or header fields need SMTPUTF8 (RFC 6531 §3.2)"}
		}
		b.WriteString(" SMTPUTF8")
	}
	ret := strings.ToUpper(env.Ret)
	if ret != "" && ret != "FULL" && ret != "HDRS" {
		return bad("RET", env.Ret, "expected FULL or HDRS (RFC 3461 §4.3)")
	}
	if reason := checkEnvID(env.EnvID); reason != "" {
		return bad("ENVID", env.EnvID, reason)
	}
	if _, ok := c.ext["DSN"]; ok {
		if ret != "" {
			b.WriteString(" RET=" + ret)
		}
		if env.EnvID != "" {
			b.WriteString(" ENVID=" + xtext(env.EnvID))
		}
	}
	if env.RequireTLS {
		// RFC 8689 §4.1: only to a server that advertises REQUIRETLS,
		// over TLS.
		if _, ok := c.ext["REQUIRETLS"]; !ok || c.tlsState == nil {
			return "", &CapabilityError{Extension: "REQUIRETLS", Enhanced: [3]int{5, 7, 30},
				Reason: "the message requires TLS and a server that advertises REQUIRETLS over it (RFC 8689 §4.1)"}
		}
		b.WriteString(" REQUIRETLS")
	}
	return b.String(), nil
}

// rcptLine builds a RCPT command; DSN parameters go only when the server
// advertised DSN (RFC 3461 §4), but are checked either way.
func rcptLine(r Rcpt, dsn bool) (string, error) {
	bad := func(field, value, reason string) (string, error) {
		return "", &CommandError{Command: "RCPT", Field: field, Value: value, Reason: reason}
	}
	// RFC 5321 §4.1.1.3: "Postmaster" without a domain is a valid
	// forward-path.
	if !strings.EqualFold(r.Addr, "postmaster") {
		if reason := checkMailbox(r.Addr); reason != "" {
			return bad("address", r.Addr, reason)
		}
	}
	line := "RCPT TO:<" + r.Addr + ">"
	var notify, orcpt string
	if len(r.Notify) > 0 {
		var reason string
		if notify, reason = notifyParam(r.Notify); reason != "" {
			return bad("NOTIFY", strings.Join(r.Notify, ","), reason)
		}
	}
	if r.ORcpt != "" {
		var reason string
		if orcpt, reason = orcptParam(r.ORcpt); reason != "" {
			return bad("ORCPT", r.ORcpt, reason)
		}
	}
	if dsn && notify != "" {
		line += " NOTIFY=" + notify
	}
	if dsn && orcpt != "" {
		line += " ORCPT=" + orcpt
	}
	return line, nil
}
