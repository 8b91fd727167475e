package sts

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// DefaultRefreshInterval is Client.RefreshInterval's zero value.
const DefaultRefreshInterval = time.Minute

// refreshConcurrency bounds the refreshes run at once.
const refreshConcurrency = 4

// Run renews cached policies before they expire until ctx is done, then
// returns ctx's error. Every RefreshInterval it calls RefreshDue. Running it
// is optional but recommended: without it, a policy is fetched again only
// when a Lookup finds it expired or its id changed, and expired policies of
// domains no longer mailed stay in memory.
func (c *Client) Run(ctx context.Context) error {
	interval := c.RefreshInterval
	if interval <= 0 {
		interval = DefaultRefreshInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		c.RefreshDue(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// RefreshDue renews the cached policies that are due, and returns how many
// it renewed. A policy is due at a random time between half and four
// fifths of its lifetime (RFC 8461 §10.2: renewing before expiry keeps the
// window for hiding a policy closed; a random time keeps an attacker from
// predicting it), and only when a Lookup asked for it since it was fetched:
// a domain no longer mailed is left to expire. A renewal looks up the TXT
// record and fetches the policy even when the id is unchanged, which
// restarts its max_age; a failed renewal is tried again later, and the
// cached policy stays in use meanwhile. Expired policies are forgotten.
func (c *Client) RefreshDue(ctx context.Context) int {
	c.load(ctx)
	now := c.now()
	var due []*entry
	var gone []StoredPolicy
	c.cache.mu.Lock()
	for d, e := range c.cache.entries {
		switch {
		case e.expired(now):
			delete(c.cache.entries, d)
			gone = append(gone, e.stored)
		case now.Before(e.refreshAt) || !e.inUse():
		default:
			// Claimed by moving its time to when a failure would be
			// tried again; a success replaces the entry anyway.
			e.refreshAt = now.Add(retryDelay(e.stored.Expires.Sub(now)))
			due = append(due, e)
		}
	}
	c.cache.mu.Unlock()
	for _, sp := range gone {
		c.forget(ctx, sp)
	}

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		renewed int
		sem     = make(chan struct{}, refreshConcurrency)
	)
	for _, e := range due {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if c.refresh(ctx, e) {
				mu.Lock()
				renewed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return renewed
}

// refresh renews one entry: TXT look-up, then a forced fetch.
func (c *Client) refresh(ctx context.Context, e *entry) bool {
	d := e.stored.Domain
	log := c.logger().With(slog.String("domain", d), slog.Time("expires", e.stored.Expires))
	rec, err := c.lookupRecord(ctx, d, e.txtName)
	if err != nil {
		// Without a valid TXT record the policy is not renewed: a domain
		// that withdrew its record lets the cached policy run out. A
		// temporary failure is retried.
		if errors.Is(err, ErrTemporaryDNS) {
			log.Warn("sts: policy refresh: TXT look-up failed", slog.Any("error", err))
		} else {
			log.Info("sts: policy refresh: no valid TXT record, the cached policy will expire", slog.Any("error", err))
		}
		return false
	}
	if _, _, err := c.fetchShared(ctx, d, rec.ID, true); err != nil {
		log.Warn("sts: policy refresh: fetch failed", slog.Any("error", err))
		return false
	}
	return true
}

// retryDelay is how long to wait before trying a failed renewal again,
// given how long the policy remains valid: a quarter of that, between five
// minutes (RFC 8461 §3.3 asks for at least that between attempts after a
// failed fetch) and one hour, give or take a fifth at random.
func retryDelay(remaining time.Duration) time.Duration {
	d := min(max(remaining/4, fetchRetry), time.Hour)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
