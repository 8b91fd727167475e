package boltstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/queue"
	bolt "go.etcd.io/bbolt"
)

// BenchmarkSchedule measures the store's part of scheduling one message —
// finding it due (Claim) and recording the outcome of its attempt (Update)
// — with 1k, 100k and 1M other messages queued, so that the cost per
// message can be seen to stay flat. 1000 "hot" messages are retried over
// and over; the rest wait for a far retry time, as a large deferred queue
// does. The store runs without fsync here: the sync costs the same
// whatever the queue's length (BenchmarkEnqueue measures it), and would
// hide the part that could grow.
//
// Two ways of storing the outcomes of a claimed batch of 100:
//   - commit=shared: concurrently, as the scheduler does, so that they share
//     commits in the committer. How many share one depends on how the
//     goroutines happen to meet (commits/op), which makes ns/op noisy on a
//     loaded machine: fewer outcomes per commit, more pages per message.
//   - commit=each: one after the other, one commit per outcome: the worst
//     case for tree depth (every commit writes the path from each touched
//     leaf to the root) and the same work in every run.
//
// Besides time, it reports bbolt's own counters per message (nodes read
// into memory, pages written, page splits; free pages at the end), which no other process
// on the machine disturbs.
//
// One run of all three (SEALPOST_BENCH_1M=1 -benchtime 3s) on the 2-core
// development VM (Go 1.26, bbolt 1.4.3), others' tests running meanwhile
// (load average 3):
//
//	queued  commit  ns/op    commits/op  nodes/op  pagewrites/op  disk-B/msg
//	1k      shared   32 386  0.042        0.62      0.64          (8401)
//	100k    shared   32 750  0.038        0.64      0.66           572
//	1M      shared   29 773  0.032        0.65      0.67           433
//	1k      each    127 491  1.01         7.80      8.52
//	100k    each    147 779  1.01         8.76      9.48
//	1M      each    129 178  1.01        10.79     11.51
//
// Flat: nodes/op grows by one node per tree level (msg and due each gain
// a level from 1k to 1M), and only when a commit carries one outcome;
// ns/op stays within the machine's noise. (disk-B/msg at 1k is the file's
// minimum size spread over 2000 messages.)
//
// The 1M case takes half a minute to set up and 0.8 GB of disk; it runs
// only with SEALPOST_BENCH_1M=1.
func BenchmarkSchedule(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("queued=%d", n), func(b *testing.B) {
			if n >= 1_000_000 && os.Getenv("SEALPOST_BENCH_1M") == "" {
				b.Skip("set SEALPOST_BENCH_1M=1 to run the 1M case")
			}
			// Set up once for both modes and every b.N they are run with.
			s, err := Open(filepath.Join(b.TempDir(), "q.db"), &Options{NoSync: true, InitialMmapSize: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			t0 := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
			prefill(b, s, n, t0)
			size, err := s.Size()
			if err != nil {
				b.Fatal(err)
			}
			now := t0
			for _, serial := range []bool{false, true} {
				name := "commit=shared"
				if serial {
					name = "commit=each"
				}
				b.Run(name, func(b *testing.B) {
					now = schedule(b, s, now, serial)
					b.ReportMetric(float64(size)/float64(n+1000), "disk-B/msg")
				})
			}
		})
	}
}

// schedule claims and updates b.N hot messages, 100 at a time, from now on,
// and returns the time it got to.
func schedule(b *testing.B, s *Store, now time.Time, serial bool) time.Time {
	ctx := context.Background()
	before, firstTx := s.db.Stats(), lastTxID(b, s)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		now = now.Add(time.Millisecond)
		envs, err := s.Claim(ctx, now, now.Add(time.Hour), min(100, b.N-done))
		if err != nil {
			b.Fatal(err)
		}
		if len(envs) == 0 {
			b.Fatal("nothing due")
		}
		update := func(e *queue.Envelope) {
			e.Recipients[0].Attempts++
			e.Recipients[0].NextAttempt = now
			if err := s.Update(ctx, e.ID, e.Recipients); err != nil {
				b.Error(err)
			}
		}
		var wg sync.WaitGroup
		for _, e := range envs {
			if serial {
				update(e)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				update(e)
			}()
		}
		wg.Wait()
		done += len(envs)
	}
	b.StopTimer()
	after := s.db.Stats()
	tx := after.TxStats.Sub(&before.TxStats)
	per := func(v int64) float64 { return float64(v) / float64(b.N) }
	b.ReportMetric(per(int64(lastTxID(b, s)-firstTx)), "commits/op")
	b.ReportMetric(per(tx.GetNodeCount()), "nodes/op")
	b.ReportMetric(per(tx.GetWrite()), "pagewrites/op")
	b.ReportMetric(per(tx.GetSplit()), "splits/op")
	b.ReportMetric(float64(after.FreePageN), "freepages")
	return now
}

// lastTxID returns the ID of the last committed write transaction: bbolt
// numbers them one by one.
func lastTxID(b *testing.B, s *Store) int {
	var id int
	if err := s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		b.Fatal(err)
	}
	return id
}

// prefill stores n messages due in a year and 1000 due at t0, in large
// transactions.
func prefill(b *testing.B, s *Store, n int, t0 time.Time) {
	body := []byte("Subject: x\r\n\r\nx\r\n")
	const batch = 10_000
	for start := 0; start < n+1000; start += batch {
		err := s.db.Update(func(tx *bolt.Tx) error {
			t := queueTxn(tx)
			for i := start; i < min(start+batch, n+1000); i++ {
				due := t0.Add(365 * 24 * time.Hour)
				if i >= n {
					due = t0
				}
				e := &queue.Entry{Body: body, Envelope: &queue.Envelope{
					ID: queue.ID(fmt.Sprintf("m%019d", i)), From: "sender@example.org", Arrived: t0, Size: int64(len(body)),
					Recipients: []queue.Recipient{{Addr: fmt.Sprintf("rcpt%d@example.com", i), NextAttempt: due}},
				}}
				if err := t.add(e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
