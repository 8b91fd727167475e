package sts

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// StoredPolicy is a cached policy as a Store keeps it: plain, serialisable
// values, so that a persistent store can write it as it is.
type StoredPolicy struct {
	// Domain is the policy domain, lower-case without trailing dot.
	Domain string
	// ID is the id of the TXT record the policy was fetched under.
	ID string
	// Text is the policy as fetched (at most MaxPolicySize bytes).
	Text string
	// FetchedAt is when the policy was fetched.
	FetchedAt time.Time
	// Expires is FetchedAt plus the policy's max_age: after it, the
	// policy must not be used (RFC 8461 §5.1).
	Expires time.Time
}

// Store keeps cached policies across restarts, so that a restart never
// reopens the window in which an attacker can hide a domain's policy
// (RFC 8461 §10.2). A Client reads the whole store once, on first use, and
// then writes every change through. Implementations must be safe for
// concurrent use.
type Store interface {
	// Get returns the stored policy of domain, and whether there is one.
	Get(ctx context.Context, domain string) (StoredPolicy, bool, error)
	// Put stores p, replacing what was stored for p.Domain.
	Put(ctx context.Context, p StoredPolicy) error
	// Delete removes domain's policy; deleting a missing one is no error.
	Delete(ctx context.Context, domain string) error
	// List returns every stored policy, in no particular order.
	List(ctx context.Context) ([]StoredPolicy, error)
}

// MemoryStore is a Store in memory: it lasts as long as the process. The
// zero value is an empty store. It is safe for concurrent use.
type MemoryStore struct {
	mu       sync.Mutex
	policies map[string]StoredPolicy
}

// Get implements Store.
func (s *MemoryStore) Get(_ context.Context, domain string) (StoredPolicy, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.policies[domain]
	return p, ok, nil
}

// Put implements Store.
func (s *MemoryStore) Put(_ context.Context, p StoredPolicy) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.policies == nil {
		s.policies = make(map[string]StoredPolicy)
	}
	s.policies[p.Domain] = p
	return nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(_ context.Context, domain string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.policies, domain)
	return nil
}

// List implements Store. The policies come sorted by domain.
func (s *MemoryStore) List(context.Context) ([]StoredPolicy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]StoredPolicy, 0, len(s.policies))
	for _, p := range s.policies {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b StoredPolicy) int { return strings.Compare(a.Domain, b.Domain) })
	return out, nil
}
