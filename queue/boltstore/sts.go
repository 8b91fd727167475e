package boltstore

import (
	"context"
	"encoding/json"
	"fmt"

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
		return unmarshalPolicy(v, &p)
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

// List implements sts.Store. The policies come sorted by domain.
func (c PolicyCache) List(ctx context.Context) ([]sts.StoredPolicy, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []sts.StoredPolicy
	err := c.s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSTS).ForEach(func(_, v []byte) error {
			var p sts.StoredPolicy
			if err := unmarshalPolicy(v, &p); err != nil {
				return err
			}
			out = append(out, p)
			return nil
		})
	})
	return out, err
}

func unmarshalPolicy(v []byte, p *sts.StoredPolicy) error {
	if err := json.Unmarshal(v, p); err != nil {
		return fmt.Errorf("boltstore: cached MTA-STS policy unreadable: %w", err)
	}
	return nil
}
