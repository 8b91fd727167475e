package queue

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/delivery"
)

// lingering is a Deliverer whose attempts start, then take linger to
// notice that their context was cancelled, as a delivery in the middle of
// a DATA write does.
type lingering struct {
	linger  time.Duration
	started chan struct{}
	once    sync.Once
}

func (d *lingering) Deliver(ctx context.Context, m *delivery.Message) ([]delivery.Result, error) {
	d.once.Do(func() { close(d.started) })
	<-ctx.Done()
	time.Sleep(d.linger)
	return nil, ctx.Err()
}

// TestCancelledRunWaitsWithoutSpinning cancels Run while a delivery is
// under way that takes a while to end. The scheduler must wait for it,
// not spin on the cancelled context: the old loop kept ctx.Done() in its
// select, a closed channel that is always ready, and woke hundreds of
// thousands of times a second until the delivery ended.
func TestCancelledRunWaitsWithoutSpinning(t *testing.T) {
	d := &lingering{linger: 300 * time.Millisecond, started: make(chan struct{})}
	q, err := New(Config{Store: new(MemoryStore), Deliverer: d, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	env := &Envelope{From: "a@example.org", Recipients: []Recipient{{Addr: "b@example.com"}}}
	if _, err := q.Enqueue(context.Background(), env, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	select {
	case <-d.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the delivery never started")
	}
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	// A loop that waits wakes for the start, the cancellation, the
	// outcome and the message's final store write: a handful of turns. The
	// bound leaves room for stray timer wake-ups; a spinning loop makes
	// tens of thousands of turns in the 300 ms the delivery lingers.
	if q.turns > 50 {
		t.Errorf("the scheduler loop woke %d times while one cancelled delivery ended; it spins", q.turns)
	}
}

// accepting delivers every recipient and counts the deliveries per
// domain.
type accepting struct {
	mu   sync.Mutex
	seen map[string]int
}

func (d *accepting) Deliver(_ context.Context, m *delivery.Message) ([]delivery.Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var res []delivery.Result
	for _, r := range m.Recipients {
		d.seen[r.Address]++
		res = append(res, delivery.Result{Recipient: r.Address, Status: delivery.Delivered, Code: 250})
	}
	return res, nil
}

func (d *accepting) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seen)
}

// TestWorkerFreedByAStoredMarkIsUsed: with one worker, a message for two
// domains is delivered to both, with nothing else arriving. The first
// domain's delivered mark holds the worker until it is stored; the
// scheduler must then start the waiting domain. It did not (the pump ran
// only after a claim or an outcome, and the message was already claimed),
// so an idle queue left the second domain until its lease ran out, an
// hour later; the crash test's drain hung on it.
func TestWorkerFreedByAStoredMarkIsUsed(t *testing.T) {
	d := &accepting{seen: map[string]int{}}
	q, err := New(Config{Store: new(MemoryStore), Deliverer: d, Workers: 1, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	env := &Envelope{From: "a@example.org", Recipients: []Recipient{{Addr: "b@a.example"}, {Addr: "c@b.example"}, {Addr: "d@c.example"}}}
	if _, err := q.Enqueue(context.Background(), env, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.Run(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for d.count() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 domains delivered after 10 s with the worker free", d.count())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
