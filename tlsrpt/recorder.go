package tlsrpt

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Session is one TLS session (or attempt at one) to an MX host, as the
// delivery engine hands it to Record.
//
// Sessions that carried TLSRPT report mail must not be recorded (RFC 8460
// §3: they SHOULD NOT be included in the next report); see MailSender.
type Session struct {
	// Time is when the session took place; zero means now (the Recorder's
	// clock). It decides the UTC day the session is reported under.
	Time time.Time
	// Policy is the policy the session was held to. Build it with
	// NewPolicy and keep it with the cached MTA-STS policy or TLSA answer:
	// its precomputed ID is what keeps Record cheap.
	Policy Policy
	// Failure is nil for a successful session: TLS was negotiated and met
	// the policy (RFC 8460 §4.2.1). Otherwise it says why the session
	// failed (§4.2.2, §4.3).
	Failure *Failure
}

// RecorderConfig configures a Recorder.
type RecorderConfig struct {
	// Store receives the counts. Nil means a new MemoryStore, which
	// Recorder.Store returns.
	Store Store
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// FlushInterval is how often Run writes the counts to the Store: the
	// counts a crash can lose. Zero means one minute.
	FlushInterval time.Duration
	// MaxPending bounds the distinct (day, policy) entries held between
	// two flushes. When it is reached, Run is woken to flush early, and
	// sessions of policies not yet held are dropped (and counted, see
	// Dropped) until it has. Zero means 100000.
	MaxPending int
	// Logger receives flush failures. Nil means slog.Default().
	Logger *slog.Logger
}

// Recorder aggregates sessions in memory per UTC day and policy and hands
// the counts to a Store in batches. It is safe for concurrent use.
//
// Recording a successful session under a policy already seen since the
// last flush takes a read lock, a map look-up and an atomic add, and does
// not allocate.
type Recorder struct {
	store    Store
	now      func() time.Time
	interval time.Duration
	max      int64
	log      *slog.Logger

	shards  [numShards]shard
	pending atomic.Int64  // entries held in all shards
	dropped atomic.Uint64 // sessions not recorded because of MaxPending
	wake    chan struct{} // asks Run to flush now
	flushMu sync.Mutex    // one flush at a time
}

const numShards = 16

// shard holds the entries of the policies whose ID starts with its index,
// so that sessions of different policies rarely meet on one lock.
type shard struct {
	mu      sync.RWMutex
	entries map[entryKey]*entry
	_       [32]byte // keep shards on separate cache lines
}

type entryKey struct {
	day Day
	id  PolicyID
}

type entry struct {
	policy     Policy
	successful atomic.Int64
	failures   map[Failure]int64 // under the shard's write lock
}

// NewRecorder returns a Recorder configured by cfg.
func NewRecorder(cfg RecorderConfig) *Recorder {
	r := &Recorder{
		store:    cfg.Store,
		now:      cfg.Now,
		interval: cfg.FlushInterval,
		max:      int64(cfg.MaxPending),
		log:      cfg.Logger,
		wake:     make(chan struct{}, 1),
	}
	if r.store == nil {
		r.store = NewMemoryStore()
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.interval <= 0 {
		r.interval = time.Minute
	}
	if r.max <= 0 {
		r.max = 100000
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	for i := range r.shards {
		r.shards[i].entries = make(map[entryKey]*entry)
	}
	return r
}

// Store returns the store the Recorder writes to.
func (r *Recorder) Store() Store { return r.store }

// Dropped returns the number of sessions not recorded because MaxPending
// was reached.
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// Record counts one session. It never blocks on I/O.
func (r *Recorder) Record(s Session) {
	t := s.Time
	if t.IsZero() {
		t = r.now()
	}
	key := entryKey{day: DayOf(t), id: s.Policy.ID()}
	sh := &r.shards[key.id[0]%numShards]
	if s.Failure == nil {
		sh.mu.RLock()
		e := sh.entries[key]
		if e != nil {
			e.successful.Add(1)
		}
		sh.mu.RUnlock()
		if e != nil {
			return
		}
	}
	r.recordSlow(sh, key, &s)
}

// recordSlow records a failure, or the first session of a policy since the
// last flush.
func (r *Recorder) recordSlow(sh *shard, key entryKey, s *Session) {
	var f Failure
	if s.Failure != nil {
		f = s.Failure.normalized()
		if !f.ResultType.Known() {
			// Keep the failure countable under a type the report may carry
			// (RFC 8460 §4.3.3: the general category) and say what it was.
			if f.FailureReasonCode == "" {
				f.FailureReasonCode = truncate(string(f.ResultType), maxReasonLen)
			}
			f.ResultType = ResultValidationFailure
		}
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.entries[key]
	if e == nil {
		if r.pending.Load() >= r.max {
			r.dropped.Add(1)
			r.askFlush()
			return
		}
		e = &entry{policy: s.Policy.clone()}
		sh.entries[key] = e
		if r.pending.Add(1) >= r.max*3/4 {
			r.askFlush()
		}
	}
	if s.Failure == nil {
		e.successful.Add(1)
		return
	}
	if e.failures == nil {
		e.failures = make(map[Failure]int64)
	}
	addFailure(e.failures, f, 1)
}

func (r *Recorder) askFlush() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Flush writes the counts recorded since the last flush to the Store. If
// the store fails, the counts are kept for the next flush and the error
// is returned.
func (r *Recorder) Flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	batch := r.take()
	if len(batch) == 0 {
		return nil
	}
	if err := r.store.AddCounts(ctx, batch); err != nil {
		r.putBack(batch)
		return err
	}
	return nil
}

// take empties the shards and returns what they held.
func (r *Recorder) take() []Counts {
	var batch []Counts
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		entries := sh.entries
		n := len(entries)
		if n > 0 {
			sh.entries = make(map[entryKey]*entry, n)
		}
		sh.mu.Unlock()
		if n == 0 {
			continue
		}
		r.pending.Add(-int64(n))
		for key, e := range entries {
			batch = append(batch, Counts{
				Day:        key.day,
				Policy:     e.policy,
				Successful: e.successful.Load(),
				Failures:   e.failures,
			})
		}
	}
	return batch
}

// putBack merges a batch the store refused into the shards, so that the
// next flush writes it; what does not fit under MaxPending is dropped.
func (r *Recorder) putBack(batch []Counts) {
	for _, c := range batch {
		key := entryKey{day: c.Day, id: c.Policy.ID()}
		sh := &r.shards[key.id[0]%numShards]
		sh.mu.Lock()
		e := sh.entries[key]
		if e == nil && r.pending.Load() >= r.max {
			sh.mu.Unlock()
			n := c.Successful
			for _, fn := range c.Failures {
				n += fn
			}
			r.dropped.Add(uint64(n))
			continue
		}
		if e == nil {
			e = &entry{policy: c.Policy}
			sh.entries[key] = e
			r.pending.Add(1)
		}
		e.successful.Add(c.Successful)
		if len(c.Failures) > 0 && e.failures == nil {
			e.failures = make(map[Failure]int64, len(c.Failures))
		}
		for f, n := range c.Failures {
			addFailure(e.failures, f, n)
		}
		sh.mu.Unlock()
	}
}

// Run flushes the counts every FlushInterval, and early when MaxPending
// comes near, until ctx is done; then it flushes a last time (with a
// fresh ten-second deadline) and returns ctx's error.
func (r *Recorder) Run(ctx context.Context) error {
	ticker := time.NewTicker(r.interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := r.Flush(fctx); err != nil {
				r.log.Error("tlsrpt: last flush of the session counts failed", "err", err)
			}
			cancel()
			return ctx.Err()
		case <-ticker.C:
		case <-r.wake:
		}
		if err := r.Flush(ctx); err != nil {
			r.log.Warn("tlsrpt: flushing the session counts failed; kept for the next flush", "err", err)
		}
	}
}
