// Package storetest checks that a queue.Store behaves as the queue relies
// on: the tests every store implementation runs (MemoryStore, boltstore,
// and any later one), so that a new back end is held to the same contract.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/queue"
)

// Open returns an empty store for one test. The test's Cleanup closes it.
type Open func(t *testing.T) queue.Store

// Run runs the contract tests against stores made by open.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s queue.Store)
	}{
		{"enqueued message reads back", testRoundTrip},
		{"duplicate ID is refused", testDuplicate},
		{"claim takes due messages in due order", testClaimOrder},
		{"claim skips held and future messages", testClaimSkips},
		{"lease hides a message until it ends", testLease},
		{"update keeps pending recipients and held flag", testUpdateKeeps},
		{"update deletes finished message and adds bounces atomically", testUpdateDone},
		{"update of deleted message is not found", testUpdateDeleted},
		{"release and recover end leases", testRelease},
		{"modify holds releases and reschedules", testModify},
		{"list pages in ID order", testList},
		{"stats count and next due", testStats},
		{"concurrent enqueues all stored", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// entry makes a message with one pending recipient per address, due at due.
func entry(id string, due time.Time, addrs ...string) *queue.Entry {
	env := &queue.Envelope{ID: queue.ID(id), From: "sender@example.org", Arrived: t0, Size: 5}
	for _, a := range addrs {
		env.Recipients = append(env.Recipients, queue.Recipient{Addr: a, NextAttempt: due})
	}
	return &queue.Entry{Envelope: env, Body: []byte("hello")}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ids(envs []*queue.Envelope) []queue.ID {
	var out []queue.ID
	for _, e := range envs {
		out = append(out, e.ID)
	}
	return out
}

func claimIDs(t *testing.T, s queue.Store, now time.Time, max int) []queue.ID {
	t.Helper()
	envs, err := s.Claim(context.Background(), now, now.Add(time.Hour), max)
	must(t, err)
	return ids(envs)
}

func testRoundTrip(t *testing.T, s queue.Store) {
	ctx := context.Background()
	e := entry("a1", t0, "x@one.example", "y@two.example")
	e.Envelope.EnvID, e.Envelope.Ret, e.Envelope.RequireTLS = "env-1", queue.RetFull, true
	e.Envelope.Recipients[0].Notify = queue.NotifyFailure | queue.NotifyDelay
	e.Envelope.Recipients[1].ORcpt = "rfc822;y@two.example"
	must(t, s.Enqueue(ctx, e))
	e.Envelope.From = "changed@example.org" // the store must have copied
	got, err := s.Get(ctx, "a1")
	must(t, err)
	want := entry("a1", t0, "x@one.example", "y@two.example").Envelope
	want.EnvID, want.Ret, want.RequireTLS = "env-1", queue.RetFull, true
	want.Recipients[0].Notify = queue.NotifyFailure | queue.NotifyDelay
	want.Recipients[1].ORcpt = "rfc822;y@two.example"
	if err := equalEnvelope(got, want); err != nil {
		t.Error(err)
	}
	body, err := s.Body(ctx, "a1")
	must(t, err)
	if string(body) != "hello" {
		t.Errorf("Body = %q, want %q", body, "hello")
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Get(unknown) error = %v, want ErrNotFound", err)
	}
	if _, err := s.Body(ctx, "nope"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Body(unknown) error = %v, want ErrNotFound", err)
	}
}

func testDuplicate(t *testing.T, s queue.Store) {
	ctx := context.Background()
	must(t, s.Enqueue(ctx, entry("a1", t0, "x@one.example")))
	if err := s.Enqueue(ctx, entry("a1", t0, "z@one.example")); err == nil {
		t.Fatal("second Enqueue with the same ID succeeded")
	}
	got, err := s.Get(ctx, "a1")
	must(t, err)
	if got.Recipients[0].Addr != "x@one.example" {
		t.Errorf("duplicate overwrote the first message: %+v", got.Recipients)
	}
}

func testClaimOrder(t *testing.T, s queue.Store) {
	ctx := context.Background()
	must(t, s.Enqueue(ctx, entry("c", t0.Add(3*time.Second), "x@a.example")))
	must(t, s.Enqueue(ctx, entry("a", t0.Add(1*time.Second), "x@a.example")))
	must(t, s.Enqueue(ctx, entry("b", t0.Add(2*time.Second), "x@a.example")))
	if got, want := claimIDs(t, s, t0.Add(5*time.Second), 2), []queue.ID{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("first claim = %v, want %v", got, want)
	}
	if got, want := claimIDs(t, s, t0.Add(5*time.Second), 2), []queue.ID{"c"}; !slices.Equal(got, want) {
		t.Errorf("second claim = %v, want %v", got, want)
	}
}

func testClaimSkips(t *testing.T, s queue.Store) {
	ctx := context.Background()
	held := entry("held", t0, "x@a.example")
	held.Envelope.Held = true
	must(t, s.Enqueue(ctx, held))
	must(t, s.Enqueue(ctx, entry("later", t0.Add(time.Minute), "x@a.example")))
	// The earliest pending recipient decides; the delivered one is ignored.
	mixed := entry("mixed", t0.Add(time.Hour), "x@a.example", "y@b.example")
	mixed.Envelope.Recipients[0].State = queue.StateDelivered
	mixed.Envelope.Recipients[0].NextAttempt = t0.Add(-time.Hour)
	must(t, s.Enqueue(ctx, mixed))
	if got := claimIDs(t, s, t0, 10); len(got) != 0 {
		t.Errorf("claim at t0 = %v, want nothing", got)
	}
	if got, want := claimIDs(t, s, t0.Add(time.Minute), 10), []queue.ID{"later"}; !slices.Equal(got, want) {
		t.Errorf("claim at t0+1m = %v, want %v", got, want)
	}
	if got, want := claimIDs(t, s, t0.Add(time.Hour), 10), []queue.ID{"mixed"}; !slices.Equal(got, want) {
		t.Errorf("claim at t0+1h = %v, want %v", got, want)
	}
}

func testLease(t *testing.T, s queue.Store) {
	ctx := context.Background()
	must(t, s.Enqueue(ctx, entry("m", t0, "x@a.example")))
	envs, err := s.Claim(ctx, t0, t0.Add(10*time.Minute), 10)
	must(t, err)
	if len(envs) != 1 || envs[0].Recipients[0].Addr != "x@a.example" {
		t.Fatalf("claim = %+v, want message m", envs)
	}
	if got := claimIDs(t, s, t0.Add(5*time.Minute), 10); len(got) != 0 {
		t.Errorf("claim during lease = %v, want nothing", got)
	}
	if _, err := s.Claim(ctx, t0, t0, 10); err == nil {
		t.Error("claim with a lease ending now succeeded")
	}
	// A scheduler that died without ending its lease: the message comes back.
	if got, want := claimIDs(t, s, t0.Add(10*time.Minute), 10), []queue.ID{"m"}; !slices.Equal(got, want) {
		t.Errorf("claim after lease = %v, want %v", got, want)
	}
}

func testUpdateKeeps(t *testing.T, s queue.Store) {
	ctx := context.Background()
	must(t, s.Enqueue(ctx, entry("m", t0, "x@a.example", "y@b.example")))
	envs, err := s.Claim(ctx, t0, t0.Add(time.Hour), 1)
	must(t, err)
	// An operator holds the message while it is being delivered.
	must(t, s.Modify(ctx, "m", func(e *queue.Envelope) error { e.Held = true; return nil }))
	rcpts := envs[0].Recipients
	rcpts[0].State, rcpts[0].Attempts = queue.StateDelivered, 1
	rcpts[1].Attempts, rcpts[1].NextAttempt = 1, t0.Add(5*time.Minute)
	rcpts[1].Last = queue.Diagnostic{Code: 451, Enhanced: [3]int{4, 3, 0}, Text: "try later", RemoteMTA: "mx.b.example",
		Session: queue.SessionSummary{MXHost: "mx.b.example", IP: netip.MustParseAddr("2001:db8::25"), TLSVersion: "TLS 1.3", Auth: "DANE-EE", Basis: "DANE"}}
	must(t, s.Update(ctx, "m", rcpts))
	got, err := s.Get(ctx, "m")
	must(t, err)
	if !got.Held {
		t.Error("Update cleared the operator's hold")
	}
	if err := equalRecipients(got.Recipients, rcpts); err != nil {
		t.Error(err)
	}
	if got := claimIDs(t, s, t0.Add(time.Hour), 10); len(got) != 0 {
		t.Errorf("held message claimed: %v", got)
	}
	must(t, s.Modify(ctx, "m", func(e *queue.Envelope) error { e.Held = false; return nil }))
	if got := claimIDs(t, s, t0.Add(4*time.Minute), 10); len(got) != 0 {
		t.Errorf("claim before retry time = %v, want nothing", got)
	}
	if got, want := claimIDs(t, s, t0.Add(5*time.Minute), 10), []queue.ID{"m"}; !slices.Equal(got, want) {
		t.Errorf("claim at retry time = %v, want %v", got, want)
	}
}

func testUpdateDone(t *testing.T, s queue.Store) {
	ctx := context.Background()
	must(t, s.Enqueue(ctx, entry("m", t0, "x@a.example")))
	must(t, s.Enqueue(ctx, entry("other", t0.Add(time.Hour), "x@a.example")))
	envs, err := s.Claim(ctx, t0, t0.Add(time.Hour), 1)
	must(t, err)
	rcpts := envs[0].Recipients
	rcpts[0].State = queue.StateBounced
	dsn := entry("dsn", t0, "sender@example.org")
	dsn.Envelope.From, dsn.Envelope.Kind = "", queue.KindDSN
	dup := entry("other", t0, "again@a.example")
	if err := s.Update(ctx, "m", rcpts, dsn, dup); err == nil {
		t.Fatal("Update adding a message with an existing ID succeeded")
	}
	if _, err := s.Get(ctx, "dsn"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("a failed Update stored part of its change: Get(dsn) = %v", err)
	}
	must(t, s.Update(ctx, "m", rcpts, dsn))
	if _, err := s.Get(ctx, "m"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("finished message still stored: Get error = %v", err)
	}
	if _, err := s.Body(ctx, "m"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("finished message's body still stored: Body error = %v", err)
	}
	got, err := s.Get(ctx, "dsn")
	must(t, err)
	if got.Kind != queue.KindDSN || got.From != "" {
		t.Errorf("added message = %+v", got)
	}
	if got, want := claimIDs(t, s, t0, 10), []queue.ID{"dsn"}; !slices.Equal(got, want) {
		t.Errorf("claim = %v, want %v", got, want)
	}
	if n, _, err := s.Stats(ctx); err != nil || n != 2 {
		t.Errorf("Stats = %d, %v; want 2 messages", n, err)
	}
}

func testUpdateDeleted(t *testing.T, s queue.Store) {
	ctx := context.Background()
	must(t, s.Enqueue(ctx, entry("m", t0, "x@a.example")))
	envs, err := s.Claim(ctx, t0, t0.Add(time.Hour), 1)
	must(t, err)
	must(t, s.Delete(ctx, "m"))
	err = s.Update(ctx, "m", envs[0].Recipients, entry("dsn", t0, "s@example.org"))
	if !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Update after Delete error = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "dsn"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Update of a deleted message stored its additions")
	}
	if err := s.Delete(ctx, "m"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("second Delete error = %v, want ErrNotFound", err)
	}
	if n, next, err := s.Stats(ctx); err != nil || n != 0 || !next.IsZero() {
		t.Errorf("Stats = %d, %v, %v; want empty", n, next, err)
	}
}

func testRelease(t *testing.T, s queue.Store) {
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		must(t, s.Enqueue(ctx, entry(id, t0, "x@a.example")))
	}
	if got := claimIDs(t, s, t0, 10); len(got) != 3 {
		t.Fatalf("claim = %v, want 3 messages", got)
	}
	must(t, s.Release(ctx, "b", "unknown"))
	if got, want := claimIDs(t, s, t0, 10), []queue.ID{"b"}; !slices.Equal(got, want) {
		t.Errorf("claim after Release = %v, want %v", got, want)
	}
	n, err := s.Recover(ctx)
	must(t, err)
	if n != 3 {
		t.Errorf("Recover ended %d leases, want 3", n)
	}
	if got := claimIDs(t, s, t0, 10); len(got) != 3 {
		t.Errorf("claim after Recover = %v, want all 3", got)
	}
}

func testModify(t *testing.T, s queue.Store) {
	ctx := context.Background()
	must(t, s.Enqueue(ctx, entry("m", t0.Add(time.Hour), "x@a.example")))
	must(t, s.Modify(ctx, "m", func(e *queue.Envelope) error {
		e.ID, e.Size = "other", 99 // must be ignored
		for i := range e.Recipients {
			e.Recipients[i].NextAttempt = t0
		}
		return nil
	}))
	got, err := s.Get(ctx, "m")
	must(t, err)
	if got.ID != "m" || got.Size != 5 {
		t.Errorf("Modify changed ID or Size: %+v", got)
	}
	sentinel := errors.New("refused")
	if err := s.Modify(ctx, "m", func(e *queue.Envelope) error { e.Held = true; return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("Modify error = %v, want the change's error", err)
	}
	if got, want := claimIDs(t, s, t0, 10), []queue.ID{"m"}; !slices.Equal(got, want) {
		t.Errorf("claim after retry-now = %v, want %v", got, want)
	}
	if err := s.Modify(ctx, "nope", func(*queue.Envelope) error { return nil }); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Modify(unknown) error = %v, want ErrNotFound", err)
	}
}

func testList(t *testing.T, s queue.Store) {
	ctx := context.Background()
	for i := 9; i >= 0; i-- {
		must(t, s.Enqueue(ctx, entry(fmt.Sprintf("m%d", i), t0, "x@a.example")))
	}
	var all []queue.ID
	var after queue.ID
	for {
		page, err := s.List(ctx, after, 4)
		must(t, err)
		if len(page) == 0 {
			break
		}
		all = append(all, ids(page)...)
		after = page[len(page)-1].ID
	}
	want := []queue.ID{"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"}
	if !slices.Equal(all, want) {
		t.Errorf("List pages = %v, want %v", all, want)
	}
}

func testStats(t *testing.T, s queue.Store) {
	ctx := context.Background()
	must(t, s.Enqueue(ctx, entry("a", t0.Add(time.Hour), "x@a.example")))
	must(t, s.Enqueue(ctx, entry("b", t0.Add(time.Minute), "x@a.example")))
	n, next, err := s.Stats(ctx)
	must(t, err)
	if n != 2 || !next.Equal(t0.Add(time.Minute)) {
		t.Errorf("Stats = %d, %v; want 2, %v", n, next, t0.Add(time.Minute))
	}
	_, err = s.Claim(ctx, t0.Add(time.Minute), t0.Add(2*time.Hour), 1)
	must(t, err)
	if _, next, _ = s.Stats(ctx); !next.Equal(t0.Add(time.Hour)) {
		t.Errorf("next after claiming b = %v, want a's due time %v", next, t0.Add(time.Hour))
	}
}

func testConcurrent(t *testing.T, s queue.Store) {
	ctx := context.Background()
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Enqueue(ctx, entry(fmt.Sprintf("m%03d", i), t0, "x@a.example"))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	count, _, err := s.Stats(ctx)
	must(t, err)
	if count != n {
		t.Errorf("Stats count = %d, want %d", count, n)
	}
	if got := claimIDs(t, s, t0, 2*n); len(got) != n {
		t.Errorf("claimed %d messages, want %d", len(got), n)
	}
}

// equalEnvelope compares envelopes, times by instant.
func equalEnvelope(got, want *queue.Envelope) error {
	g, w := *got, *want
	g.Recipients, w.Recipients = nil, nil
	if !g.Arrived.Equal(w.Arrived) {
		return fmt.Errorf("Arrived = %v, want %v", g.Arrived, w.Arrived)
	}
	g.Arrived, w.Arrived = time.Time{}, time.Time{}
	if fmt.Sprint(g) != fmt.Sprint(w) {
		return fmt.Errorf("envelope = %+v, want %+v", g, w)
	}
	return equalRecipients(got.Recipients, want.Recipients)
}

// equalRecipients compares recipient lists, times by instant.
func equalRecipients(got, want []queue.Recipient) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d recipients, want %d", len(got), len(want))
	}
	for i := range got {
		gr, wr := got[i], want[i]
		if !gr.NextAttempt.Equal(wr.NextAttempt) || !gr.LastAttempt.Equal(wr.LastAttempt) {
			return fmt.Errorf("recipient %d times = %v/%v, want %v/%v", i, gr.NextAttempt, gr.LastAttempt, wr.NextAttempt, wr.LastAttempt)
		}
		gr.NextAttempt, gr.LastAttempt, wr.NextAttempt, wr.LastAttempt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if gr != wr {
			return fmt.Errorf("recipient %d = %+v, want %+v", i, gr, wr)
		}
	}
	return nil
}
