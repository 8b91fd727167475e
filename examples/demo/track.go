package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/queue"
)

// tracker follows the queue through its Observer until the demo's mail is
// at rest: every recipient of the messages it expects delivered, deferred
// or bounced at its first attempt, and every bounce they caused tried too.
// The demo sends its messages one at a time, each once the previous one is
// at rest, so that a bounce belongs to the one message whose recipients
// bounced and have no bounce yet.
type tracker struct {
	mu      sync.Mutex
	changed chan struct{} // signalled (never blocking) after each event
	// want holds the recipients of each expected message, lower-case.
	want map[queue.ID][]string
	// seen holds the latest state of every recipient an event was about,
	// and results the delivery result of its latest attempt.
	seen    map[rcptKey]queue.Recipient
	results map[rcptKey]delivery.Result
	// bounced holds the messages with a bounced recipient; dsns their
	// bounces, by the bounced message's ID.
	bounced map[queue.ID]bool
	dsns    map[queue.ID]*queue.Envelope
}

// rcptKey names one recipient of one message.
type rcptKey struct {
	id   queue.ID
	addr string // lower-case
}

func key(id queue.ID, addr string) rcptKey { return rcptKey{id, strings.ToLower(addr)} }

func newTracker() *tracker {
	return &tracker{changed: make(chan struct{}, 1), want: map[queue.ID][]string{},
		seen: map[rcptKey]queue.Recipient{}, results: map[rcptKey]delivery.Result{},
		bounced: map[queue.ID]bool{}, dsns: map[queue.ID]*queue.Envelope{}}
}

// observer returns the queue observer that feeds the tracker.
func (t *tracker) observer() queue.Observer {
	return queue.Observer{
		Enqueued: func(env *queue.Envelope) {
			if env.Kind == queue.KindDSN {
				dsn := env.Clone()
				t.update(func() { t.bounce(dsn) })
			}
		},
		Delivered: t.attempted,
		Deferred:  t.attempted,
		Bounced:   t.attempted,
	}
}

// bounce files a DSN under the message it reports on: the one with a
// bounced recipient and no DSN yet (the queue writes a message's DSN after
// the round of attempts that bounced it).
func (t *tracker) bounce(dsn *queue.Envelope) {
	for id := range t.bounced {
		if t.dsns[id] == nil {
			t.dsns[id] = dsn
			return
		}
	}
}

// attempted notes the outcome of an attempt on one recipient and the
// delivery result the queue had from it: the session, how TLS was
// authenticated, the requirement the host was held to and why. The
// recipient is copied: the queue goes on changing its own.
func (t *tracker) attempted(id queue.ID, r *queue.Recipient, res *delivery.Result) {
	rc := *r
	t.update(func() {
		k := key(id, rc.Addr)
		t.seen[k] = rc
		if res != nil {
			t.results[k] = *res
		}
		if rc.State == queue.StateBounced {
			t.bounced[id] = true
		}
	})
}

func (t *tracker) update(f func()) {
	t.mu.Lock()
	f()
	t.mu.Unlock()
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// expect names a message whose recipients the tracker waits for.
func (t *tracker) expect(id queue.ID, env *queue.Envelope) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range env.Recipients {
		t.want[id] = append(t.want[id], strings.ToLower(r.Addr))
	}
}

// waiting returns what is not yet at rest, sorted; empty when the demo's
// mail is.
func (t *tracker) waiting() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var left []string
	for id, addrs := range t.want {
		for _, a := range addrs {
			if _, ok := t.seen[key(id, a)]; !ok {
				left = append(left, a)
			}
		}
		// A bounce is due as soon as a recipient bounced (none asked for
		// NOTIFY=NEVER).
		if !t.bounced[id] {
			continue
		}
		dsn := t.dsns[id]
		if dsn == nil {
			left = append(left, "the bounce of message "+string(id))
			continue
		}
		for _, r := range dsn.Recipients {
			if _, ok := t.seen[key(dsn.ID, r.Addr)]; !ok {
				left = append(left, "the bounce to "+r.Addr)
			}
		}
	}
	sort.Strings(left)
	return left
}

// wait returns when the demo's mail is at rest, or with an error naming
// what it still waited for when ctx ends.
func (t *tracker) wait(ctx context.Context) error {
	for {
		left := t.waiting()
		if len(left) == 0 {
			return nil
		}
		select {
		case <-t.changed:
		case <-ctx.Done():
			return fmt.Errorf("still waiting for %s: %w", strings.Join(left, ", "), ctx.Err())
		}
	}
}

// last returns the latest state the queue reported for recipient addr of
// message id.
func (t *tracker) last(id queue.ID, addr string) queue.Recipient {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seen[key(id, addr)]
}

// result returns the delivery result of the latest attempt on recipient
// addr of message id.
func (t *tracker) result(id queue.ID, addr string) delivery.Result {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.results[key(id, addr)]
}

// dsn returns the bounce the queue wrote about message id, or nil.
func (t *tracker) dsn(id queue.ID) *queue.Envelope {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dsns[id]
}
