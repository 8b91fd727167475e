package queue

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by a Store for a message it does not hold.
var ErrNotFound = errors.New("queue: no such message")

// Store is where the queue keeps its messages. The queue's logic — what is
// due, back-off, bounces — lives in Queue; a Store only keeps envelopes,
// bodies and an index of envelopes by due time (Envelope.Due), and must
// keep them consistent with each other in every call. boltstore is the
// embedded implementation and MemoryStore the in-memory one; a store on a
// database server shared by a fleet implements the same methods, Claim
// with "SELECT ... FOR UPDATE SKIP LOCKED".
//
// Durability: a store that claims to be durable must have every change on
// stable storage (data and index) before the call that made it returns.
//
// Leases: Claim hands due messages to one scheduler and hides them from
// others until the lease ends or Update, Release or Recover ends it. A
// node that crashes leaves its leases to expire, or, for a store only one
// node uses, to Recover at the next start; either way the messages are
// tried again, which makes delivery at-least-once.
//
// Implementations must be safe for concurrent use. Envelopes passed in and
// returned are never shared with the caller.
type Store interface {
	// Enqueue stores a new message. Its ID must be unused.
	Enqueue(ctx context.Context, e *Entry) error

	// Claim returns up to max messages that are due at or before now, are
	// not held and not leased, in order of due time, and leases each of
	// them until until.
	Claim(ctx context.Context, now, until time.Time, max int) ([]*Envelope, error)

	// Update records the outcome of an attempt on a claimed message: it
	// replaces the message's recipients (keeping the stored Held flag,
	// which an operator may have changed meanwhile), ends its lease, deletes
	// the message and its body when no recipient is pending, and stores
	// the new messages add (bounces), all in one atomic change. It returns
	// ErrNotFound, and stores nothing, if the message was deleted.
	Update(ctx context.Context, id ID, rcpts []Recipient, add ...*Entry) error

	// Release ends the leases of messages without changing them, so that
	// they are due again at their Due time. Unknown IDs are ignored.
	Release(ctx context.Context, ids ...ID) error

	// Recover ends every lease, as Release would, and returns how many it
	// ended. A single node calls it when it starts, after a crash.
	Recover(ctx context.Context) (int, error)

	// Modify changes a message for an operator (hold, release, retry now):
	// it reads the envelope, calls change on a copy and, if change returns
	// nil, stores the result (ID, Size and Arrived unchanged) and re-indexes
	// it. A lease is kept. change must be quick and do no I/O; it may be
	// called more than once.
	Modify(ctx context.Context, id ID, change func(*Envelope) error) error

	// Delete removes a message and its body, leased or not.
	Delete(ctx context.Context, id ID) error

	// Get returns a message's envelope.
	Get(ctx context.Context, id ID) (*Envelope, error)
	// Body returns a message's content.
	Body(ctx context.Context, id ID) ([]byte, error)
	// List returns up to limit envelopes with IDs greater than after, in
	// ID (that is, arrival) order.
	List(ctx context.Context, after ID, limit int) ([]*Envelope, error)
	// Stats returns the number of messages held by the store and the
	// earliest time at which one becomes claimable (a due time or the end
	// of a lease); next is zero when none will.
	Stats(ctx context.Context) (n int, next time.Time, err error)
}
