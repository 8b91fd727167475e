package boltstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealpost/sealpost/queue"
	bolt "go.etcd.io/bbolt"
)

// benchBody is a typical message: 5 KB.
var benchBody = make([]byte, 5<<10)

func benchEntry(i int64) *queue.Entry {
	id := queue.ID(fmt.Sprintf("bench%015d", i))
	return &queue.Entry{
		Envelope: &queue.Envelope{ID: id, From: "s@example.org", Arrived: time.Now(), Size: int64(len(benchBody)),
			Recipients: []queue.Recipient{{Addr: "r@example.com", NextAttempt: time.Now()}}},
		Body: benchBody,
	}
}

// parallel calls fn b.N times from callers goroutines and reports the rate.
func parallel(b *testing.B, callers int, fn func(i int64) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if err := fn(i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkEnqueue measures durable enqueues per second with 1, 8 and 64
// concurrent callers, against the baseline of one write+fsync per message
// to a plain file on the same disk, and against bbolt's own DB.Batch as
// the group commit.
func BenchmarkEnqueue(b *testing.B) {
	b.Run("baseline=write+fsync", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		parallel(b, 1, func(int64) error {
			if _, err := f.Write(benchBody); err != nil {
				return err
			}
			return f.Sync()
		})
	})
	for _, callers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("committer/callers=%d", callers), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "q.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			parallel(b, callers, func(i int64) error { return s.Enqueue(ctx, benchEntry(i)) })
		})
	}
	for _, callers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("bolt.Batch/callers=%d", callers), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "q.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			parallel(b, callers, func(i int64) error {
				e := benchEntry(i)
				return s.db.Batch(func(tx *bolt.Tx) error { return queueTxn(tx).add(e) })
			})
		})
	}
}
