package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"maps"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/dnsname"
	"github.com/sealpost/sealpost/tlsrpt"
	bolt "go.etcd.io/bbolt"
)

var _ tlsrpt.Store = (*Store)(nil)

// The TLS-RPT buckets.
var (
	bucketRPTCounts = []byte("tlsrpt.counts") // day, domain, 0, policy ID → storedCounts
	bucketRPTSubs   = []byte("tlsrpt.subs")   // day, domain → Submission
	bucketRPTSupp   = []byte("tlsrpt.supp")   // kind, " ", value → Suppression
)

// storedCounts is tlsrpt.Counts in a form JSON can hold (a Failure is not
// a map key in JSON).
type storedCounts struct {
	Policy     tlsrpt.Policy
	Successful int64
	Failures   []storedFailure `json:",omitempty"`
}

type storedFailure struct {
	F tlsrpt.Failure
	N int64
}

// dayKey is the key prefix of a day: the day number, big-endian with the
// sign bit flipped so that keys sort by day.
func dayKey(day tlsrpt.Day) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(day)^1<<31)
}

func domainKey(day tlsrpt.Day, domain string) []byte {
	return append(append(dayKey(day), normalizeDomain(domain)...), 0)
}

// normalizeDomain keys a policy domain by dnsname.Fold, as tlsrpt's own
// stores do, so that every store files a domain under the same key.
func normalizeDomain(d string) string { return dnsname.Fold(d) }

// AddCounts implements tlsrpt.Store.
func (s *Store) AddCounts(ctx context.Context, batch []tlsrpt.Counts) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(batch) == 0 {
		return nil
	}
	// Copy now: the caller may reuse the batch once we return, and the
	// transaction may run after that on a retry.
	in := make([]tlsrpt.Counts, len(batch))
	for i, c := range batch {
		in[i] = c
		in[i].Failures = maps.Clone(c.Failures)
	}
	return s.c.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRPTCounts)
		for _, c := range in {
			id := c.Policy.ID()
			key := append(domainKey(c.Day, c.Policy.Domain), id[:]...)
			sc := storedCounts{Policy: c.Policy}
			if v := b.Get(key); v != nil {
				// Counts that cannot be read are replaced: one policy's
				// day of counts is lost, where failing would stop the
				// recorder for good.
				if json.Unmarshal(v, &sc) != nil {
					sc = storedCounts{Policy: c.Policy}
				}
			}
			sc.Successful += c.Successful
			sc.Failures = addFailures(sc.Failures, c.Failures)
			v, err := json.Marshal(&sc)
			if err != nil {
				return err
			}
			if err := b.Put(key, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// addFailures adds counts to list, folding new distinct failures into
// their result type alone once tlsrpt.MaxFailureDetails are kept, as the
// tlsrpt.Store contract asks.
func addFailures(list []storedFailure, add map[tlsrpt.Failure]int64) []storedFailure {
	at := make(map[tlsrpt.Failure]int, len(list))
	for i, sf := range list {
		at[sf.F] = i
	}
	for f, n := range add {
		if _, ok := at[f]; !ok && len(list) >= tlsrpt.MaxFailureDetails {
			f = tlsrpt.Failure{ResultType: f.ResultType}
		}
		if i, ok := at[f]; ok {
			list[i].N += n
			continue
		}
		at[f] = len(list)
		list = append(list, storedFailure{F: f, N: n})
	}
	return list
}

// DayDomains implements tlsrpt.Store.
func (s *Store) DayDomains(ctx context.Context, day tlsrpt.Day) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		prefix := dayKey(day)
		c := tx.Bucket(bucketRPTCounts).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			domain, _, _ := bytes.Cut(k[len(prefix):], []byte{0})
			if len(out) == 0 || out[len(out)-1] != string(domain) {
				out = append(out, string(domain))
			}
		}
		return nil
	})
	return out, err
}

// DayCounts implements tlsrpt.Store. Counts that cannot be read are left
// out, so that one damaged record does not stop the day's report.
func (s *Store) DayCounts(ctx context.Context, day tlsrpt.Day, domain string) ([]tlsrpt.Counts, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []tlsrpt.Counts
	err := s.db.View(func(tx *bolt.Tx) error {
		prefix := domainKey(day, domain)
		c := tx.Bucket(bucketRPTCounts).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var sc storedCounts
			if json.Unmarshal(v, &sc) != nil {
				continue
			}
			p := sc.Policy
			counts := tlsrpt.Counts{Day: day, Policy: tlsrpt.NewPolicy(p.Type, p.Domain, p.Strings, p.MXHosts),
				Successful: sc.Successful, Failures: make(map[tlsrpt.Failure]int64, len(sc.Failures))}
			for _, f := range sc.Failures {
				counts.Failures[f.F] += f.N
			}
			out = append(out, counts)
		}
		return nil
	})
	return out, err
}

// UpdateSubmission implements tlsrpt.Store.
func (s *Store) UpdateSubmission(ctx context.Context, day tlsrpt.Day, domain string, update func(*tlsrpt.Submission) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	domain = normalizeDomain(domain)
	key := append(dayKey(day), domain...)
	return s.c.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRPTSubs)
		sub := tlsrpt.Submission{Day: day, Domain: domain}
		if v := b.Get(key); v != nil {
			if err := json.Unmarshal(v, &sub); err != nil {
				return recordError(tx.DB().Path(), bucketRPTSubs, key, "invalid JSON", err)
			}
		}
		if err := update(&sub); err != nil {
			return err
		}
		v, err := json.Marshal(&sub)
		if err != nil {
			return err
		}
		return b.Put(key, v)
	})
}

// suppressionKey normalises a suppression's value as tlsrpt does: domains
// and mail addresses compare case-insensitively, https URIs exactly.
func suppressionKey(kind tlsrpt.SuppressionKind, value string) []byte {
	switch {
	case kind == tlsrpt.SuppressDomain:
		value = normalizeDomain(value)
	case strings.HasPrefix(strings.ToLower(value), "mailto:"):
		value = strings.ToLower(value)
	}
	return []byte(string(kind) + " " + value)
}

// Suppress implements tlsrpt.Store.
func (s *Store) Suppress(ctx context.Context, sup tlsrpt.Suppression) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v, err := json.Marshal(&sup)
	if err != nil {
		return err
	}
	return s.c.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRPTSupp).Put(suppressionKey(sup.Kind, sup.Value), v)
	})
}

// Unsuppress implements tlsrpt.Store.
func (s *Store) Unsuppress(ctx context.Context, kind tlsrpt.SuppressionKind, value string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.c.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRPTSupp).Delete(suppressionKey(kind, value))
	})
}

// Suppressions implements tlsrpt.Store. A suppression that cannot be read
// is left out, so that one damaged record does not stop every report.
func (s *Store) Suppressions(ctx context.Context) ([]tlsrpt.Suppression, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []tlsrpt.Suppression
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRPTSupp).ForEach(func(_, v []byte) error {
			var sup tlsrpt.Suppression
			if json.Unmarshal(v, &sup) == nil {
				out = append(out, sup)
			}
			return nil
		})
	})
	return out, err
}

// DeleteBefore implements tlsrpt.Store.
func (s *Store) DeleteBefore(ctx context.Context, day tlsrpt.Day, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	limit := dayKey(day)
	return s.c.update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketRPTCounts, bucketRPTSubs} {
			if err := deleteWhile(tx.Bucket(name), func(k []byte) bool { return len(k) < 4 || bytes.Compare(k[:4], limit) < 0 }); err != nil {
				return err
			}
		}
		b := tx.Bucket(bucketRPTSupp)
		var expired [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var sup tlsrpt.Suppression
			if json.Unmarshal(v, &sup) == nil && !sup.Active(now) {
				expired = append(expired, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range expired {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// deleteWhile deletes the keys of b from the first on while del says so.
func deleteWhile(b *bolt.Bucket, del func(k []byte) bool) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil && del(k); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
