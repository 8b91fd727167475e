package queue

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/sealpost/sealpost/delivery"
)

// deliveryMessage is the part of a delivery.Message every domain's
// delivery of env shares.
func deliveryMessage(env *Envelope) delivery.Message {
	m := delivery.Message{
		From: env.From, EnvID: env.EnvID, RequireTLS: env.RequireTLS,
		TLSOptional: env.TLSOptional, SMTPUTF8: env.SMTPUTF8, EightBit: env.EightBit,
		TLSReport: env.Kind == KindReport,
	}
	switch env.Ret {
	case RetFull:
		m.Return = smtp.DSNReturnFull
	case RetHeaders:
		m.Return = smtp.DSNReturnHeaders
	}
	return m
}

func deliveryRecipient(r *Recipient) delivery.Recipient {
	d := delivery.Recipient{Address: r.Addr, ORcpt: orcptAddress(r.ORcpt)}
	for _, k := range []struct {
		bit Notify
		kw  smtp.DSNNotify
	}{{NotifyNever, smtp.DSNNotifyNever}, {NotifySuccess, smtp.DSNNotifySuccess}, {NotifyFailure, smtp.DSNNotifyFailure}, {NotifyDelay, smtp.DSNNotifyDelayed}} {
		if r.Notify&k.bit != 0 {
			d.Notify = append(d.Notify, k.kw)
		}
	}
	return d
}

// orcptAddress returns the address of a stored ORCPT ("type;address") for
// delivery.Recipient.ORcpt, which takes the bare address and chooses the
// type itself (rfc822, or utf-8 for a UTF-8 address, RFC 6533 §3). An
// address of another type (x400, ...) cannot be passed on through that
// interface, though RFC 3461 §5.2.1 asks a relay to pass ORCPT on: it is
// dropped rather than failing the recipient (our own DSNs still report it
// as Original-Recipient).
func orcptAddress(orcpt string) string {
	typ, addr, ok := strings.Cut(orcpt, ";")
	typ = strings.ToLower(strings.TrimSpace(typ))
	if !ok || typ != "rfc822" && typ != "utf-8" {
		return ""
	}
	return strings.TrimSpace(addr)
}

// resultFor finds the result for the i-th recipient of a task, or makes
// one from the error of an attempt that failed as a whole.
func resultFor(o outcome, i int, addr string) delivery.Result {
	if o.err != nil {
		res := delivery.Result{Recipient: addr, Status: delivery.TemporaryFailure, Code: 451, Enhanced: smtp.EnhancedCode{4, 4, 0}, Text: o.err.Error(), Err: o.err}
		var de *delivery.Error
		if errors.As(o.err, &de) {
			res.Code, res.Enhanced, res.Text = de.Code, de.Enhanced, de.Message
			if !de.Temporary {
				res.Status = delivery.PermanentFailure
			}
		}
		return res
	}
	if i < len(o.results) && strings.EqualFold(o.results[i].Recipient, addr) {
		return o.results[i]
	}
	for _, r := range o.results {
		if strings.EqualFold(r.Recipient, addr) {
			return r
		}
	}
	return delivery.Result{Recipient: addr, Status: delivery.TemporaryFailure, Code: 451, Enhanced: smtp.EnhancedCode{4, 3, 0},
		Text: "the delivery attempt returned no result for this recipient"}
}

// apply records a worker's outcome in the message's envelope.
func (q *Queue) apply(t *task, o outcome) {
	m := t.msg
	for i, idx := range t.idx {
		r := &m.env.Recipients[idx]
		res := resultFor(o, i, r.Addr)
		if o.skipped && (o.results == nil || res.Status != delivery.Delivered) {
			continue // no attempt, or one cut short: leave it as it was
		}
		m.tried = true
		q.applyResult(m, r, res, o.at)
	}
}

// applyResult moves one recipient on after an attempt that ended at now.
func (q *Queue) applyResult(m *active, r *Recipient, res delivery.Result, now time.Time) {
	env := m.env
	diag := Diagnostic{Code: res.Code, Enhanced: [3]int(res.Enhanced), Text: res.Text, Session: summarize(&res.Session)}
	if res.Remote {
		diag.RemoteMTA = res.Session.MXHost
	}
	r.Attempts++
	r.LastAttempt, r.Last = now, diag
	log := q.log.With("id", env.ID, "rcpt", r.Addr, "attempts", r.Attempts, "reply", diagString(diag), "session", diag.Session.String())
	switch res.Status {
	case delivery.Delivered:
		r.State = StateDelivered
		log.Info("queue: delivered")
		if f := q.cfg.Observer.Delivered; f != nil {
			f(env.ID, r, &res)
		}
		// We hand mail to the recipient's MX, a relay as far as DSNs go:
		// "delivered" is for the final delivery, not ours to report. RFC
		// 3461 §5.2.1: a next hop that supports DSN got NOTIFY with the
		// message and reports success itself; §5.2.2: one that does not
		// cannot, so a sender who asked for SUCCESS gets "relayed" from us.
		if r.Notify&NotifySuccess != 0 && !res.Session.DSN {
			m.report(r, actionRelayed, time.Time{})
		}
	case delivery.PermanentFailure:
		q.bounceRecipient(m, r, &res, "failed")
		if env.Kind == KindReport {
			m.bounced = append(m.bounced, *r)
		}
	default:
		maxAge := q.maxAge()
		expiry := env.Arrived.Add(maxAge)
		if !now.Before(expiry) {
			q.bounceRecipient(m, r, &res, "expired")
			return
		}
		r.NextAttempt = now.Add(q.cfg.Retry.Delay(r.Attempts))
		if r.NextAttempt.After(expiry) {
			r.NextAttempt = expiry // the last attempt is made when the message expires
		}
		log.Info("queue: deferred", "next", r.NextAttempt)
		if f := q.cfg.Observer.Deferred; f != nil {
			f(env.ID, r, &res)
		}
		warn := q.cfg.DelayWarning
		if warn > 0 && !r.Warned && now.Sub(env.Arrived) >= warn && r.Notify.wants(NotifyDelay, true) {
			r.Warned = true
			m.report(r, actionDelayed, expiry)
		}
	}
}

func (q *Queue) bounceRecipient(m *active, r *Recipient, res *delivery.Result, why string) {
	r.State = StateBounced
	q.log.Warn("queue: bounced", "id", m.env.ID, "rcpt", r.Addr, "why", why, "attempts", r.Attempts, "reply", diagString(r.Last), "session", r.Last.Session.String())
	if f := q.cfg.Observer.Bounced; f != nil {
		f(m.env.ID, r, res)
	}
	if r.Notify.wants(NotifyFailure, false) {
		m.report(r, actionFailed, time.Time{})
	}
}

// record stores what a round of attempts did to a message, with its DSN.
func (q *Queue) record(ctx context.Context, m *active) {
	env := m.env
	if !m.tried {
		if err := q.store.Release(ctx, env.ID); err != nil {
			q.log.Error("queue: releasing message", "id", env.ID, "err", err)
		}
		return
	}
	var add []*Entry
	dsn, err := q.notification(m)
	if err != nil {
		q.log.Error("queue: writing DSN", "id", env.ID, "err", err)
	}
	if dsn != nil {
		add = append(add, dsn)
	}
	err = q.store.Update(ctx, env.ID, env.Recipients, add...)
	switch {
	case errors.Is(err, ErrNotFound):
		q.log.Info("queue: message deleted during delivery", "id", env.ID)
		return
	case err != nil:
		// The lease runs out and the message is tried again: a recipient
		// may get it twice, none loses it.
		q.log.Error("queue: storing delivery results", "id", env.ID, "err", err)
		return
	}
	if dsn != nil {
		q.enqueued(dsn.Envelope)
	}
	q.reportBounced(ctx, m)
}

// diagString renders a diagnostic for logs.
func diagString(d Diagnostic) string {
	if d.Code == 0 && d.Text == "" {
		return ""
	}
	s := d.Text
	if d.Enhanced != [3]int{} {
		s = enhancedString(d.Enhanced) + " " + s
	}
	if d.Code != 0 {
		s = strconv.Itoa(d.Code) + " " + s
	}
	return s
}
