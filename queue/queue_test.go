package queue_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/queue"
)

func TestDeferredTwiceThenDelivered(t *testing.T) {
	var deferred, delivered atomic.Int32
	h := newHarness(t, func(c *queue.Config) {
		c.Observer.Deferred = func(queue.ID, *queue.Recipient, *delivery.Result) { deferred.Add(1) }
		c.Observer.Delivered = func(queue.ID, *queue.Recipient, *delivery.Result) { delivered.Add(1) }
	})
	h.d.set("bob@example.com", delivery.TemporaryFailure, delivery.TemporaryFailure)
	id := enqueue(t, h.q, &queue.Envelope{From: "alice@example.org", Recipients: rcpts("bob@example.com")})

	waitFor(t, "first attempt", func() bool { return attempts(t, h.q, id, 0) == 1 })
	env, _ := h.q.Inspect(context.Background(), id)
	r := env.Recipients[0]
	if want := h.clock.Now().Add(time.Minute); !r.NextAttempt.Equal(want) {
		t.Errorf("first retry at %v, want %v (Initial back-off)", r.NextAttempt, want)
	}
	if r.Last.Code != 451 || r.Last.RemoteMTA != "mx.example.com" {
		t.Errorf("last diagnostic = %+v, want the server's 451", r.Last)
	}
	time.Sleep(20 * time.Millisecond) // several polls: nothing may happen before the retry time
	if n := attempts(t, h.q, id, 0); n != 1 {
		t.Fatalf("attempts before the retry time = %d, want 1", n)
	}

	h.clock.Advance(time.Minute)
	waitFor(t, "second attempt", func() bool { return attempts(t, h.q, id, 0) == 2 })
	env, _ = h.q.Inspect(context.Background(), id)
	if want := h.clock.Now().Add(2 * time.Minute); !env.Recipients[0].NextAttempt.Equal(want) {
		t.Errorf("second retry at %v, want %v (doubled)", env.Recipients[0].NextAttempt, want)
	}

	h.clock.Advance(2 * time.Minute)
	waitFor(t, "delivery", gone(h.q, id))
	if got := len(h.d.to("bob@example.com")); got != 1 {
		t.Errorf("delivered %d times, want 1", got)
	}
	if deferred.Load() != 2 || delivered.Load() != 1 {
		t.Errorf("observer saw %d deferrals and %d deliveries, want 2 and 1", deferred.Load(), delivered.Load())
	}
	if got := len(h.d.to("alice@example.org")); got != 0 {
		t.Errorf("%d DSNs to the sender, want none (no NOTIFY=SUCCESS)", got)
	}
}

func TestPermanentFailureBounces(t *testing.T) {
	h := newHarness(t, nil)
	h.d.set("gone@example.com", delivery.PermanentFailure)
	id := enqueue(t, h.q, &queue.Envelope{
		From: "alice@example.org", EnvID: "env-42",
		Recipients: []queue.Recipient{
			{Addr: "gone@example.com", ORcpt: "rfc822;Gone@Example.com"},
			{Addr: "bob@example.com"},
		},
	})
	waitFor(t, "the DSN", func() bool { return len(h.d.to("alice@example.org")) == 1 })
	waitFor(t, "message removed", gone(h.q, id))
	m := h.d.to("alice@example.org")[0]
	if m.From != "" {
		t.Errorf("DSN sent from <%s>, want the null sender", m.From)
	}
	d := parseDSN(t, m.Body)
	dateField(t, "Date", d.Header.Get("Date"))
	if got := d.Header.Get("Subject"); got != "Undelivered Mail Returned to Sender" {
		t.Errorf("Subject = %q", got)
	}
	if got := d.Header.Get("Auto-Submitted"); got != "auto-replied" {
		t.Errorf("Auto-Submitted = %q, want auto-replied (RFC 3834)", got)
	}
	checkFields(t, "per-message", d.PerMessage, map[string]string{
		"Reporting-MTA": "dns; mta.sealpost.test", "Original-Envelope-Id": "env-42", "Arrival-Date": "*",
	})
	if got := dateField(t, "Arrival-Date", d.PerMessage.Get("Arrival-Date")); !got.Equal(h.clock.Now().Truncate(time.Second)) {
		t.Errorf("Arrival-Date = %v, want %v", got, h.clock.Now())
	}
	if len(d.Recipients) != 1 {
		t.Fatalf("DSN reports %d recipients, want only the failed one", len(d.Recipients))
	}
	r := d.recipient(t, "gone@example.com")
	checkFields(t, "recipient", r, map[string]string{
		"Original-Recipient": "rfc822; Gone@Example.com",
		"Action":             "failed",
		"Status":             "5.1.1",
		"Remote-MTA":         "dns; mx.example.com",
		// The reply's line break must not become a header of its own.
		"Diagnostic-Code":   "smtp; 550 5.1.1 no such user  Injected: header",
		"Last-Attempt-Date": "*",
		"Injected":          "-",
	})
	dateField(t, "Last-Attempt-Date", r.Get("Last-Attempt-Date"))
	if d.ReturnedType != "text/rfc822-headers" {
		t.Errorf("returned part is %s, want text/rfc822-headers (no RET=FULL)", d.ReturnedType)
	}
	if !strings.Contains(string(d.Returned), "Message-ID: <1@example.org>") || strings.Contains(string(d.Returned), "Hello.") {
		t.Errorf("returned headers = %q, want the original header without the body", d.Returned)
	}
	if !strings.Contains(d.Human, "gone@example.com") {
		t.Errorf("human-readable part does not name the recipient: %q", d.Human)
	}
	if got := len(h.d.to("bob@example.com")); got != 1 {
		t.Errorf("the other recipient got %d copies, want 1", got)
	}
}

func TestBounceWithRetFullReturnsMessage(t *testing.T) {
	h := newHarness(t, nil)
	h.d.set("gone@example.com", delivery.PermanentFailure)
	enqueue(t, h.q, &queue.Envelope{From: "alice@example.org", Ret: queue.RetFull, Recipients: rcpts("gone@example.com")})
	waitFor(t, "the DSN", func() bool { return len(h.d.to("alice@example.org")) == 1 })
	d := parseDSN(t, h.d.to("alice@example.org")[0].Body)
	if d.ReturnedType != "message/rfc822" || !strings.Contains(string(d.Returned), "Hello.") {
		t.Errorf("returned part %s = %q, want the whole message (RFC 3461 §4.3 RET=FULL)", d.ReturnedType, d.Returned)
	}
}

func TestBounceOfREQUIRETLSMessageRequiresTLS(t *testing.T) {
	h := newHarness(t, nil)
	h.d.set("gone@example.com", delivery.PermanentFailure)
	h.d.set("plain@example.com", delivery.PermanentFailure)
	enqueue(t, h.q, &queue.Envelope{From: "alice@example.org", RequireTLS: true, Recipients: rcpts("gone@example.com")})
	enqueue(t, h.q, &queue.Envelope{From: "carol@example.org", Recipients: rcpts("plain@example.com")})
	waitFor(t, "the DSNs", func() bool {
		return len(h.d.to("alice@example.org")) == 1 && len(h.d.to("carol@example.org")) == 1
	})
	// RFC 8689 §5: the bounce carries the original's header, which the
	// sender wanted kept off unprotected links, so it asks for the same.
	if !h.d.to("alice@example.org")[0].RequireTLS {
		t.Error("the DSN of a REQUIRETLS message was queued without REQUIRETLS")
	}
	if h.d.to("carol@example.org")[0].RequireTLS {
		t.Error("the DSN of an ordinary message was queued with REQUIRETLS")
	}
}

func TestExpiryBounces(t *testing.T) {
	h := newHarness(t, func(c *queue.Config) { c.MaxAge = 2 * time.Hour })
	h.d.set("slow@example.com", delivery.TemporaryFailure, delivery.TemporaryFailure, delivery.TemporaryFailure,
		delivery.TemporaryFailure, delivery.TemporaryFailure, delivery.TemporaryFailure, delivery.TemporaryFailure, delivery.TemporaryFailure)
	id := enqueue(t, h.q, &queue.Envelope{From: "alice@example.org", Recipients: rcpts("slow@example.com")})
	waitFor(t, "first attempt", func() bool { return attempts(t, h.q, id, 0) == 1 })

	// Retries come at 1, 2, 4, ... minutes, then one last attempt at the
	// expiry time, which bounces.
	for range 20 {
		env, err := h.q.Inspect(context.Background(), id)
		if errors.Is(err, queue.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		r := env.Recipients[0]
		if r.NextAttempt.After(env.Arrived.Add(2 * time.Hour)) {
			t.Fatalf("retry at %v is after expiry %v", r.NextAttempt, env.Arrived.Add(2*time.Hour))
		}
		h.clock.Advance(r.NextAttempt.Sub(h.clock.Now()))
		n := r.Attempts
		waitFor(t, "next attempt", func() bool { a := attempts(t, h.q, id, 0); return a == -1 || a > n })
	}
	waitFor(t, "the DSN", func() bool { return len(h.d.to("alice@example.org")) == 1 })
	d := parseDSN(t, h.d.to("alice@example.org")[0].Body)
	// RFC 3463 X.4.7: the code of the actual problem, not "expired".
	checkFields(t, "expired recipient", d.recipient(t, "slow@example.com"), map[string]string{
		"Action": "failed", "Status": "4.7.1", "Diagnostic-Code": "smtp; 451 4.7.1 greylisted, try again",
	})
}

func TestNullSenderGetsNoDSN(t *testing.T) {
	var bounced atomic.Int32
	h := newHarness(t, func(c *queue.Config) {
		c.Observer.Bounced = func(queue.ID, *queue.Recipient, *delivery.Result) { bounced.Add(1) }
	})
	h.d.set("gone@example.com", delivery.PermanentFailure)
	id := enqueue(t, h.q, &queue.Envelope{From: "", Recipients: rcpts("gone@example.com")})
	waitFor(t, "bounce", gone(h.q, id))
	if bounced.Load() != 1 {
		t.Errorf("observer saw %d bounces, want 1", bounced.Load())
	}
	time.Sleep(20 * time.Millisecond)
	if n, _, _ := h.store.Stats(context.Background()); n != 0 {
		t.Errorf("%d messages queued, want none: no DSN to the null sender", n)
	}
	if got := h.d.delivered(); len(got) != 0 {
		t.Errorf("deliveries: %+v, want none", got)
	}
}

func TestNotify(t *testing.T) {
	tests := []struct {
		name   string
		notify queue.Notify
		status delivery.Status
		warn   bool
		dsn    bool   // the next hop supports DSN and took the request on
		action string // "" for no DSN
	}{
		{"NEVER suppresses the failure DSN", queue.NotifyNever, delivery.PermanentFailure, false, false, ""},
		{"SUCCESS alone suppresses the failure DSN", queue.NotifySuccess, delivery.PermanentFailure, false, false, ""},
		{"SUCCESS relayed to a next hop without DSN reports relayed (RFC 3461 §5.2.2)", queue.NotifySuccess, delivery.Delivered, false, false, "relayed"},
		{"SUCCESS relayed to a next hop with DSN is its to report (RFC 3461 §5.2.1)", queue.NotifySuccess, delivery.Delivered, false, true, ""},
		{"SUCCESS,FAILURE relayed to a next hop with DSN is its to report", queue.NotifySuccess | queue.NotifyFailure, delivery.Delivered, false, true, ""},
		{"FAILURE does not report success", queue.NotifyFailure, delivery.Delivered, false, false, ""},
		{"DELAY reports a delay warning", queue.NotifyDelay, delivery.TemporaryFailure, true, false, "delayed"},
		{"no NOTIFY reports a delay warning", 0, delivery.TemporaryFailure, true, false, "delayed"},
		{"FAILURE alone has no delay warning", queue.NotifyFailure, delivery.TemporaryFailure, true, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *queue.Config) {
				if tc.warn {
					c.DelayWarning = time.Minute
				}
			})
			h.d.onResult(func(res *delivery.Result) { res.Session.DSN = tc.dsn })
			h.d.set("bob@example.com", tc.status, tc.status, tc.status)
			id := enqueue(t, h.q, &queue.Envelope{From: "alice@example.org",
				Recipients: []queue.Recipient{{Addr: "bob@example.com", Notify: tc.notify}}})
			waitFor(t, "attempt", func() bool { return attempts(t, h.q, id, 0) != 0 })
			if tc.warn {
				// The warning is due at the first deferral a minute after
				// arrival.
				time.Sleep(20 * time.Millisecond)
				if n := len(h.d.to("alice@example.org")); n != 0 {
					t.Fatalf("%d DSNs before DelayWarning passed, want none", n)
				}
				h.clock.Advance(time.Minute)
				waitFor(t, "second attempt", func() bool { return attempts(t, h.q, id, 0) == 2 })
			}
			if tc.action == "" {
				if tc.status == delivery.TemporaryFailure {
					time.Sleep(20 * time.Millisecond)
				} else {
					// A DSN is stored in the same change that removes
					// the message: once it is gone, a DSN is either
					// queued or delivered.
					waitFor(t, "message done", gone(h.q, id))
					if n, _, _ := h.store.Stats(context.Background()); n != 0 {
						t.Fatalf("%d messages queued, want no DSN", n)
					}
				}
				if n := len(h.d.to("alice@example.org")); n != 0 {
					t.Fatalf("%d DSNs sent, want none", n)
				}
				return
			}
			waitFor(t, "the DSN", func() bool { return len(h.d.to("alice@example.org")) == 1 })
			d := parseDSN(t, h.d.to("alice@example.org")[0].Body)
			r := d.recipient(t, "bob@example.com")
			checkFields(t, "recipient", r, map[string]string{"Action": tc.action})
			if tc.action == "delayed" {
				checkFields(t, "recipient", r, map[string]string{"Status": "4.7.1", "Will-Retry-Until": "*"})
				dateField(t, "Will-Retry-Until", r.Get("Will-Retry-Until"))
				// A further deferral sends no second warning.
				h.clock.Advance(2 * time.Minute)
				waitFor(t, "third attempt", func() bool { return attempts(t, h.q, id, 0) == 3 })
				time.Sleep(20 * time.Millisecond)
				if n := len(h.d.to("alice@example.org")); n != 1 {
					t.Errorf("%d DSNs after the second deferral, want 1", n)
				}
			}
		})
	}
}

func TestMixedDomainsOneDeliveryPerDomain(t *testing.T) {
	h := newHarness(t, nil)
	h.d.set("c@two.example", delivery.TemporaryFailure)
	id := enqueue(t, h.q, &queue.Envelope{From: "alice@example.org",
		Recipients: rcpts("a@one.example", "b@two.example", "c@two.example", "d@One.Example")})
	waitFor(t, "first round", func() bool { return attempts(t, h.q, id, 2) == 1 })
	got := map[string][]string{}
	for _, m := range h.d.delivered() {
		for _, r := range m.Rcpts {
			d := strings.ToLower(r.Address[strings.IndexByte(r.Address, '@')+1:])
			got[d] = append(got[d], r.Address)
		}
	}
	if fmt.Sprint(got["one.example"]) != "[a@one.example d@One.Example]" || fmt.Sprint(got["two.example"]) != "[b@two.example]" {
		t.Errorf("deliveries = %v, want one per domain with its recipients", got)
	}
	if n := len(h.d.delivered()); n != 2 {
		t.Errorf("%d deliveries, want 2 (one per domain)", n)
	}
	env, _ := h.q.Inspect(context.Background(), id)
	states := []queue.State{env.Recipients[0].State, env.Recipients[1].State, env.Recipients[2].State, env.Recipients[3].State}
	if fmt.Sprint(states) != "[delivered delivered pending delivered]" {
		t.Errorf("states = %v", states)
	}
	// Only the pending recipient is retried.
	h.clock.Advance(time.Minute)
	waitFor(t, "retry", gone(h.q, id))
	if last := h.d.delivered()[2]; len(last.Rcpts) != 1 || last.Rcpts[0].Address != "c@two.example" {
		t.Errorf("retry went to %+v, want only c@two.example", last.Rcpts)
	}
}

func TestDomainLimitUnderLoad(t *testing.T) {
	h := newHarness(t, func(c *queue.Config) {
		c.Workers, c.DomainWorkers = 8, 2
		c.DomainLimits = map[string]int{"big.example": 3}
	})
	h.d.delay = 2 * time.Millisecond
	var ids []queue.ID
	for i := range 60 {
		domain := []string{"slow.example", "big.example", "other.example"}[i%3]
		ids = append(ids, enqueue(t, h.q, &queue.Envelope{From: "alice@example.org", Recipients: rcpts(fmt.Sprintf("u%d@%s", i, domain))}))
	}
	for _, id := range ids {
		waitFor(t, "delivery", gone(h.q, id))
	}
	h.d.mu.Lock()
	peak := h.d.peak
	h.d.mu.Unlock()
	// The limits must be reached (the test could not fail otherwise) and
	// never exceeded.
	if peak["slow.example"] != 2 || peak["other.example"] != 2 || peak["big.example"] != 3 {
		t.Errorf("peak concurrency per domain = %v, want 2, 2 and 3", peak)
	}
}

func TestOperatorHoldReleaseRetryDelete(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	h.d.set("bob@example.com", delivery.TemporaryFailure)
	held := enqueue(t, h.q, &queue.Envelope{From: "alice@example.org", Held: true, Recipients: rcpts("carol@example.com")})
	id := enqueue(t, h.q, &queue.Envelope{From: "alice@example.org", Recipients: rcpts("bob@example.com")})
	waitFor(t, "first attempt", func() bool { return attempts(t, h.q, id, 0) == 1 })
	if n := attempts(t, h.q, held, 0); n != 0 {
		t.Fatalf("held message attempted %d times", n)
	}
	list, err := h.q.List(ctx, "", 10)
	if err != nil || len(list) != 2 || list[0].ID != held || list[1].ID != id {
		t.Fatalf("List = %v, %v; want both messages in arrival order", list, err)
	}

	if err := h.q.RetryNow(ctx, held); !errors.Is(err, queue.ErrHeld) {
		t.Errorf("RetryNow on a held message = %v, want ErrHeld", err)
	}
	if err := h.q.Release(ctx, held); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "released message delivered", gone(h.q, held))

	if err := h.q.RetryNow(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "retry now", gone(h.q, id)) // the script is used up: delivered

	h.d.set("dave@example.com", delivery.TemporaryFailure)
	id = enqueue(t, h.q, &queue.Envelope{From: "alice@example.org", Recipients: rcpts("dave@example.com")})
	waitFor(t, "attempt", func() bool { return attempts(t, h.q, id, 0) == 1 })
	if err := h.q.Hold(ctx, id); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Hour)
	time.Sleep(20 * time.Millisecond)
	if n := attempts(t, h.q, id, 0); n != 1 {
		t.Errorf("held message attempted again: %d attempts", n)
	}
	if err := h.q.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := h.q.Delete(ctx, id); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	if n := len(h.d.to("alice@example.org")); n != 0 {
		t.Errorf("%d DSNs, want none: deleting sends none", n)
	}
}

// blocking is a Deliverer that waits until its context ends.
type blocking struct{ started chan struct{} }

func (b *blocking) Deliver(ctx context.Context, m *delivery.Message) ([]delivery.Result, error) {
	b.started <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestShutdownReturnsInFlightWork(t *testing.T) {
	store := &queue.MemoryStore{}
	b := &blocking{started: make(chan struct{}, 10)}
	q, err := queue.New(queue.Config{Store: store, Deliverer: b, PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	id := enqueue(t, q, &queue.Envelope{From: "alice@example.org", Recipients: rcpts("bob@example.com")})
	done := make(chan error, 1)
	go func() { done <- q.Run(context.Background()) }()
	<-b.started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := q.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the deadline (the delivery never finished)", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Run after Shutdown = %v, want nil", err)
	}
	env, err := q.Inspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if r := env.Recipients[0]; r.State != queue.StatePending || r.Attempts != 0 {
		t.Errorf("recipient after a cut-short delivery = %+v, want pending with no attempt counted", r)
	}
	// The message is not leased any more: a new run takes it at once.
	envs, err := store.Claim(context.Background(), time.Now(), time.Now().Add(time.Hour), 10)
	if err != nil || len(envs) != 1 {
		t.Errorf("claimable after shutdown: %d, %v; want the message", len(envs), err)
	}
}

func TestEnqueueRejects(t *testing.T) {
	q, err := queue.New(queue.Config{Store: &queue.MemoryStore{}, MaxMessageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  *queue.Envelope
		body string
	}{
		{"no recipients", &queue.Envelope{From: "a@example.org"}, "x"},
		{"recipient without domain", &queue.Envelope{Recipients: rcpts("bob")}, "x"},
		{"recipient with line break", &queue.Envelope{Recipients: rcpts("bob@example.com\r\nRCPT TO:<x@y>")}, "x"},
		{"sender with angle bracket", &queue.Envelope{From: "<a@example.org>", Recipients: rcpts("b@example.com")}, "x"},
		{"NOTIFY NEVER with others", &queue.Envelope{Recipients: []queue.Recipient{{Addr: "b@example.com", Notify: queue.NotifyNever | queue.NotifyDelay}}}, "x"},
		{"over the size limit", &queue.Envelope{Recipients: rcpts("b@example.com")}, strings.Repeat("x", 101)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := q.Enqueue(context.Background(), tc.env, []byte(tc.body))
			var re *queue.RejectError
			if !errors.As(err, &re) || re.Temporary() {
				t.Errorf("Enqueue = %v, want a permanent *RejectError", err)
			}
		})
	}
}

func TestParseNotify(t *testing.T) {
	tests := []struct {
		in   string
		want queue.Notify
		ok   bool
	}{
		{"NEVER", queue.NotifyNever, true},
		{"success,Delay", queue.NotifySuccess | queue.NotifyDelay, true},
		{"FAILURE", queue.NotifyFailure, true},
		{"NEVER,FAILURE", 0, false},
		{"SOMETIMES", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		got, err := queue.ParseNotify(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseNotify(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestRunTwice(t *testing.T) {
	h := newHarness(t, nil)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(10 * time.Millisecond)
		if err := h.q.Run(context.Background()); !errors.Is(err, queue.ErrRunning) {
			t.Errorf("second Run = %v, want ErrRunning", err)
		}
	}()
	wg.Wait()
}
