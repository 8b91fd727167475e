package boltstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/queue/boltstore"
	"github.com/sealpost/sealpost/queue/storetest"
)

// open opens a fresh store in the test's temporary directory.
func open(t testing.TB, opts *boltstore.Options) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "state.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) queue.Store { return open(t, nil) })
}

func TestReopenKeepsQueueAndLeases(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := boltstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, id := range []queue.ID{"a", "b"} {
		e := &queue.Entry{Envelope: &queue.Envelope{ID: id, Arrived: now, Size: 4,
			Recipients: []queue.Recipient{{Addr: "x@example.com", NextAttempt: now}}}, Body: []byte("body")}
		if err := s.Enqueue(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if envs, err := s.Claim(ctx, now, now.Add(time.Hour), 1); err != nil || len(envs) != 1 {
		t.Fatalf("Claim = %v, %v", envs, err)
	}
	if _, err := boltstore.Open(path, &boltstore.Options{LockTimeout: 20 * time.Millisecond}); err == nil {
		t.Fatal("a second Open of a file in use succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, &queue.Entry{Envelope: &queue.Envelope{ID: "c"}}); err == nil {
		t.Error("Enqueue on a closed store succeeded")
	}

	s = open2(t, path)
	n, next, err := s.Stats(ctx)
	if err != nil || n != 2 || !next.Equal(now) {
		t.Fatalf("Stats after reopen = %d, %v, %v; want 2, %v", n, next, err, now)
	}
	if envs, _ := s.Claim(ctx, now, now.Add(time.Hour), 10); len(envs) != 1 {
		t.Fatalf("claimable after reopen: %d, want 1 (the other is leased)", len(envs))
	}
	if n, err := s.Recover(ctx); err != nil || n != 2 {
		t.Fatalf("Recover = %d, %v; want 2", n, err)
	}
	if envs, _ := s.Claim(ctx, now, now.Add(time.Hour), 10); len(envs) != 2 {
		t.Errorf("claimable after Recover: %d, want 2", len(envs))
	}
	if body, err := s.Body(ctx, "a"); err != nil || string(body) != "body" {
		t.Errorf("Body after reopen = %q, %v", body, err)
	}
}

func open2(t *testing.T, path string) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
