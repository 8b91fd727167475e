package queue

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sealpost/sealpost/delivery"
)

// ErrRunning is returned by Run when the queue already runs.
var ErrRunning = errors.New("queue: Run called twice")

// ErrClosed is returned by Run after Shutdown.
var ErrClosed = errors.New("queue: shut down")

// claimBatch bounds the messages taken from the store in one Claim.
const claimBatch = 256

// active is a message taken from the store for delivery. Its envelope is
// owned by the scheduler's goroutine.
type active struct {
	env     *Envelope
	pending int  // tasks not finished
	tried   bool // at least one task made an attempt
	body    func() ([]byte, error)
	reports []dsnRecipient // what the DSN of this round reports
	// bounced holds the recipients of a KindReport message that failed
	// permanently in this round.
	bounced []Recipient
}

// task is the delivery of a message's due recipients at one domain.
type task struct {
	msg    *active
	domain string
	idx    []int // into msg.env.Recipients
	dm     delivery.Message
}

// outcome is what a worker reports back.
type outcome struct {
	task    *task
	results []delivery.Result
	err     error
	// skipped: no attempt was made (shutdown, message deleted); the
	// recipients stay as they were.
	skipped bool
	at      time.Time
}

// domainQueue is the tasks of one domain waiting for a worker.
type domainQueue struct {
	running int
	waiting []*task
	queued  bool // in scheduler.runnable
}

// scheduler is the state of one Run.
type scheduler struct {
	q       *Queue
	work    context.Context // deliveries; cancelled at a hard stop
	cancel  context.CancelFunc
	active  map[ID]*active
	domains map[string]*domainQueue
	// runnable lists domains with waiting tasks and a free slot, in the
	// order they get the next free worker (round robin).
	runnable []string
	running  int
	// finalizing counts the store writes under way in the background
	// (finalize, mark); Run returns only once they are done.
	finalizing int
	stopping   bool
	// turns counts the loop's wake-ups, so that a test can tell a loop
	// that waits from one that spins.
	turns     int
	outcomes  chan outcome
	finalized chan ID
}

// Run delivers the queue's messages until ctx is cancelled or Shutdown is
// called. Cancelling ctx stops at once: deliveries under way are
// cancelled, and the recipients they had not finished stay due. It
// returns nil after Shutdown, ctx's error after a cancellation, and only
// once every change it made is stored.
//
// Unless Config.Shared is set, Run first ends every lease in the store:
// messages that a crashed process was delivering are tried again at once
// (at-least-once delivery).
func (q *Queue) Run(ctx context.Context) error {
	if q.cfg.Deliverer == nil {
		return errors.New("queue: Config.Deliverer is nil")
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if q.running {
		q.mu.Unlock()
		return ErrRunning
	}
	q.running = true
	q.stop = make(chan struct{})
	q.exited = make(chan struct{})
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	q.cancelWork = cancel
	stop, exited := q.stop, q.exited
	q.mu.Unlock()
	defer func() {
		cancel()
		q.mu.Lock()
		q.running = false
		q.mu.Unlock()
		close(exited)
	}()

	if !q.cfg.Shared {
		n, err := q.store.Recover(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			q.log.Warn("queue: retrying messages a previous run did not finish", "count", n)
		}
	}
	s := &scheduler{
		q: q, work: work, cancel: cancel,
		active: make(map[ID]*active), domains: make(map[string]*domainQueue),
		outcomes:  make(chan outcome, q.workers()),
		finalized: make(chan ID, q.workers()),
	}
	err := s.loop(ctx, stop)
	q.turns = s.turns
	return err
}

// Shutdown stops Run gracefully: no new delivery starts, the deliveries
// under way finish, and their results are stored. If ctx ends first, they
// are cancelled as when Run's context is; Shutdown still waits for Run to
// return, then returns ctx's error. A Run called after Shutdown returns
// ErrClosed at once.
func (q *Queue) Shutdown(ctx context.Context) error {
	q.mu.Lock()
	q.closed = true
	if !q.running {
		q.mu.Unlock()
		return nil
	}
	select {
	case <-q.stop:
	default:
		close(q.stop)
	}
	exited, cancel := q.exited, q.cancelWork
	q.mu.Unlock()
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		cancel()
		<-exited
		return ctx.Err()
	}
}

func (q *Queue) workers() int { return cmp.Or(q.cfg.Workers, 64) }

func (q *Queue) domainLimit(domain string) int {
	if n, ok := q.cfg.DomainLimits[domain]; ok && n > 0 {
		return n
	}
	return cmp.Or(q.cfg.DomainWorkers, 8)
}

func (s *scheduler) loop(ctx context.Context, stop <-chan struct{}) error {
	poll := cmp.Or(s.q.cfg.PollInterval, time.Minute)
	timer := time.NewTimer(0)
	defer timer.Stop()
	// cancelled is ctx.Done() until it has fired once. A closed channel
	// stays ready, so leaving it in the select would spin the loop at full
	// CPU until the deliveries under way had finished.
	cancelled := ctx.Done()
	for {
		s.turns++
		sleep := poll
		if !s.stopping {
			sleep = s.fill(poll)
		}
		if s.stopping && s.running == 0 && s.finalizing == 0 {
			return ctx.Err()
		}
		timer.Reset(max(sleep, time.Millisecond))
		select {
		case <-s.q.wake:
		case <-timer.C:
		case o := <-s.outcomes:
			s.finish(o)
		case <-s.finalized:
			// The store write held a worker (see pump); with it free, a
			// waiting task starts now, not at the next claim, which may
			// not come while every due message is already ours.
			s.finalizing--
			s.pump()
		case <-stop:
			s.shutdown()
			stop = nil
		case <-cancelled:
			s.cancel()
			s.shutdown()
			cancelled, stop = nil, nil
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// fill takes due messages from the store while there is room, and returns
// how long to sleep before looking again.
func (s *scheduler) fill(poll time.Duration) time.Duration {
	limit := cmp.Or(s.q.cfg.ActiveLimit, 10000)
	lease := cmp.Or(s.q.cfg.Lease, time.Hour)
	for {
		now := s.q.now()
		n, next, err := s.q.store.Stats(s.work)
		if err != nil {
			s.q.log.Error("queue: reading the store", "err", err)
			return min(poll, time.Second)
		}
		if f := s.q.cfg.Observer.Depth; f != nil {
			f(n, len(s.active))
		}
		room := limit - len(s.active)
		switch {
		case next.IsZero() || room <= 0:
			return poll
		case next.After(now):
			return min(poll, next.Sub(now))
		}
		envs, err := s.q.store.Claim(s.work, now, now.Add(lease), min(room, claimBatch))
		if err != nil {
			s.q.log.Error("queue: claiming due messages", "err", err)
			return min(poll, time.Second)
		}
		for _, env := range envs {
			s.admit(env, now)
		}
		s.pump()
		if len(envs) == 0 {
			return min(poll, time.Second)
		}
	}
}

// admit turns a claimed message into tasks, one per domain of its due
// recipients.
func (s *scheduler) admit(env *Envelope, now time.Time) {
	if s.active[env.ID] != nil {
		return // still ours from an earlier claim whose lease ran out
	}
	m := &active{env: env}
	m.body = sync.OnceValues(func() ([]byte, error) { return s.q.store.Body(s.work, env.ID) })
	byDomain := make(map[string]*task)
	var order []*task
	for i := range env.Recipients {
		r := &env.Recipients[i]
		if r.State != StatePending || r.NextAttempt.After(now) {
			continue
		}
		d := r.Domain()
		t := byDomain[d]
		if t == nil {
			t = &task{msg: m, domain: d, dm: deliveryMessage(env)}
			byDomain[d] = t
			order = append(order, t)
		}
		t.idx = append(t.idx, i)
		t.dm.Recipients = append(t.dm.Recipients, deliveryRecipient(r))
	}
	s.active[env.ID] = m
	if len(order) == 0 {
		s.finalize(m)
		return
	}
	m.pending = len(order)
	for _, t := range order {
		dq := s.domains[t.domain]
		if dq == nil {
			dq = &domainQueue{}
			s.domains[t.domain] = dq
		}
		dq.waiting = append(dq.waiting, t)
		s.ready(t.domain, dq)
	}
}

// ready puts a domain on the runnable list if it has work and a free slot.
func (s *scheduler) ready(domain string, dq *domainQueue) {
	if !dq.queued && len(dq.waiting) > 0 && dq.running < s.q.domainLimit(domain) {
		dq.queued = true
		s.runnable = append(s.runnable, domain)
	}
}

// pump starts waiting tasks while workers are free, one domain at a time
// in turn. A worker is free once the result of its attempt is stored, not
// when the attempt ends, so that a crash can catch no more than Workers
// attempts whose results are not on disk, and deliver no more than that
// again.
func (s *scheduler) pump() {
	for s.running+s.finalizing < s.q.workers() && len(s.runnable) > 0 && !s.stopping {
		domain := s.runnable[0]
		s.runnable = s.runnable[1:]
		dq := s.domains[domain]
		dq.queued = false
		t := dq.waiting[0]
		dq.waiting = dq.waiting[1:]
		dq.running++
		s.running++
		s.ready(domain, dq)
		go s.run(t)
	}
}

// run makes one attempt in its own goroutine.
func (s *scheduler) run(t *task) {
	o := outcome{task: t}
	body, err := t.msg.body()
	if err != nil {
		// Deleted by an operator, or the store failed: no attempt.
		if !errors.Is(err, ErrNotFound) {
			s.q.log.Error("queue: reading message content", "id", t.msg.env.ID, "err", err)
		}
		o.skipped = true
		s.outcomes <- o
		return
	}
	if f := s.q.cfg.Observer.AttemptStarted; f != nil {
		f(t.msg.env.ID, t.domain, len(t.idx))
	}
	dm := t.dm
	dm.Body, dm.Size = bytes.NewReader(body), int64(len(body))
	o.results, o.err = s.q.cfg.Deliverer.Deliver(s.work, &dm)
	o.at = s.q.now()
	// A delivery cut short by a hard stop is not held against the
	// recipients it did not finish (see finish).
	o.skipped = s.work.Err() != nil
	s.outcomes <- o
}

// finish takes a worker's outcome.
func (s *scheduler) finish(o outcome) {
	t := o.task
	s.running--
	dq := s.domains[t.domain]
	dq.running--
	s.ready(t.domain, dq)
	if dq.running == 0 && len(dq.waiting) == 0 {
		delete(s.domains, t.domain)
	}
	s.q.apply(t, o)
	t.msg.pending--
	if t.msg.pending == 0 {
		s.finalize(t.msg)
	} else {
		s.mark(t)
	}
	s.pump()
}

// shutdown stops starting tasks: the waiting ones are dropped, and their
// recipients stay due.
func (s *scheduler) shutdown() {
	if s.stopping {
		return
	}
	s.stopping = true
	for domain, dq := range s.domains {
		for _, t := range dq.waiting {
			t.msg.pending--
			if t.msg.pending == 0 {
				s.finalize(t.msg)
			}
		}
		dq.waiting = nil
		if dq.running == 0 {
			delete(s.domains, domain)
		}
	}
	s.runnable = nil
}

// mark stores the recipients a task delivered while the message's other
// tasks are still under way or waiting for a worker (its other domains),
// so that a crash meanwhile does not deliver them again: at-least-once
// delivery then repeats only the deliveries that were under way. A
// message's state is otherwise stored once, when its last task ends
// (finalize), and a slow domain held back the marks of every other. The
// mark is written in the background, as finalize's Update is, and shares
// group commits with it; it keeps the lease. A recipient that asked for
// NOTIFY=SUCCESS waits for finalize, which stores it together with the
// round's DSN (a "relayed" report, unless the next hop took NOTIFY on):
// marked alone, a crash would lose the report.
func (s *scheduler) mark(t *task) {
	m := t.msg
	var idx []int
	var rs []Recipient
	for _, i := range t.idx {
		r := m.env.Recipients[i]
		if r.State == StateDelivered && r.Notify&NotifySuccess == 0 {
			idx, rs = append(idx, i), append(rs, r)
		}
	}
	if len(idx) == 0 {
		return
	}
	s.finalizing++
	id := m.env.ID
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(s.work), time.Minute)
		defer cancel()
		err := s.q.store.Modify(ctx, id, func(env *Envelope) error {
			for k, i := range idx {
				if i < len(env.Recipients) && env.Recipients[i].Addr == rs[k].Addr {
					env.Recipients[i] = rs[k]
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			// The message's final Update stores the marks again.
			s.q.log.Error("queue: storing delivered recipients", "id", id, "err", err)
		}
		s.finalized <- id
	}()
}

// finalize stores a message's new state (and its DSN) in the background,
// so that the stores of many messages share commits.
func (s *scheduler) finalize(m *active) {
	s.finalizing++
	delete(s.active, m.env.ID)
	go func() {
		// The store must learn what happened even after a hard stop.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(s.work), time.Minute)
		defer cancel()
		s.q.record(ctx, m)
		s.finalized <- m.env.ID
	}()
}
