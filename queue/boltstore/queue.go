package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sealpost/sealpost/queue"
	bolt "go.etcd.io/bbolt"
)

var _ queue.Store = (*Store)(nil)

// record is what the msg bucket holds for a message.
type record struct {
	Env *queue.Envelope
	// Lease is when the current lease ends; zero when there is none.
	Lease time.Time `json:",omitzero"`
}

// key returns the message's place in the due index: the end of its lease,
// or its due time.
func (r *record) key() (time.Time, bool) {
	if !r.Lease.IsZero() {
		return r.Lease, true
	}
	return r.Env.Due()
}

// dueKey is the index key of id at t: t in nanoseconds since 1970, big
// endian so that keys sort by time, then the ID.
func dueKey(t time.Time, id queue.ID) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, timeBits(t))
	return append(k, id...)
}

// timeBits maps t onto the index's clock, clamped to what UnixNano
// represents (years 1970 to 2262).
func timeBits(t time.Time) uint64 {
	switch {
	case t.Unix() < 0:
		return 0
	case t.Unix() >= math.MaxInt64/int64(time.Second):
		return math.MaxInt64
	}
	return uint64(t.UnixNano())
}

// txn is one transaction's view of the queue buckets.
type txn struct {
	path                                  string // the file, for errors
	msg, body, due, leased, meta, damaged *bolt.Bucket
}

func queueTxn(tx *bolt.Tx) txn {
	t := txn{tx.DB().Path(), tx.Bucket(bucketMsg), tx.Bucket(bucketBody), tx.Bucket(bucketDue), tx.Bucket(bucketLeased),
		tx.Bucket(bucketMeta), tx.Bucket(bucketDamaged)}
	// IDs grow with arrival time, so new messages are appended at the
	// right edge of msg and body. bbolt splits a page at FillPercent
	// (0.5 by default, for random inserts), which would leave every page
	// of an append-only bucket half empty: twice the file, and a deeper
	// tree, for a long queue. (Not persisted: set in every transaction.)
	t.msg.FillPercent, t.body.FillPercent = appendFill, appendFill
	return t
}

// appendFill is the FillPercent of the append-mostly buckets; below 1 so
// that a record that grows (a recipient's diagnostic) seldom splits its page.
const appendFill = 0.9

func (t txn) load(id queue.ID) (*record, error) {
	v := t.msg.Get([]byte(id))
	if v == nil {
		return nil, queue.ErrNotFound
	}
	return decode(t.path, id, v)
}

// decode reads the msg bucket's value v for id, from the file at path. A
// record that does not decode, or holds no envelope, or another message's,
// is a *CorruptError.
func decode(path string, id queue.ID, v []byte) (*record, error) {
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, recordError(path, bucketMsg, []byte(id), "invalid JSON", err)
	}
	switch {
	case r.Env == nil:
		return nil, recordError(path, bucketMsg, []byte(id), "no envelope", nil)
	case r.Env.ID != id:
		return nil, recordError(path, bucketMsg, []byte(id), fmt.Sprintf("holds the envelope of message %q", r.Env.ID), nil)
	}
	return &r, nil
}

// setAside takes a message Claim or Recover cannot hand out (its record
// unreadable, its content missing) out of the due index and the leases, so
// that it neither blocks the messages behind it nor is read again at every
// Claim, and notes it in the damaged bucket for Damaged. The record and
// content stay where they are for Get, Delete and Salvage.
func (t txn) setAside(key []byte, id queue.ID, why error) error {
	if key != nil {
		if err := t.due.Delete(key); err != nil {
			return err
		}
	}
	if id == "" {
		return nil // an index key without an ID
	}
	if err := t.leased.Delete([]byte(id)); err != nil {
		return err
	}
	bucket, what := string(bucketMsg), why.Error()
	var ce *CorruptError
	if errors.As(why, &ce) {
		bucket, what = ce.Bucket, ce.What
	}
	return t.damaged.Put([]byte(id), []byte(bucket+"\x00"+what))
}

// store writes r and moves its index entry from where old said it was.
func (t txn) store(r *record, old time.Time, wasIndexed bool) error {
	id := r.Env.ID
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := t.msg.Put([]byte(id), v); err != nil {
		return err
	}
	key, ok := r.key()
	if wasIndexed && (!ok || !key.Equal(old)) {
		if err := t.due.Delete(dueKey(old, id)); err != nil {
			return err
		}
	}
	if ok && (!wasIndexed || !key.Equal(old)) {
		if err := t.due.Put(dueKey(key, id), nil); err != nil {
			return err
		}
	}
	if r.Lease.IsZero() {
		return t.leased.Delete([]byte(id))
	}
	return t.leased.Put([]byte(id), nil)
}

// add stores a new message.
func (t txn) add(e *queue.Entry) error {
	id := []byte(e.Envelope.ID)
	if t.msg.Get(id) != nil {
		return fmt.Errorf("boltstore: message %s already stored", e.Envelope.ID)
	}
	if err := t.body.Put(id, e.Body); err != nil {
		return err
	}
	if err := t.store(&record{Env: e.Envelope}, time.Time{}, false); err != nil {
		return err
	}
	return t.count(1)
}

// remove deletes a message whose index entry is at key (if indexed).
func (t txn) remove(id queue.ID, key time.Time, indexed bool) error {
	if indexed {
		if err := t.due.Delete(dueKey(key, id)); err != nil {
			return err
		}
	}
	for _, b := range []*bolt.Bucket{t.msg, t.body, t.leased, t.damaged} {
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
	}
	return t.count(-1)
}

var countKey = []byte("count")

func (t txn) count(delta int64) error {
	var n uint64
	if v := t.meta.Get(countKey); len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	n = uint64(max(int64(n)+delta, 0))
	return t.meta.Put(countKey, binary.BigEndian.AppendUint64(nil, n))
}

// Enqueue implements queue.Store.
func (s *Store) Enqueue(ctx context.Context, e *queue.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.c.update(func(tx *bolt.Tx) error { return queueTxn(tx).add(e) })
}

// Claim implements queue.Store.
func (s *Store) Claim(ctx context.Context, now, until time.Time, limit int) ([]*queue.Envelope, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !until.After(now) {
		return nil, fmt.Errorf("boltstore: lease until %v does not end after now (%v)", until, now)
	}
	if limit <= 0 {
		return nil, nil
	}
	var out []*queue.Envelope
	err := s.c.update(func(tx *bolt.Tx) error {
		out = out[:0]
		t := queueTxn(tx)
		limitKey := binary.BigEndian.AppendUint64(nil, timeBits(now)+1)
		var keys [][]byte
		c := t.due.Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k, limitKey) < 0 && len(keys) < limit; k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		// The cursor is not used past here: bbolt cursors do not survive
		// changes to their bucket.
		for _, k := range keys {
			env, err := t.claim(k, until)
			if err != nil {
				return err
			}
			if env != nil {
				out = append(out, env)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// claim leases the message of the due index key k until until and
// returns its envelope, or nil if the entry leads to no message that can
// be handed out: a damaged one is set aside, a stale entry (its record is
// indexed elsewhere) is put right.
func (t txn) claim(k []byte, until time.Time) (*queue.Envelope, error) {
	if len(k) <= 8 {
		return nil, t.setAside(k, "", nil)
	}
	id := queue.ID(k[8:])
	r, err := t.load(id)
	var ce *CorruptError
	switch {
	case err == queue.ErrNotFound:
		return nil, t.due.Delete(k)
	case errors.As(err, &ce):
		return nil, t.setAside(k, id, err)
	case err != nil:
		return nil, err
	case t.body.Get([]byte(id)) == nil:
		return nil, t.setAside(k, id, recordError(t.path, bucketBody, []byte(id), "missing", nil))
	}
	old, ok := r.key()
	if !ok || !bytes.Equal(k, dueKey(old, id)) {
		if err := t.due.Delete(k); err != nil || !ok {
			return nil, err
		}
		return nil, t.due.Put(dueKey(old, id), nil)
	}
	r.Lease = until
	if err := t.store(r, old, true); err != nil {
		return nil, err
	}
	return r.Env, nil
}

// Update implements queue.Store.
func (s *Store) Update(ctx context.Context, id queue.ID, rcpts []queue.Recipient, add ...*queue.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rcpts = slices.Clone(rcpts)
	return s.c.update(func(tx *bolt.Tx) error {
		t := queueTxn(tx)
		r, err := t.load(id)
		if err != nil {
			return err
		}
		old, indexed := r.key()
		r.Env.Recipients = rcpts
		r.Lease = time.Time{}
		if r.Env.Done() {
			err = t.remove(id, old, indexed)
		} else {
			err = t.store(r, old, indexed)
		}
		if err != nil {
			return err
		}
		for _, e := range add {
			if err := t.add(e); err != nil {
				return err
			}
		}
		return nil
	})
}

// release ends r's lease, if any.
func (t txn) release(id queue.ID) (bool, error) {
	r, err := t.load(id)
	if err == queue.ErrNotFound {
		return false, t.leased.Delete([]byte(id))
	}
	if err != nil || r.Lease.IsZero() {
		return false, err
	}
	old := r.Lease
	r.Lease = time.Time{}
	return true, t.store(r, old, true)
}

// Release implements queue.Store.
func (s *Store) Release(ctx context.Context, ids ...queue.ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	return s.c.update(func(tx *bolt.Tx) error {
		t := queueTxn(tx)
		for _, id := range ids {
			if _, err := t.release(id); err != nil {
				return err
			}
		}
		return nil
	})
}

// Recover implements queue.Store.
func (s *Store) Recover(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int
	err := s.c.update(func(tx *bolt.Tx) error {
		n = 0
		t := queueTxn(tx)
		var ids []queue.ID
		if err := t.leased.ForEach(func(k, _ []byte) error {
			ids = append(ids, queue.ID(k))
			return nil
		}); err != nil {
			return err
		}
		for _, id := range ids {
			ok, err := t.release(id)
			var ce *CorruptError
			if errors.As(err, &ce) {
				// A queue that cannot start for one record would hold up
				// all the others.
				err = t.setAside(nil, id, err)
			}
			if err != nil {
				return err
			}
			if ok {
				n++
			}
		}
		return nil
	})
	return n, err
}

// Modify implements queue.Store.
func (s *Store) Modify(ctx context.Context, id queue.ID, change func(*queue.Envelope) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.c.update(func(tx *bolt.Tx) error {
		t := queueTxn(tx)
		r, err := t.load(id)
		if err != nil {
			return err
		}
		old, indexed := r.key()
		env := r.Env.Clone()
		if err := change(env); err != nil {
			return err
		}
		env.ID, env.Size, env.Arrived = r.Env.ID, r.Env.Size, r.Env.Arrived
		r.Env = env
		return t.store(r, old, indexed)
	})
}

// Delete implements queue.Store.
func (s *Store) Delete(ctx context.Context, id queue.ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.c.update(func(tx *bolt.Tx) error {
		t := queueTxn(tx)
		r, err := t.load(id)
		var ce *CorruptError
		if errors.As(err, &ce) {
			return t.removeDamaged(id)
		}
		if err != nil {
			return err
		}
		key, indexed := r.key()
		return t.remove(id, key, indexed)
	})
}

// removeDamaged deletes a message whose record cannot be read, so that an
// operator can get rid of it. Its index entry, if Claim has not set it
// aside yet, is found by a scan of the index: rare, and only for damage.
func (t txn) removeDamaged(id queue.ID) error {
	var stale [][]byte
	err := t.due.ForEach(func(k, _ []byte) error {
		if len(k) > 8 && string(k[8:]) == string(id) {
			stale = append(stale, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range stale {
		if err := t.due.Delete(k); err != nil {
			return err
		}
	}
	return t.remove(id, time.Time{}, false)
}

// Get implements queue.Store.
func (s *Store) Get(ctx context.Context, id queue.ID) (*queue.Envelope, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var env *queue.Envelope
	err := s.db.View(func(tx *bolt.Tx) error {
		r, err := queueTxn(tx).load(id)
		if err == nil {
			env = r.Env
		}
		return err
	})
	return env, err
}

// Body implements queue.Store.
func (s *Store) Body(ctx context.Context, id queue.ID) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var body []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketBody).Get([]byte(id))
		if v == nil {
			return queue.ErrNotFound
		}
		// bbolt's value lives in the memory map only during the
		// transaction; the caller gets its own copy.
		body = bytes.Clone(v)
		return nil
	})
	return body, err
}

// List implements queue.Store.
func (s *Store) List(ctx context.Context, after queue.ID, limit int) ([]*queue.Envelope, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*queue.Envelope
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketMsg).Cursor()
		k, v := c.Seek([]byte(after))
		if k != nil && string(k) == string(after) {
			k, v = c.Next()
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			r, err := decode(s.db.Path(), queue.ID(k), v)
			if err != nil {
				continue // damaged: Get says how; one record does not hide the rest
			}
			out = append(out, r.Env)
		}
		return nil
	})
	return out, err
}

// Stats implements queue.Store.
func (s *Store) Stats(ctx context.Context) (int, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return 0, time.Time{}, err
	}
	var n int
	var next time.Time
	err := s.db.View(func(tx *bolt.Tx) error {
		t := queueTxn(tx)
		if v := t.meta.Get(countKey); len(v) == 8 {
			n = int(binary.BigEndian.Uint64(v))
		}
		if k, _ := t.due.Cursor().First(); len(k) >= 8 {
			next = time.Unix(0, int64(binary.BigEndian.Uint64(k[:8])))
		}
		return nil
	})
	return n, next, err
}

// Damaged returns the messages Claim and Recover set aside because their
// record could not be read or their content was missing: they are no
// longer tried. Get tells what is wrong with each, Delete removes one, and
// Salvage copies what can be read of a damaged file to a new one.
func (s *Store) Damaged(ctx context.Context) ([]*CorruptError, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*CorruptError
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDamaged).ForEach(func(k, v []byte) error {
			bucket, what, _ := strings.Cut(string(v), "\x00")
			out = append(out, recordError(s.db.Path(), []byte(bucket), k, what, nil))
			return nil
		})
	})
	return out, err
}
