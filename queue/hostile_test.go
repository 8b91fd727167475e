package queue_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/internal/testenv"
	"github.com/sealpost/sealpost/queue"
)

// scriptedMX starts a scripted server as the one MX host of domain, whose
// zone must exist.
func (w *world) scriptedMX(tb testing.TB, domain, host string, opts testenv.ScriptOptions) *testenv.ScriptedServer {
	tb.Helper()
	s, err := testenv.StartScripted(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	ip := w.w.NextIP()
	if err := w.w.DNS.Add(host+". 300 IN A "+ip, domain+". 300 IN MX 10 "+host+"."); err != nil {
		tb.Fatal(err)
	}
	w.w.Dialer.Route(ip+":25", s.Addr())
	return s
}

// events counts the queue's verdicts on recipients.
type events struct {
	mu                           sync.Mutex
	delivered, deferred, bounced int
	last                         delivery.Result
}

func (e *events) observe(c *queue.Config) {
	note := func(n *int) func(queue.ID, *queue.Recipient, *delivery.Result) {
		return func(_ queue.ID, _ *queue.Recipient, res *delivery.Result) {
			e.mu.Lock()
			defer e.mu.Unlock()
			*n++
			e.last = *res
		}
	}
	c.Observer.Delivered = note(&e.delivered)
	c.Observer.Deferred = note(&e.deferred)
	c.Observer.Bounced = note(&e.bounced)
}

func (e *events) counts() (delivered, deferred, bounced int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.delivered, e.deferred, e.bounced
}

// TestHostileServerLeavesTheMessageQueued: after an attempt on a server
// that breaks the protocol — a 250 to DATA, every reply twice, a wrong
// final reply, a 421 or a drop at the end of data — the message is still
// queued, its recipient pending with one attempt and a temporary
// diagnostic: not deleted as delivered, not bounced. Once the server
// behaves, the retry delivers it.
func TestHostileServerLeavesTheMessageQueued(t *testing.T) {
	at := func(command, reply string, close bool) func(testenv.ScriptEvent) *testenv.ScriptStep {
		return func(e testenv.ScriptEvent) *testenv.ScriptStep {
			if e.Command == command {
				return &testenv.ScriptStep{Reply: reply, Close: close}
			}
			return nil
		}
	}
	inTurn := []string{"8BITMIME"}
	tests := []struct {
		name     string
		ext      []string
		script   func(testenv.ScriptEvent) *testenv.ScriptStep
		enhanced [3]int
	}{
		{"250 to DATA, pipelined", nil, at("DATA", "250 2.0.0 Ok\r\n", false), [3]int{4, 4, 2}},
		{"250 to DATA, in turn", inTurn, at("DATA", "250 2.0.0 Ok\r\n", false), [3]int{4, 4, 2}},
		{"every reply twice", inTurn, func(e testenv.ScriptEvent) *testenv.ScriptStep {
			return &testenv.ScriptStep{Reply: e.Normal + e.Normal}
		}, [3]int{4, 4, 2}},
		{"221 to the end of data", nil, at(testenv.ScriptEndOfData, "221 2.0.0 Bye\r\n", false), [3]int{4, 4, 2}},
		{"421 to the end of data", nil, at(testenv.ScriptEndOfData, "421 4.3.2 shutting down\r\n", true), [3]int{4, 3, 2}},
		{"dropped at the end of data", nil, at(testenv.ScriptEndOfData, "", true), [3]int{4, 4, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, "hostile.example")
			var healed atomic.Bool
			s := w.scriptedMX(t, "hostile.example", "mx.hostile.example", testenv.ScriptOptions{
				Extensions: tt.ext,
				Script: func(e testenv.ScriptEvent) *testenv.ScriptStep {
					if healed.Load() {
						return nil
					}
					return tt.script(e)
				},
			})
			ev := &events{}
			q := start(t, &queue.MemoryStore{}, w.client, &clock{now: time.Now()}, func(c *queue.Config) {
				c.Now = time.Now
				c.Retry = queue.Backoff{Initial: time.Hour, Max: time.Hour, Jitter: -1}
				ev.observe(c)
			})
			id := enqueue(t, q, &queue.Envelope{From: "alice@sender.example", Recipients: rcpts("bob@hostile.example")})
			waitFor(t, "the first attempt", func() bool { delivered, deferred, bounced := ev.counts(); return delivered+deferred+bounced > 0 })
			// The Observer hears of the verdict before it is stored.
			waitFor(t, "the first attempt stored", func() bool { return attempts(t, q, id, 0) != 0 })

			if delivered, deferred, bounced := ev.counts(); delivered != 0 || deferred != 1 || bounced != 0 {
				t.Fatalf("delivered %d, deferred %d, bounced %d; want only deferred (last %+v)", delivered, deferred, bounced, ev.last)
			}
			env, err := q.Inspect(context.Background(), id)
			if err != nil {
				t.Fatalf("the message is gone after a failed attempt: %v", err)
			}
			r := env.Recipients[0]
			if r.State != queue.StatePending || r.Attempts != 1 || r.Last.Code/100 != 4 || r.Last.Enhanced != tt.enhanced {
				t.Errorf("recipient %+v, want pending after one attempt with %v", r, tt.enhanced)
			}
			all, err := q.List(context.Background(), "", 10)
			if err != nil || len(all) != 1 {
				t.Errorf("queue holds %d messages (%v), want the one: no bounce", len(all), err)
			}

			got := len(s.Messages())
			healed.Store(true)
			if err := q.RetryNow(context.Background(), id); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the retry", gone(q, id))
			if delivered, _, bounced := ev.counts(); delivered != 1 || bounced != 0 {
				t.Errorf("after the retry: delivered %d, bounced %d", delivered, bounced)
			}
			if n := len(s.Messages()); n != got+1 {
				t.Errorf("the server got %d messages in all, %d before the retry", n, got)
			}
		})
	}
}
