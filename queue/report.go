package queue

import (
	"context"
	"fmt"

	"github.com/sealpost/sealpost/tlsrpt"
)

var _ tlsrpt.MailSender = (*Queue)(nil)

// SendReport implements tlsrpt.MailSender: it queues a TLS-RPT report mail,
// already DKIM-signed by the reporter, as KindReport. RFC 8460 §3: it is
// delivered without enforcing the recipient domain's DANE or MTA-STS
// policy or REQUIRETLS, and its sessions are not recorded, so that a
// broken policy cannot stop its own report nor feed the next one. It
// returns nil once the message is durably queued; a *RejectError
// (Temporary false) for a message that can never be sent. A permanent
// bounce learned later is passed to Config.ReportBounced.
func (q *Queue) SendReport(ctx context.Context, from string, to []string, msg []byte) error {
	env := &Envelope{From: from}
	for _, addr := range to {
		env.Recipients = append(env.Recipients, Recipient{Addr: addr})
	}
	if err := q.check(env, msg); err != nil {
		return err
	}
	e := q.prepare(env, KindReport, msg)
	if err := q.store.Enqueue(ctx, &Entry{Envelope: e, Body: msg}); err != nil {
		return fmt.Errorf("queue: storing report mail: %w", err)
	}
	q.enqueued(e)
	return nil
}

// reportBounced tells the reporter about report recipients that failed
// permanently in this round, so that it stops sending to them for a while.
func (q *Queue) reportBounced(ctx context.Context, m *active) {
	if q.cfg.ReportBounced == nil {
		return
	}
	for _, r := range m.bounced {
		if err := q.cfg.ReportBounced(ctx, r.Addr, diagString(r.Last)); err != nil {
			q.log.Error("queue: passing a report bounce on", "rcpt", r.Addr, "err", err)
		}
	}
}
