package queue

import (
	"context"
	"errors"
)

// Hold keeps a message from being delivered until Release. A delivery
// already under way finishes.
func (q *Queue) Hold(ctx context.Context, id ID) error {
	q.log.Info("queue: hold", "id", id)
	return q.store.Modify(ctx, id, func(e *Envelope) error { e.Held = true; return nil })
}

// Release ends a Hold; the message is due at once if its retry time has
// passed.
func (q *Queue) Release(ctx context.Context, id ID) error {
	q.log.Info("queue: release", "id", id)
	err := q.store.Modify(ctx, id, func(e *Envelope) error { e.Held = false; return nil })
	if err == nil {
		q.kick()
	}
	return err
}

// ErrHeld is returned by RetryNow for a held message.
var ErrHeld = errors.New("queue: message is held")

// RetryNow makes every pending recipient of a message due now, as after a
// receiving site's problem was fixed. It returns ErrHeld for a held
// message: Release it first.
func (q *Queue) RetryNow(ctx context.Context, id ID) error {
	now := q.now()
	q.log.Info("queue: retry now", "id", id)
	err := q.store.Modify(ctx, id, func(e *Envelope) error {
		if e.Held {
			return ErrHeld
		}
		for i := range e.Recipients {
			if e.Recipients[i].State == StatePending {
				e.Recipients[i].NextAttempt = now
			}
		}
		return nil
	})
	if err == nil {
		q.kick()
	}
	return err
}

// Delete removes a message without a DSN. A delivery already under way
// may still deliver it; its result is then discarded.
func (q *Queue) Delete(ctx context.Context, id ID) error {
	q.log.Info("queue: delete", "id", id)
	return q.store.Delete(ctx, id)
}

// Inspect returns a message's envelope: its recipients, their state, the
// last reply each got and when each is tried next.
func (q *Queue) Inspect(ctx context.Context, id ID) (*Envelope, error) {
	return q.store.Get(ctx, id)
}

// Content returns a message's stored content (DKIM signature included).
func (q *Queue) Content(ctx context.Context, id ID) ([]byte, error) {
	return q.store.Body(ctx, id)
}

// List returns up to limit messages with IDs after after, in order of
// arrival; "" starts at the beginning. Page with the last ID returned.
func (q *Queue) List(ctx context.Context, after ID, limit int) ([]*Envelope, error) {
	return q.store.List(ctx, after, limit)
}
