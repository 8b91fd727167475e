package boltstore

import (
	"context"
	"encoding/json"

	"github.com/sealpost/sealpost/sts"
	bolt "go.etcd.io/bbolt"
)

// bucketSTS holds the MTA-STS policy cache: domain → sts.StoredPolicy.
var bucketSTS = []byte("sts.policies")

// PolicyCache is the MTA-STS policy cache in a Store's file: it implements
// sts.Store, so that a restart keeps every cached policy and never reopens
// the trust-on-first-use window (RFC 8461 §10.2). It is a view of the
// Store (whose own Get, Delete and List are the queue's) and is valid
// until the Store is closed.
type PolicyCache struct{ s *Store }

var _ sts.Store = PolicyCache{}

// PolicyCache returns the store's MTA-STS policy cache.
func (s *Store) PolicyCache() PolicyCache { return PolicyCache{s} }

// Get implements sts.Store.
func (c PolicyCache) Get(ctx context.Context, domain string) (sts.StoredPolicy, bool, error) {
	var p sts.StoredPolicy
	if err := ctx.Err(); err != nil {
		return p, false, err
	}
	found := false
	err := c.s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSTS).Get([]byte(domain))
		if v == nil {
			return nil
		}
		found = true
		return unmarshalPolicy(c.s.db.Path(), []byte(domain), v, &p)
	})
	return p, found, err
}

// Put implements sts.Store.
func (c PolicyCache) Put(ctx context.Context, p sts.StoredPolicy) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v, err := json.Marshal(&p)
	if err != nil {
		return err
	}
	return c.s.c.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketSTS).Put([]byte(p.Domain), v) })
}

// Delete implements sts.Store.
func (c PolicyCache) Delete(ctx context.Context, domain string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.s.c.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketSTS).Delete([]byte(domain)) })
}

// List implements sts.Store. The policies come sorted by domain. A policy
// that cannot be read is left out (Get returns its error), as if it were
// not cached: the sts client fetches it again, and Put replaces it.
func (c PolicyCache) List(ctx context.Context) ([]sts.StoredPolicy, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []sts.StoredPolicy
	err := c.s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSTS).ForEach(func(k, v []byte) error {
			var p sts.StoredPolicy
			if unmarshalPolicy(c.s.db.Path(), k, v, &p) == nil {
				out = append(out, p)
			}
			return nil
		})
	})
	return out, err
}

// unmarshalPolicy reads the cached policy v of domain, from the file at
// path; one that does not decode is a *CorruptError.
func unmarshalPolicy(path string, domain, v []byte, p *sts.StoredPolicy) error {
	if v == nil { // a nested bucket, not a value
		return recordError(path, bucketSTS, domain, "a bucket, not a policy", nil)
	}
	if err := json.Unmarshal(v, p); err != nil {
		return recordError(path, bucketSTS, domain, "invalid JSON", err)
	}
	return nil
}
