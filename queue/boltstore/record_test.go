package boltstore

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/queue"
	bolt "go.etcd.io/bbolt"
)

// TestDamagedRecord: a record whose bytes are sound to bbolt but do not
// decode must not stop the queue: Claim hands out the others and sets it
// aside, Recover (which Run calls before anything else) ends the other
// leases, Get names it, Delete removes it.
func TestDamagedRecord(t *testing.T) {
	bad := message(1, testT0).Envelope.ID
	tests := []struct {
		name   string
		damage func(tx *bolt.Tx) error
		what   string // in Get's error; "" when Get finds nothing
		intact bool   // the message itself is sound
	}{
		{"invalid JSON", func(tx *bolt.Tx) error { return tx.Bucket(bucketMsg).Put([]byte(bad), []byte(`{"Env":`)) }, "invalid JSON", false},
		{"no envelope", func(tx *bolt.Tx) error { return tx.Bucket(bucketMsg).Put([]byte(bad), []byte(`{"Env":null}`)) }, "no envelope", false},
		{"JSON null", func(tx *bolt.Tx) error { return tx.Bucket(bucketMsg).Put([]byte(bad), []byte(`null`)) }, "no envelope", false},
		{"another message's envelope", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMsg).Put([]byte(bad), []byte(`{"Env":{"ID":"x"}}`))
		}, "envelope of message", false},
		{"content missing", func(tx *bolt.Tx) error { return tx.Bucket(bucketBody).Delete([]byte(bad)) }, "", false},
		{"record missing", func(tx *bolt.Tx) error { return tx.Bucket(bucketMsg).Delete([]byte(bad)) }, "", false},
		{"index key too short", func(tx *bolt.Tx) error { return tx.Bucket(bucketDue).Put([]byte{0}, nil) }, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "state.db")
			s, err := Open(path, &Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for i := range 5 {
				if err := s.Enqueue(ctx, message(i, testT0)); err != nil {
					t.Fatal(err)
				}
			}
			// Lease two (the bad one among them), as a crashed run would have.
			if envs, err := s.Claim(ctx, testT0, testT0.Add(time.Hour), 2); err != nil || len(envs) != 2 {
				t.Fatalf("Claim = %d, %v", len(envs), err)
			}
			if err := s.db.Update(tt.damage); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Recover(ctx); err != nil {
				t.Fatalf("Recover = %v; one record must not stop the queue from starting", err)
			}
			if _, _, err := s.Stats(ctx); err != nil {
				t.Fatalf("Stats = %v", err)
			}
			envs, err := s.Claim(ctx, testT0.Add(2*time.Hour), testT0.Add(3*time.Hour), 10)
			if err != nil {
				t.Fatalf("Claim = %v; one record must not stop the queue", err)
			}
			sound := 4
			if tt.intact {
				sound = 5
			}
			if len(envs) != sound {
				t.Errorf("Claim handed out %d messages, want the %d sound ones", len(envs), sound)
			}
			for _, env := range envs {
				if env.ID == bad && !tt.intact {
					t.Errorf("Claim handed out the damaged message")
				}
			}
			if again, err := s.Claim(ctx, testT0.Add(4*time.Hour), testT0.Add(5*time.Hour), 10); err != nil || len(again) != sound {
				t.Errorf("second Claim = %d, %v; want the %d sound ones again", len(again), err, sound)
			}
			if _, err := s.List(ctx, "", 10); err != nil {
				t.Errorf("List = %v", err)
			}
			_, err = s.Get(ctx, bad)
			if tt.what != "" {
				var ce *CorruptError
				if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.what) ||
					!strings.Contains(err.Error(), "queue.msg") || !strings.Contains(err.Error(), string(bad)) || !strings.Contains(err.Error(), path) {
					t.Errorf("Get = %v; want an ErrCorrupt naming the file, queue.msg, %s and %q", err, bad, tt.what)
				}
				damaged, err := s.Damaged(ctx)
				if err != nil || len(damaged) != 1 || string(damaged[0].Key) != string(bad) {
					t.Errorf("Damaged = %v, %v; want %s", damaged, err, bad)
				}
			}
			if err := s.Delete(ctx, bad); err != nil && err != queue.ErrNotFound {
				t.Errorf("Delete of the damaged message = %v", err)
			}
			if damaged, _ := s.Damaged(ctx); len(damaged) != 0 {
				t.Errorf("Damaged after Delete = %v", damaged)
			}
		})
	}
}

func TestDamagedPolicy(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fillStore(t, s, 1)
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketSTS).Put([]byte("d3.example"), []byte("{")) }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PolicyCache().Get(ctx, "d3.example"); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "sts.policies") {
		t.Errorf("Get = %v; want ErrCorrupt naming sts.policies", err)
	}
	if list, err := s.PolicyCache().List(ctx); err != nil || len(list) != 19 {
		t.Errorf("List = %d policies, %v; want the 19 sound ones", len(list), err)
	}
}
