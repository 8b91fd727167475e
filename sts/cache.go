package sts

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// entry is one domain's cached policy, parsed. Its stored fields never
// change after it is built; a new fetch replaces the entry as a whole, so
// readers need no lock. The atomic fields are bookkeeping the hot path
// updates; refreshAt is guarded by cache.mu.
type entry struct {
	stored  StoredPolicy
	policy  *Policy
	txtName string
	cached  *Result // the answer of a cache hit, shared by every caller

	refreshAt time.Time // when the refresher should renew it

	lastUsed  atomic.Int64 // Unix nanoseconds of the last Lookup
	checked   atomic.Int64 // Unix nanoseconds the TXT id was last confirmed
	refetched atomic.Int64 // Unix nanoseconds of the last Refetch
	warned    atomic.Int64 // Unix nanoseconds of the last stale-policy warning
}

func newEntry(sp StoredPolicy, p *Policy) *entry {
	e := &entry{stored: sp, policy: p, txtName: txtName(sp.Domain)}
	e.cached = &Result{Domain: sp.Domain, Policy: p, ID: sp.ID, FetchedAt: sp.FetchedAt, Expires: sp.Expires, Source: SourceCache}
	// RFC 8461 §10.2: renewing before expiry, at a time an attacker cannot
	// predict, keeps the window for hiding the policy closed. Between half
	// and four fifths of the lifetime leaves room for retries.
	life := sp.Expires.Sub(sp.FetchedAt)
	e.refreshAt = sp.FetchedAt.Add(time.Duration(float64(life) * (0.5 + 0.3*rand.Float64())))
	e.checked.Store(sp.FetchedAt.UnixNano())
	return e
}

// expired reports whether the policy may no longer be used (RFC 8461 §5.1:
// a cached policy is valid until FetchedAt plus max_age).
func (e *entry) expired(now time.Time) bool { return !now.Before(e.stored.Expires) }

// touch records that a Lookup asked for the entry. The write is skipped
// when the last one is recent, so that concurrent look-ups of a popular
// domain do not all write the same cache line.
func (e *entry) touch(now time.Time) {
	if n := now.UnixNano(); n-e.lastUsed.Load() > int64(time.Second) {
		e.lastUsed.Store(n)
	}
}

// inUse reports whether a Lookup asked for the entry since it was fetched:
// only such domains are renewed.
func (e *entry) inUse() bool { return e.lastUsed.Load() >= e.stored.FetchedAt.UnixNano() }

// checkedWithin reports whether the TXT id was confirmed less than d ago.
func (e *entry) checkedWithin(now time.Time, d time.Duration) bool {
	return d > 0 && now.UnixNano()-e.checked.Load() < int64(d)
}

// claimEvery returns true, and records now, when the last claim on ts is at
// least d old; concurrent callers cannot both win.
func claimEvery(ts *atomic.Int64, now time.Time, d time.Duration) bool {
	last := ts.Load()
	return now.UnixNano()-last >= int64(d) && ts.CompareAndSwap(last, now.UnixNano())
}

// stale returns the entry's answer when it stands in after err.
func (e *entry) stale(err error) *Result {
	r := *e.cached
	r.Source, r.Err = SourceStale, err
	return &r
}

// cache holds the parsed policies in memory, in front of the Store. The
// zero value is empty and not yet loaded from the Store.
type cache struct {
	mu      sync.RWMutex
	entries map[string]*entry

	loaded  atomic.Bool
	loadMu  sync.Mutex
	retryAt time.Time // after a failed load, guarded by loadMu
}

func (c *cache) get(domain string) *entry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.entries[domain]
}

// put installs e, carrying the bookkeeping of the entry it replaces.
func (c *cache) put(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[string]*entry)
	}
	if old := c.entries[e.stored.Domain]; old != nil {
		e.lastUsed.Store(max(e.lastUsed.Load(), old.lastUsed.Load()))
		e.refetched.Store(old.refetched.Load())
	}
	c.entries[e.stored.Domain] = e
}

// remove deletes domain's entry; when only is not nil, only if the entry is
// still that one (a newer fetch must not be undone).
func (c *cache) remove(domain string, only *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.entries[domain]; cur != nil && (only == nil || cur == only) {
		delete(c.entries, domain)
	}
}

// loadRetry is how long a Client waits before reading a Store again after
// reading it failed.
const loadRetry = 10 * time.Second

// Load reads the Store into memory. Lookup does it on first use; an
// application calls it at start-up to learn early whether its store is
// readable. Expired and unparsable stored policies are deleted. Until a
// load succeeds, lookups work from what they fetch themselves.
func (c *Client) Load(ctx context.Context) error {
	c.cache.loadMu.Lock()
	defer c.cache.loadMu.Unlock()
	return c.loadLocked(ctx)
}

// load is Load for Lookup: once, and after a failure not again before
// loadRetry has passed.
func (c *Client) load(ctx context.Context) {
	if c.cache.loaded.Load() {
		return
	}
	c.cache.loadMu.Lock()
	defer c.cache.loadMu.Unlock()
	if c.cache.loaded.Load() || c.now().Before(c.cache.retryAt) {
		return
	}
	if err := c.loadLocked(ctx); err != nil {
		c.cache.retryAt = c.now().Add(loadRetry)
		c.logger().Error("sts: reading the policy store failed; cached policies are missing until it works", slog.Any("error", err))
	}
}

func (c *Client) loadLocked(ctx context.Context) error {
	if c.Store == nil || c.cache.loaded.Load() {
		c.cache.loaded.Store(true)
		return nil
	}
	list, err := c.Store.List(ctx)
	if err != nil {
		return err
	}
	now := c.now()
	for _, sp := range list {
		p, err := checkStored(&sp)
		switch {
		case err != nil:
			c.logger().Warn("sts: dropping an invalid stored policy", slog.String("domain", sp.Domain), slog.Any("error", err))
			c.forget(ctx, sp)
		case !now.Before(sp.Expires):
			c.forget(ctx, sp) // of no use any more
		case c.cache.get(sp.Domain) == nil: // else a fetch made after a failed load is newer
			c.cache.put(newEntry(sp, p))
		}
	}
	c.cache.loaded.Store(true)
	return nil
}

// checkStored parses a stored policy and makes sure a damaged or tampered
// store cannot make it outlive its max_age: Expires is capped at FetchedAt
// plus max_age.
func checkStored(sp *StoredPolicy) (*Policy, error) {
	if d, err := normalizeDomain(sp.Domain); err != nil || d != sp.Domain {
		return nil, fmt.Errorf("stored under %s, which is not a normalised domain", quote(sp.Domain))
	}
	p, err := ParsePolicy(sp.Text)
	if err != nil {
		return nil, err
	}
	if limit := sp.FetchedAt.Add(p.MaxAge); sp.Expires.After(limit) {
		sp.Expires = limit
	}
	return p, nil
}

// persist writes a freshly fetched policy to the Store. A failure is
// logged, not returned: the policy is valid and in memory; only a restart
// would lose it.
func (c *Client) persist(ctx context.Context, sp StoredPolicy) {
	if c.Store == nil {
		return
	}
	if err := c.Store.Put(ctx, sp); err != nil {
		c.logger().Error("sts: storing a policy failed", slog.String("domain", sp.Domain), slog.Any("error", err))
	}
}

// forget deletes sp from the Store, logging a failure. It leaves alone a
// newer policy another node sharing the Store may have put there since.
func (c *Client) forget(ctx context.Context, sp StoredPolicy) {
	if c.Store == nil {
		return
	}
	// Within a second: a store may keep times less precisely than Go.
	cur, ok, err := c.Store.Get(ctx, sp.Domain)
	if err == nil && ok && cur.ID == sp.ID && cur.FetchedAt.Sub(sp.FetchedAt).Abs() < time.Second {
		err = c.Store.Delete(ctx, sp.Domain)
	}
	if err != nil {
		c.logger().Error("sts: deleting a stored policy failed", slog.String("domain", sp.Domain), slog.Any("error", err))
	}
}

// Purge forgets domain's cached policy, in memory and in the Store, so that
// the next Lookup discovers it afresh. An operator does it when a domain
// moved its MX hosts and its old policy, still cached, rejects the new
// ones. Note that this reopens RFC 8461 §10.2's window for that domain.
func (c *Client) Purge(ctx context.Context, domain string) error {
	d, err := normalizeDomain(domain)
	if err != nil {
		return err
	}
	c.load(ctx)
	c.cache.remove(d, nil)
	if c.Store == nil {
		return nil
	}
	return c.Store.Delete(ctx, d)
}
