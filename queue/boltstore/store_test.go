package boltstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/queue/boltstore"
	"github.com/sealpost/sealpost/queue/storetest"
	"github.com/sealpost/sealpost/sts"
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

func TestPolicyCache(t *testing.T) {
	ctx := context.Background()
	c := open(t, nil).PolicyCache()
	p := sts.StoredPolicy{Domain: "example.com", ID: "1", Text: "version: STSv1\nmode: testing\nmx: *.example.com\nmax_age: 600\n",
		FetchedAt: time.Unix(1700000000, 0).UTC(), Expires: time.Unix(1700000600, 0).UTC()}
	if _, ok, err := c.Get(ctx, "example.com"); ok || err != nil {
		t.Fatalf("Get on an empty cache = %v, %v", ok, err)
	}
	for _, q := range []sts.StoredPolicy{p, {Domain: "a.example", ID: "x"}} {
		if err := c.Put(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := c.Get(ctx, "example.com")
	if err != nil || !ok || got.Text != p.Text || got.ID != "1" || !got.Expires.Equal(p.Expires) {
		t.Errorf("Get = %+v, %v, %v; want %+v", got, ok, err, p)
	}
	list, err := c.List(ctx)
	if err != nil || len(list) != 2 || list[0].Domain != "a.example" {
		t.Errorf("List = %+v, %v; want both, sorted", list, err)
	}
	if err := c.Delete(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "missing.example"); err != nil {
		t.Errorf("Delete of a missing policy = %v, want nil", err)
	}
	if _, ok, _ := c.Get(ctx, "example.com"); ok {
		t.Error("policy still cached after Delete")
	}
}
