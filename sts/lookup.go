package sts

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Source says where a Lookup's answer came from.
type Source int

const (
	// SourceCache: the cached policy, its TXT id unchanged.
	SourceCache Source = iota + 1
	// SourceFetch: a policy fetched for this look-up (nothing was cached,
	// the cached one had expired, or the TXT id changed).
	SourceFetch
	// SourceStale: the cached, unexpired policy, standing in because the
	// TXT look-up or the fetch failed, or the TXT record is gone
	// (RFC 8461 §5.1); Result.Err says what went wrong.
	SourceStale
)

func (s Source) String() string {
	switch s {
	case SourceCache:
		return "cache"
	case SourceFetch:
		return "fetch"
	case SourceStale:
		return "stale cache"
	}
	return fmt.Sprintf("Source(%d)", int(s))
}

// Result is a domain's policy as Lookup found it. A Result and its Policy
// may be shared between callers and must not be modified.
type Result struct {
	// Domain is the policy domain, lower-case without trailing dot; a
	// TLS-RPT report names it as policy-domain.
	Domain string
	// Policy is the policy. In ModeNone it asks nothing of the sender.
	Policy *Policy
	// ID is the TXT record id the policy was fetched under.
	ID string
	// FetchedAt is when the policy was fetched; Expires is FetchedAt plus
	// max_age.
	FetchedAt, Expires time.Time
	// Source says where the answer came from.
	Source Source
	// Err, for SourceStale, is the failure the cached policy stands in
	// for: an *Error of kind ErrNoRecord, ErrTemporaryDNS, ErrFetch, ...
	Err error
}

// Lookup returns domain's MTA-STS policy as RFC 8461 §5.1 wants it applied
// now. It serves the cached policy while it is unexpired and the TXT
// record's id is unchanged; fetches the policy when nothing is cached, the
// cached one expired or the id changed; and keeps serving an unexpired
// cached policy (SourceStale) when the TXT look-up or the fetch fails or
// the TXT record disappeared. A newly fetched policy replaces the cached
// one, whatever its mode. Concurrent fetches of one domain's policy are
// collapsed into one.
//
// An error means the domain has no policy that applies now: deliver as if
// it had none (RFC 8461 §5), and report the error's ResultType when it is
// not empty. The error is an *Error of kind ErrInvalidDomain, ErrNoRecord,
// ErrSeveralRecords, ErrInvalidRecord, ErrTemporaryDNS, ErrFetch, ErrWebPKI
// or ErrInvalidPolicy.
//
// A cached look-up makes one TXT look-up (none within RecordCheckInterval
// of the last) and allocates nothing beyond what the resolver does.
func (c *Client) Lookup(ctx context.Context, domain string) (*Result, error) {
	d, err := normalizeDomain(domain)
	if err != nil {
		return nil, err
	}
	c.load(ctx)
	now := c.now()
	e := c.cache.get(d)
	name := ""
	if e != nil {
		e.touch(now)
		if !e.expired(now) && e.checkedWithin(now, c.RecordCheckInterval) {
			return e.cached, nil
		}
		name = e.txtName
	} else {
		name = txtName(d)
	}
	rec, err := c.lookupRecord(ctx, d, name)
	if err != nil {
		return c.fallback(ctx, e, err)
	}
	if e != nil && !e.expired(now) && e.stored.ID == rec.ID {
		e.checked.Store(now.UnixNano())
		return e.cached, nil
	}
	if err := c.recentFailure(d, rec.ID, now); err != nil {
		return c.fallback(ctx, e, err)
	}
	return c.update(ctx, d, rec.ID, e, false)
}

// DefaultRefetchInterval is Client.RefetchInterval's zero value.
const DefaultRefetchInterval = 5 * time.Minute

// Refetch fetches domain's policy again even though its TXT id did not
// change, for a delivery that failed under an enforced policy: RFC 8461 §5
// wants senders to check for an updated policy before giving up, and a
// domain may have changed its policy without changing the id. It does so at
// most once per RefetchInterval per domain; otherwise, and when nothing is
// cached, it is Lookup.
func (c *Client) Refetch(ctx context.Context, domain string) (*Result, error) {
	d, err := normalizeDomain(domain)
	if err != nil {
		return nil, err
	}
	c.load(ctx)
	now := c.now()
	interval := c.RefetchInterval
	if interval <= 0 {
		interval = DefaultRefetchInterval
	}
	e := c.cache.get(d)
	if e == nil || !claimEvery(&e.refetched, now, interval) {
		return c.Lookup(ctx, d)
	}
	e.touch(now)
	rec, err := c.lookupRecord(ctx, d, e.txtName)
	if err != nil {
		return c.fallback(ctx, e, err)
	}
	return c.update(ctx, d, rec.ID, e, true)
}

// update fetches the policy for the TXT id and returns it, or what old
// gives when the fetch fails.
func (c *Client) update(ctx context.Context, domain, id string, old *entry, force bool) (*Result, error) {
	e, source, err := c.fetchShared(ctx, domain, id, force)
	if err != nil {
		return c.fallback(ctx, old, err)
	}
	if source == SourceCache {
		return e.cached, nil
	}
	r := *e.cached
	r.Source = source
	return &r, nil
}

// fallback answers after err: with the cached policy while it is
// unexpired (RFC 8461 §5.1), else with err.
func (c *Client) fallback(ctx context.Context, e *entry, err error) (*Result, error) {
	now := c.now()
	if e == nil {
		return nil, err
	}
	if e.expired(now) {
		// Expired and not renewable now: of no use any more.
		c.cache.remove(e.stored.Domain, e)
		c.forget(ctx, e.stored)
		return nil, err
	}
	// One warning a minute per domain: a domain whose DNS is down is
	// looked up for every message.
	if claimEvery(&e.warned, now, time.Minute) {
		c.logger().Warn("sts: using the cached policy", slog.String("domain", e.stored.Domain),
			slog.Time("expires", e.stored.Expires), slog.Any("error", err))
	}
	return e.stale(err), nil
}

// fetched is what a collapsed fetch hands to every caller waiting on it.
type fetched struct {
	e      *entry
	source Source
}

// fetchShared fetches, stores and caches domain's policy under the TXT id,
// one fetch per domain at a time: concurrent callers share its outcome.
// Unless force is set, a policy with that id cached meanwhile by another
// caller, or stored by another node sharing the Store, is used instead of
// fetching. The fetch runs detached from ctx (bounded by the client's
// Timeout), so that a caller giving up does not fail the others; the caller
// stops waiting when ctx ends.
func (c *Client) fetchShared(ctx context.Context, domain, id string, force bool) (*entry, Source, error) {
	key := domain
	if force {
		key = "force " + domain // a forced fetch must not join one that reused the cache
	}
	ch := c.flight.DoChan(key, func() (any, error) {
		fctx := context.WithoutCancel(ctx)
		if !force {
			if e := c.reuse(fctx, domain, id); e != nil {
				return fetched{e, SourceCache}, nil
			}
		}
		p, text, err := c.fetch(fctx, domain)
		now := c.now()
		if err != nil {
			if !force {
				c.recordFailure(domain, id, err, now)
			}
			return nil, err
		}
		c.recordFailure(domain, "", nil, now)
		sp := StoredPolicy{Domain: domain, ID: id, Text: text, FetchedAt: now, Expires: now.Add(p.MaxAge)}
		e := newEntry(sp, p)
		if !force {
			e.lastUsed.Store(now.UnixNano()) // a Lookup asked for it
		}
		c.cache.put(e)
		c.persist(fctx, sp)
		c.logger().Info("sts: fetched policy", slog.String("domain", domain), slog.String("id", id),
			slog.String("mode", string(p.Mode)), slog.Duration("max_age", p.MaxAge))
		return fetched{e, SourceFetch}, nil
	})
	select {
	case <-ctx.Done():
		return nil, 0, &Error{Domain: domain, Kind: ErrFetch, Err: context.Cause(ctx), temporary: true}
	case r := <-ch:
		if r.Err != nil {
			return nil, 0, r.Err
		}
		f := r.Val.(fetched)
		return f.e, f.source, nil
	}
}

// fetchRetry is how long a failed fetch is remembered. RFC 8461 §3.3: "In
// the case that the HTTPS GET fails, implementers SHOULD limit further
// attempts to a period of five minutes or longer per version ID". It also
// keeps a hung policy host from holding up every delivery to its domain
// for a whole Timeout.
const fetchRetry = 5 * time.Minute

// maxFailures bounds the number of failed fetches remembered.
const maxFailures = 10000

// fetchFailure is a failed fetch of a domain's policy under a TXT id.
type fetchFailure struct {
	id    string
	err   error
	until time.Time
}

// recentFailure returns the error of a fetch of domain's policy under id
// that failed less than fetchRetry ago, or nil.
func (c *Client) recentFailure(domain, id string, now time.Time) error {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	f, ok := c.failures[domain]
	if !ok || f.id != id || !now.Before(f.until) {
		return nil
	}
	return f.err
}

// recordFailure remembers a failed fetch; a nil err forgets the domain's.
func (c *Client) recordFailure(domain, id string, err error, now time.Time) {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	if err == nil {
		delete(c.failures, domain)
		return
	}
	if c.failures == nil {
		c.failures = make(map[string]fetchFailure)
	}
	if len(c.failures) >= maxFailures {
		for d, f := range c.failures {
			if !now.Before(f.until) {
				delete(c.failures, d)
			}
		}
		if len(c.failures) >= maxFailures {
			return
		}
	}
	c.failures[domain] = fetchFailure{id: id, err: err, until: now.Add(fetchRetry)}
}

// reuse returns an unexpired policy with the TXT id that is already cached
// in memory or in the Store, or nil.
func (c *Client) reuse(ctx context.Context, domain, id string) *entry {
	now := c.now()
	if e := c.cache.get(domain); e != nil && e.stored.ID == id && !e.expired(now) {
		return e
	}
	if c.Store == nil {
		return nil
	}
	sp, ok, err := c.Store.Get(ctx, domain)
	if err != nil || !ok || sp.ID != id {
		return nil
	}
	p, err := checkStored(&sp)
	if err != nil || !now.Before(sp.Expires) {
		return nil
	}
	e := newEntry(sp, p)
	e.lastUsed.Store(now.UnixNano()) // a Lookup asked for it
	c.cache.put(e)
	return e
}
