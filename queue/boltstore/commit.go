package boltstore

import (
	"errors"
	"runtime"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// errClosed is returned for changes asked of a closed store.
var errClosed = errors.New("boltstore: store is closed")

// committer is the group commit: every change to the file goes through one
// goroutine, which takes all the changes waiting when it is free and
// applies them in one transaction, so that one pair of fsyncs (bbolt syncs
// the data pages, then the meta page) serves every caller of the batch.
//
// It does not linger for more callers: a lone caller pays one commit and
// no more, and under load the batch grows by itself with the number of
// callers that arrived during the previous commit. It only yields once
// (runtime.Gosched) between the first change and taking the others, so
// that callers woken by the same event — the outcomes of one round of
// deliveries, stored from as many goroutines — get to queue theirs: on a
// busy machine the committer otherwise catches them one or two at a time
// (BenchmarkSchedule, commit=shared: 3 to 20 outcomes per commit without
// the yield, 25 to 30 with it). A lone caller loses a trip through the Go
// scheduler, well under a microsecond next to a commit. bbolt's own DB.Batch
// waits up to MaxBatchDelay (10 ms by default) before committing, which
// caps a single caller at about 100 commits a second; the benchmarks
// (BenchmarkEnqueue) compare both.
type committer struct {
	db   *bolt.DB
	max  int
	reqs chan *request
	done chan struct{}

	mu     sync.RWMutex
	closed bool
}

type request struct {
	fn  func(*bolt.Tx) error
	err chan error
}

func newCommitter(db *bolt.DB, max int) *committer {
	c := &committer{db: db, max: max, reqs: make(chan *request, max), done: make(chan struct{})}
	go c.run()
	return c
}

// update runs fn in a write transaction shared with other callers and
// returns once the transaction is on disk (or failed). If fn fails, the
// change is rolled back and the others of its batch are committed without
// it, so fn may run more than once and must not depend on having run.
//
// A caller cannot withdraw a change once it is queued: after a commit the
// change is durable whatever the caller's context says, and reporting
// failure then would make the caller retry a change that was made.
func (c *committer) update(fn func(*bolt.Tx) error) error {
	r := &request{fn: fn, err: make(chan error, 1)}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return errClosed
	}
	c.reqs <- r
	c.mu.RUnlock()
	return <-r.err
}

func (c *committer) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.reqs)
	}
	c.mu.Unlock()
	<-c.done
}

func (c *committer) run() {
	defer close(c.done)
	batch := make([]*request, 0, c.max)
	for r := range c.reqs {
		batch = append(batch[:0], r)
		runtime.Gosched()
	fill:
		for len(batch) < c.max {
			select {
			case r, ok := <-c.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		c.commit(batch)
	}
}

// commit applies batch in one transaction. A change that fails is answered
// with its error and the rest are committed again without it.
func (c *committer) commit(batch []*request) {
	for len(batch) > 0 {
		failed := -1
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, r := range batch {
				if err := r.fn(tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, r := range batch {
				r.err <- err
			}
			return
		}
		batch[failed].err <- err
		batch = append(batch[:failed], batch[failed+1:]...)
	}
}
