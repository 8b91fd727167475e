package boltstore

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sealpost/sealpost/queue"
	bolt "go.etcd.io/bbolt"
)

// TestAppendedMessagesFillTheirPages: IDs grow with arrival, so messages
// are appended to msg and body; their pages must end up nearly full, not
// half empty as bbolt's default split point for random inserts leaves them
// (twice the file and a deeper tree for a long queue).
func TestAppendedMessagesFillTheirPages(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "q.db"), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	// One caller, so that the layout is the same in every run (concurrent
	// callers append nearly in order, and fill pages about as well).
	for i := range 500 {
		if err := s.Enqueue(context.Background(), message(i, t0)); err != nil {
			t.Fatal(err)
		}
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMsg, bucketBody} {
			st := tx.Bucket(name).Stats()
			fill := float64(st.LeafInuse) / float64(st.LeafPageN*tx.DB().Info().PageSize)
			if fill < 0.7 {
				t.Errorf("%s: %d leaf pages %.0f%% full, want at least 70%% (bbolt alone: 50%%)", name, st.LeafPageN, 100*fill)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func message(i int, t0 time.Time) *queue.Entry {
	body := []byte(fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i))
	return &queue.Entry{Body: body, Envelope: &queue.Envelope{
		ID: queue.ID(fmt.Sprintf("m%019d", i)), From: "sender@example.org", Arrived: t0, Size: int64(len(body)),
		Recipients: []queue.Recipient{{Addr: fmt.Sprintf("rcpt%d@example.com", i), NextAttempt: t0}},
	}}
}
