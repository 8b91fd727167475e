package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/tlsrpt"
)

// tracker follows the queue through its Observer until the demo's mail is
// at rest: every recipient of the message delivered, deferred or bounced
// at its first attempt, and every bounce it caused tried too.
type tracker struct {
	mu      sync.Mutex
	changed chan struct{} // signalled (never blocking) after each event
	id      queue.ID
	want    map[string]bool // recipients of the message, lower-case
	// seen holds the latest state of every recipient an event was about,
	// and results the delivery result of its latest attempt, by
	// lower-case address (the demo's addresses, and the sender's for the
	// bounce, are all distinct).
	seen    map[string]queue.Recipient
	results map[string]delivery.Result
	dsns    []*queue.Envelope
	bounced int // recipients of the message that bounced
}

func newTracker() *tracker {
	return &tracker{changed: make(chan struct{}, 1), want: map[string]bool{},
		seen: map[string]queue.Recipient{}, results: map[string]delivery.Result{}}
}

// observer returns the queue observer that feeds the tracker.
func (t *tracker) observer() queue.Observer {
	return queue.Observer{
		Enqueued: func(env *queue.Envelope) {
			if env.Kind == queue.KindDSN {
				t.update(func() { t.dsns = append(t.dsns, env.Clone()) })
			}
		},
		Delivered: t.attempted,
		Deferred:  t.attempted,
		Bounced:   t.attempted,
	}
}

// attempted notes the outcome of an attempt on one recipient and the
// delivery result the queue had from it: the session, how TLS was
// authenticated, the requirement the host was held to and why. The
// recipient is copied: the queue goes on changing its own.
func (t *tracker) attempted(id queue.ID, r *queue.Recipient, res *delivery.Result) {
	rc := *r
	t.update(func() {
		addr := strings.ToLower(rc.Addr)
		t.seen[addr] = rc
		if res != nil {
			t.results[addr] = *res
		}
		if id == t.id && rc.State == queue.StateBounced {
			t.bounced++
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

// expect names the message whose recipients the tracker waits for.
func (t *tracker) expect(id queue.ID, env *queue.Envelope) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.id = id
	for _, r := range env.Recipients {
		t.want[strings.ToLower(r.Addr)] = true
	}
}

// waiting returns the recipients not yet at rest, sorted; empty when the
// demo's mail is.
func (t *tracker) waiting() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var left []string
	for a := range t.want {
		if _, ok := t.seen[a]; !ok {
			left = append(left, a)
		}
	}
	// A bounce is written after the round of attempts that bounced: one
	// is due as soon as a recipient bounced (none asked for NOTIFY=NEVER).
	if t.bounced > 0 && len(t.dsns) == 0 {
		left = append(left, "the bounce to the sender")
	}
	for _, d := range t.dsns {
		for _, r := range d.Recipients {
			if _, ok := t.seen[strings.ToLower(r.Addr)]; !ok {
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

// last returns the latest state the queue reported for addr.
func (t *tracker) last(addr string) queue.Recipient {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seen[strings.ToLower(addr)]
}

// result returns the delivery result of the latest attempt on addr.
func (t *tracker) result(addr string) delivery.Result {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.results[strings.ToLower(addr)]
}

// dsn returns the first bounce the queue wrote, or nil.
func (t *tracker) dsn() *queue.Envelope {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.dsns) == 0 {
		return nil
	}
	return t.dsns[0]
}

// sessionLog is the delivery client's TLS-RPT recorder: it hands every
// session to the real recorder and keeps the failures by policy domain.
// A delivery.Result says how the server was authenticated, but not how a
// check that was not enforced failed (MTA-STS testing mode); only the
// TLS-RPT record says that.
type sessionLog struct {
	rec  *tlsrpt.Recorder
	mu   sync.Mutex
	fail map[string][]tlsrpt.Failure
}

// Record implements delivery.Recorder.
func (l *sessionLog) Record(s tlsrpt.Session) {
	l.rec.Record(s)
	if s.Failure == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail == nil {
		l.fail = map[string][]tlsrpt.Failure{}
	}
	l.fail[s.Policy.Domain] = append(l.fail[s.Policy.Domain], *s.Failure)
}

func (l *sessionLog) failures(domain string) []tlsrpt.Failure {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]tlsrpt.Failure(nil), l.fail[domain]...)
}
