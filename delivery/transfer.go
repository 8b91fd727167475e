package delivery

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/emersion/go-smtp"
	"github.com/sealpost/sealpost/internal/smtpclient"
)

// outcome is how one transaction over a session ended for the attempt.
type outcome struct {
	// err is set when the host failed the attempt without deciding the
	// recipients' fate (a missing extension, a lost connection, 421): the
	// next address or host is tried.
	err error
	// stale is set when a reused session turned out to be dead before
	// the server received anything of this transaction.
	stale bool
	// reusable says the session may carry another message.
	reusable bool
}

// transact sends the message to the attempt's pending recipients over s
// and settles every recipient whose fate the server decided.
func (a *attempt) transact(ctx context.Context, s *session) outcome {
	c := a.c
	start := c.now()
	reused := s.messages > 0
	s.info.Reused = reused
	// The SMTP client passes the DSN parameters exactly when DSN is
	// advertised (RFC 3461 §4).
	s.info.DSN, _ = s.conn.Extension("DSN")
	a.last = s.info
	var out outcome
	observe := c.cfg.Observer.Transaction
	var settling []int // the recipients this transaction carries, for the Observer
	if observe != nil {
		settling = slices.Clone(a.pending)
	}
	for len(a.pending) > 0 {
		env := a.envelope(&s.info.Requirement)
		res, err := s.conn.Send(ctx, env, a.body())
		if reused && res.Mail == nil && errors.Is(err, smtpclient.ErrConnLost) {
			return outcome{stale: true}
		}
		var cmdErr *smtpclient.CommandError
		if errors.As(err, &cmdErr) && a.refuseInput(cmdErr, s.info) {
			// A recipient's own parameters were refused before anything was
			// sent; try again without it.
			continue
		}
		out = a.settleTransaction(s.info, res, err)
		break
	}
	s.messages++
	out.reusable = s.conn.Err() == nil && s.messages < c.maxMessages()
	if observe != nil {
		var results []Result
		for _, i := range settling {
			if !slices.Contains(a.pending, i) {
				results = append(results, a.results[i])
			}
		}
		observe(s.info, results, c.now().Sub(start))
	}
	return out
}

// envelope builds the SMTP envelope of the pending recipients.
func (a *attempt) envelope(req *Requirement) smtpclient.Envelope {
	env := smtpclient.Envelope{From: a.msg.From, Size: a.msg.Size, Body8BitMIME: a.msg.EightBit,
		SMTPUTF8: a.msg.SMTPUTF8, RequireTLS: req.REQUIRETLS, Ret: string(a.msg.Return), EnvID: a.msg.EnvID,
		Rcpts: make([]smtpclient.Rcpt, len(a.pending))}
	for k, i := range a.pending {
		r := a.msg.Recipients[i]
		rc := smtpclient.Rcpt{Addr: r.Address, ORcpt: r.ORcpt}
		for _, n := range r.Notify {
			rc.Notify = append(rc.Notify, string(n))
		}
		env.Rcpts[k] = rc
	}
	return env
}

// body returns a fresh reader of the whole message content.
func (a *attempt) body() io.Reader {
	if a.msg.Body == nil {
		return strings.NewReader("")
	}
	return &wholeBody{r: io.NewSectionReader(a.msg.Body, 0, a.msg.Size), left: a.msg.Size}
}

// wholeBody fails a Body that ends before Size with io.ErrUnexpectedEOF,
// which aborts the transaction: a message cut short must not be sent as if
// it were whole, which the end of data would make a delivery.
type wholeBody struct {
	r    io.Reader
	left int64
}

func (b *wholeBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err == io.EOF && b.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// refuseInput settles the recipient whose address or DSN parameter the
// SMTP client refused to send; it reports false when the refused input is
// the message's own (sender, ENVID, RET), which then fails every recipient.
func (a *attempt) refuseInput(e *smtpclient.CommandError, info Session) bool {
	if e.Command != "RCPT" {
		return false
	}
	for k, i := range a.pending {
		r := a.msg.Recipients[i]
		if (e.Field == "address" && e.Value == r.Address) || (e.Field == "ORCPT" && e.Value == r.ORcpt) || e.Field == "NOTIFY" {
			code := codeBadMailbox
			if e.Field != "address" {
				code = codeBadParameter
			}
			a.settleOwn(i, failure(553, code, e, "recipient refused before sending: %s", e.Reason), info)
			a.pending = append(a.pending[:k:k], a.pending[k+1:]...)
			return true
		}
	}
	return false
}

// settleTransaction applies the result of Send to the pending recipients.
func (a *attempt) settleTransaction(info Session, res *smtpclient.SendResult, err error) outcome {
	var (
		capErr *smtpclient.CapabilityError
		cmdErr *smtpclient.CommandError
		srcErr *smtpclient.SourceError
		connE  *smtpclient.ConnError
		reply  *smtpclient.Reply
	)
	switch {
	case errors.As(err, &capErr):
		// Permanent for this server (RFC 6531 §3.2, RFC 6152 §3, RFC 8689
		// §4.1, RFC 1870 §6); another host of the domain may differ.
		code := smtp.EnhancedCode(capErr.Enhanced)
		if code[0] == 0 {
			code = codeProtocol
		}
		return outcome{err: failure(554, code, err, "MX host %s: %s", info.MXHost, capErr.Reason)}
	case errors.As(err, &cmdErr):
		code := codeBadParameter
		if cmdErr.Field == "address" {
			code = codeBadSender
		}
		a.settleAll(failure(553, code, err, "message refused before sending: %s", cmdErr.Reason), info)
		return outcome{}
	case errors.As(err, &srcErr):
		a.settleAll(failure(451, codeSource, err, "reading the message failed"), info)
		return outcome{}
	case errors.As(err, &connE) && connE.Op == "end of data":
		// RFC 5321 §6.1: the server may have the message; retrying may
		// duplicate it, which is better than losing it.
		a.settleAccepted(res, failure(451, codeLostAfterData, err,
			"connection to %s lost after the message was sent: it may or may not have been delivered", info.MXHost), info)
		return outcome{}
	case res.Data == nil && errors.Is(err, smtpclient.ErrConnLost):
		// Dropped or 421 before the message went: nothing was delivered,
		// so the next address or host may take it (RFC 5321 §3.8).
		return outcome{err: sessionFailure(info.MXHost, "the mail transaction", err)}
	case res.Mail != nil && res.Mail.Code >= 400:
		a.settleAll(replyError(res.Mail, err), info)
		return outcome{}
	case err != nil && !errors.As(err, &reply) && !errors.Is(err, smtpclient.ErrNoRecipients):
		a.settleAll(asError(err), info)
		return outcome{}
	}
	a.settleReplies(res, info)
	return outcome{}
}

// settleReplies gives each pending recipient its RCPT reply when that was
// negative, else the final reply to the message.
func (a *attempt) settleReplies(res *smtpclient.SendResult, info Session) {
	for k, i := range a.pending {
		r := res.Rcpts[k]
		switch {
		case r != nil && r.Code >= 400:
			a.settleReply(i, r, info)
		case res.Data != nil:
			a.settleReply(i, res.Data, info)
		default:
			a.settleOwn(i, failure(451, codeConnection, nil, "no reply from %s to the message", info.MXHost), info)
		}
	}
	a.pending = nil
}

// settleAccepted gives the recipients RCPT accepted the failure err, and
// the others their RCPT reply.
func (a *attempt) settleAccepted(res *smtpclient.SendResult, err *Error, info Session) {
	for k, i := range a.pending {
		if r := res.Rcpts[k]; r != nil && r.Code >= 400 {
			a.settleReply(i, r, info)
			continue
		}
		a.settleOwn(i, err, info)
	}
	a.pending = nil
}

func (a *attempt) settleAll(err *Error, info Session) {
	for _, i := range a.pending {
		a.settleOwn(i, err, info)
	}
	a.pending = nil
}

func (a *attempt) settleReply(i int, r *smtpclient.Reply, info Session) {
	res := &a.results[i]
	if r.Code/100 == 2 {
		*res = Result{Recipient: res.Recipient, Status: Delivered, Code: r.Code, Enhanced: smtp.EnhancedCode(r.Enhanced),
			Text: r.Text, Remote: true, Session: info}
		return
	}
	a.settleOwn(i, replyError(r, r), info)
}

func (a *attempt) settleOwn(i int, err *Error, info Session) {
	setFailure(&a.results[i], err)
	a.results[i].Session = info
}

func (c *Client) maxMessages() int {
	if c.cfg.MaxMessagesPerConn > 0 {
		return c.cfg.MaxMessagesPerConn
	}
	return 100
}
