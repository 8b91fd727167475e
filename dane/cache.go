package dane

import (
	"strconv"
	"sync"
	"time"
)

type cacheKey struct {
	name  string
	qtype uint16
}

func (k cacheKey) String() string { return k.name + "/" + strconv.Itoa(int(k.qtype)) }

// cacheEntry is what a look-up produced: an answer, a negative answer (both
// answer and err set) or a failure (only err set).
type cacheEntry struct {
	answer *Answer
	err    error
}

type cached struct {
	cacheEntry
	expires time.Time
}

// cache keeps answers until their TTL runs out. It is bounded: when full,
// expired entries go first, then arbitrary ones (Go's map order is random
// enough to make this a cheap random eviction).
type cache struct {
	mu  sync.RWMutex
	m   map[cacheKey]cached
	max int
}

func newCache(max int) *cache {
	return &cache{m: make(map[cacheKey]cached), max: max}
}

func (c *cache) get(k cacheKey, now time.Time) (cacheEntry, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.expires) {
		return cacheEntry{}, false
	}
	return e.cacheEntry, true
}

func (c *cache) put(k cacheKey, e cacheEntry, now time.Time, lifetime time.Duration) {
	if lifetime <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		c.evict(now)
	}
	c.m[k] = cached{cacheEntry: e, expires: now.Add(lifetime)}
}

// evict frees about a tenth of the cache, expired entries first. It is
// called with the lock held.
func (c *cache) evict(now time.Time) {
	want := max(c.max/10, 1)
	for k, e := range c.m {
		if !now.Before(e.expires) {
			delete(c.m, k)
			want--
		}
	}
	for k := range c.m {
		if want <= 0 {
			break
		}
		delete(c.m, k)
		want--
	}
}

// purge forgets everything.
func (c *cache) purge() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}
