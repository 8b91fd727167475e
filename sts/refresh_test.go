package sts

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/testenv"
)

func TestRefreshRenewsPoliciesInUse(t *testing.T) {
	w := newWorld(t)
	store := &MemoryStore{}
	w.client.Store = store
	ctx := context.Background()
	w.publish("example.com", "id1", enforcePolicy) // max_age one day
	first := w.lookup("example.com")

	// Not due before half the lifetime.
	w.clock.Advance(11 * time.Hour)
	if n := w.client.RefreshDue(ctx); n != 0 {
		t.Fatalf("RefreshDue renewed %d policies before half their lifetime", n)
	}
	// Due by four fifths of it, when still in use; the id is unchanged
	// but the policy is fetched, which restarts max_age.
	w.clock.Advance(9 * time.Hour)
	w.lookup("example.com")
	if n := w.client.RefreshDue(ctx); n != 1 {
		t.Fatalf("RefreshDue renewed %d policies, want 1", n)
	}
	if n := w.srv.Fetches("example.com"); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	r := w.lookup("example.com")
	expect(t, r, SourceCache, ModeEnforce, nil)
	if !r.Expires.After(first.Expires) || !r.Expires.Equal(w.clock.Now().Add(24*time.Hour)) {
		t.Fatalf("renewed policy expires %v, want a day from now (was %v)", r.Expires, first.Expires)
	}
	if sp, _, _ := store.Get(ctx, "example.com"); !sp.Expires.Equal(r.Expires) {
		t.Fatalf("store holds expiry %v, want %v", sp.Expires, r.Expires)
	}
}

func TestRefreshLeavesUnusedPoliciesToExpire(t *testing.T) {
	w := newWorld(t)
	store := &MemoryStore{}
	w.client.Store = store
	ctx := context.Background()
	w.publish("example.com", "id1", enforcePolicy)
	w.lookup("example.com")
	w.clock.Advance(20 * time.Hour)
	w.client.RefreshDue(ctx) // in use: the fetching Lookup counts
	if n := w.srv.Fetches("example.com"); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	// No Lookup since the renewal: not renewed again, then forgotten.
	w.clock.Advance(20 * time.Hour)
	if n := w.client.RefreshDue(ctx); n != 0 {
		t.Fatalf("an unused policy was renewed")
	}
	w.clock.Advance(5 * time.Hour)
	w.client.RefreshDue(ctx)
	if _, ok, _ := store.Get(ctx, "example.com"); ok {
		t.Fatal("an expired policy is still stored")
	}
	if w.client.cache.get("example.com") != nil {
		t.Fatal("an expired policy is still cached")
	}
}

func TestRefreshFailureKeepsPolicyAndRetries(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.publish("example.com", "id1", enforcePolicy)
	w.lookup("example.com")
	w.serve("example.com", testenv.PolicyResponse{Status: 503})
	w.clock.Advance(20 * time.Hour)
	if n := w.client.RefreshDue(ctx); n != 0 {
		t.Fatalf("RefreshDue renewed %d policies from a failing server", n)
	}
	// Not tried again at once, and the cached policy is still served.
	if n := w.client.RefreshDue(ctx); n != 0 || w.srv.Fetches("example.com") != 2 {
		t.Fatalf("a failed renewal was retried at once (%d fetches)", w.srv.Fetches("example.com"))
	}
	expect(t, w.lookup("example.com"), SourceCache, ModeEnforce, nil)
	// Retried later (within an hour and a fifth), and then it works.
	w.serve("example.com", testenv.PolicyResponse{Body: testingPolicy})
	w.clock.Advance(72 * time.Minute)
	if n := w.client.RefreshDue(ctx); n != 1 {
		t.Fatalf("RefreshDue renewed %d policies on retry, want 1", n)
	}
	expect(t, w.lookup("example.com"), SourceCache, ModeTesting, nil)
}

func TestRefreshWithdrawnRecordIsNotRenewed(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.publish("example.com", "id1", enforcePolicy)
	w.lookup("example.com")
	w.dns.remove(txtName("example.com"))
	w.clock.Advance(20 * time.Hour)
	if n := w.client.RefreshDue(ctx); n != 0 || w.srv.Fetches("example.com") != 1 {
		t.Fatalf("a policy whose TXT record is gone was renewed (%d fetches)", w.srv.Fetches("example.com"))
	}
	expect(t, w.lookup("example.com"), SourceStale, ModeEnforce, ErrNoRecord)
}

func TestRefreshTimesAreRandomisedWithinTheWindow(t *testing.T) {
	now := time.Now()
	seen := map[time.Time]bool{}
	for i := 0; i < 50; i++ {
		e := newEntry(StoredPolicy{Domain: "example.com", ID: "1", FetchedAt: now, Expires: now.Add(100 * time.Hour)}, &Policy{})
		if e.refreshAt.Before(now.Add(50*time.Hour)) || e.refreshAt.After(now.Add(80*time.Hour)) {
			t.Fatalf("refresh at %v after the fetch, want between 50 and 80 hours", e.refreshAt.Sub(now))
		}
		seen[e.refreshAt] = true
	}
	if len(seen) < 40 {
		t.Fatalf("only %d different refresh times in 50 entries", len(seen))
	}
	for _, remaining := range []time.Duration{0, time.Minute, 2 * time.Hour, 30 * 24 * time.Hour} {
		if d := retryDelay(remaining); d < 4*time.Minute || d > 72*time.Minute {
			t.Errorf("retryDelay(%v) = %v, want between 4 and 72 min", remaining, d)
		}
	}
}

func TestRun(t *testing.T) {
	w := newWorld(t)
	w.client.RefreshInterval = 10 * time.Millisecond
	w.publish("example.com", "id1", enforcePolicy)
	w.lookup("example.com")
	w.clock.Advance(20 * time.Hour)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.client.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for w.srv.Fetches("example.com") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not renew the due policy")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
}
