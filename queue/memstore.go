package queue

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemoryStore is a Store in memory: for tests, for programs that may lose
// their queue on a restart, and as the reference the persistent stores are
// tested against (queue/storetest). It is not durable. The zero value is
// ready to use.
type MemoryStore struct {
	mu      sync.Mutex
	entries map[ID]*memEntry
	index   memIndex
}

var _ Store = (*MemoryStore)(nil)

// memEntry is a stored message. key is its place in the index: its due
// time, or the end of its lease; pos is -1 when it is not indexed.
type memEntry struct {
	env   *Envelope
	body  []byte
	lease time.Time
	key   time.Time
	pos   int
}

// memIndex is a min-heap of entries by key.
type memIndex []*memEntry

func (h memIndex) Len() int           { return len(h) }
func (h memIndex) Less(i, j int) bool { return h[i].key.Before(h[j].key) }
func (h memIndex) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = i, j
}
func (h *memIndex) Push(x any) {
	e := x.(*memEntry)
	e.pos = len(*h)
	*h = append(*h, e)
}
func (h *memIndex) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.pos = -1
	return e
}

// reindex puts e where its lease or due time says, or out of the index.
func (s *MemoryStore) reindex(e *memEntry) {
	key, ok := e.lease, !e.lease.IsZero()
	if !ok {
		key, ok = e.env.Due()
	}
	switch {
	case !ok && e.pos >= 0:
		heap.Remove(&s.index, e.pos)
	case ok && e.pos >= 0:
		e.key = key
		heap.Fix(&s.index, e.pos)
	case ok:
		e.key = key
		heap.Push(&s.index, e)
	}
}

func (s *MemoryStore) put(ent *Entry) error {
	if s.entries == nil {
		s.entries = make(map[ID]*memEntry)
	}
	id := ent.Envelope.ID
	if _, dup := s.entries[id]; dup {
		return fmt.Errorf("queue: message %s already stored", id)
	}
	e := &memEntry{env: ent.Envelope.Clone(), body: slices.Clone(ent.Body), pos: -1}
	s.entries[id] = e
	s.reindex(e)
	return nil
}

func (s *MemoryStore) remove(e *memEntry) {
	if e.pos >= 0 {
		heap.Remove(&s.index, e.pos)
	}
	delete(s.entries, e.env.ID)
}

// Enqueue implements Store.
func (s *MemoryStore) Enqueue(ctx context.Context, ent *Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.put(ent)
}

// Claim implements Store.
func (s *MemoryStore) Claim(ctx context.Context, now, until time.Time, limit int) ([]*Envelope, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !until.After(now) {
		return nil, fmt.Errorf("queue: lease until %v does not end after now (%v)", until, now)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Envelope
	for len(out) < limit && len(s.index) > 0 && !s.index[0].key.After(now) {
		e := s.index[0]
		e.lease = until
		s.reindex(e)
		out = append(out, e.env.Clone())
	}
	return out, nil
}

// Update implements Store.
func (s *MemoryStore) Update(ctx context.Context, id ID, rcpts []Recipient, add ...*Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil {
		return ErrNotFound
	}
	for _, a := range add {
		if _, dup := s.entries[a.Envelope.ID]; dup {
			return fmt.Errorf("queue: message %s already stored", a.Envelope.ID)
		}
	}
	e.env.Recipients = slices.Clone(rcpts)
	e.lease = time.Time{}
	if e.env.Done() {
		s.remove(e)
	} else {
		s.reindex(e)
	}
	for _, a := range add {
		_ = s.put(a) // cannot fail: checked above
	}
	return nil
}

// Release implements Store.
func (s *MemoryStore) Release(ctx context.Context, ids ...ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if e := s.entries[id]; e != nil && !e.lease.IsZero() {
			e.lease = time.Time{}
			s.reindex(e)
		}
	}
	return nil
}

// Recover implements Store.
func (s *MemoryStore) Recover(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.entries {
		if !e.lease.IsZero() {
			e.lease = time.Time{}
			s.reindex(e)
			n++
		}
	}
	return n, nil
}

// Modify implements Store.
func (s *MemoryStore) Modify(ctx context.Context, id ID, change func(*Envelope) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil {
		return ErrNotFound
	}
	env := e.env.Clone()
	if err := change(env); err != nil {
		return err
	}
	env.ID, env.Size, env.Arrived = e.env.ID, e.env.Size, e.env.Arrived
	e.env = env.Clone()
	s.reindex(e)
	return nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(ctx context.Context, id ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil {
		return ErrNotFound
	}
	s.remove(e)
	return nil
}

// Get implements Store.
func (s *MemoryStore) Get(ctx context.Context, id ID) (*Envelope, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil {
		return nil, ErrNotFound
	}
	return e.env.Clone(), nil
}

// Body implements Store.
func (s *MemoryStore) Body(ctx context.Context, id ID) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil {
		return nil, ErrNotFound
	}
	return slices.Clone(e.body), nil
}

// List implements Store. It sorts the whole queue: MemoryStore is meant
// for small queues.
func (s *MemoryStore) List(ctx context.Context, after ID, limit int) ([]*Envelope, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]ID, 0, len(s.entries))
	for id := range s.entries {
		if id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := make([]*Envelope, 0, min(limit, len(ids)))
	for _, id := range ids[:min(limit, len(ids))] {
		out = append(out, s.entries[id].env.Clone())
	}
	return out, nil
}

// Stats implements Store.
func (s *MemoryStore) Stats(ctx context.Context) (int, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return 0, time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var next time.Time
	if len(s.index) > 0 {
		next = s.index[0].key
	}
	return len(s.entries), next, nil
}
