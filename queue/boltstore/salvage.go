package boltstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/sts"
	"github.com/sealpost/sealpost/tlsrpt"
	bolt "go.etcd.io/bbolt"
)

// SalvageReport says what Salvage copied and what it left behind.
type SalvageReport struct {
	// Messages, Policies and TLSRPT count what was copied: messages
	// (envelope and content), MTA-STS policies, and TLS-RPT counts,
	// submissions and suppressions.
	Messages, Policies, TLSRPT int
	// Skipped says what could not be read, one line each: a damaged page
	// (and with it every record below it) or a damaged record.
	Skipped []string
}

// Salvage copies every message (envelope and content), MTA-STS policy and
// TLS-RPT record that can still be read from the store file damaged into
// a new store at fresh, which must not exist or be empty, and reports what
// it copied and what it skipped. It reads damaged with the checker's page
// reader, read-only, and never with bbolt: it skips a damaged page or
// record and goes on with the rest. Salvaged messages lose their leases
// (they are due again) and nothing else.
//
// damaged must not be in use by a running store. The error is about fresh,
// or says that damaged has no readable meta page: then nothing can be
// copied.
func Salvage(damaged, fresh string) (*SalvageReport, error) {
	in, err := os.Open(damaged)
	if err != nil {
		return nil, fmt.Errorf("boltstore: salvage: %w", err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return nil, fmt.Errorf("boltstore: salvage: %w", err)
	}
	f, err := readMeta(in, damaged, fi.Size(), true)
	if err != nil {
		return nil, fmt.Errorf("boltstore: salvage: nothing can be read: %w", err)
	}
	rep := &SalvageReport{}
	f.skip = func(e *CorruptError) error {
		rep.Skipped = append(rep.Skipped, e.What)
		return nil
	}
	buckets, err := f.topBuckets()
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(fresh); err == nil && fi.Size() > 0 {
		return nil, fmt.Errorf("boltstore: salvage: %s exists and is not empty; give a new file", fresh)
	}
	out, err := Open(fresh, &Options{NoSync: true})
	if err != nil {
		return nil, err
	}
	s := &salvage{f: f, out: out, rep: rep, buckets: buckets}
	err = s.messages()
	if err == nil {
		err = s.records()
	}
	if err == nil {
		err = out.db.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: salvage into %s: %w", fresh, err)
	}
	return rep, nil
}

// topBuckets returns the headers of the root bucket's buckets, by name.
func (f *pageFile) topBuckets() (map[string][]byte, error) {
	buckets := map[string][]byte{}
	err := f.walkTree(f.meta.root, nil, nil, "root bucket", func(e element) error {
		if e.flags&leafFlagBucket != 0 {
			buckets[string(e.key)] = bytes.Clone(e.value)
		}
		return nil
	})
	return buckets, err
}

// lookup returns the value of key in the bucket whose header is bucket,
// reading only the pages on the way down; nil if it is not there or
// cannot be read.
func (f *pageFile) lookup(bucket, key []byte) ([]byte, error) {
	g := *f
	g.seen, g.skip = nil, nil
	if len(bucket) < bucketHeaderSize {
		return nil, g.corrupt("bucket header of %d bytes", len(bucket))
	}
	id := native.Uint64(bucket)
	var elems []element
	if id == 0 {
		p, what := parsePage(bucket[bucketHeaderSize:])
		if what != "" || p.flags != flagLeaf {
			return nil, g.corrupt("inline bucket: %s", what)
		}
		elems = p.elems
	}
	// A tree deeper than 64 is a cycle: bbolt's fan-out makes that
	// many levels hold more pages than a file can.
	for depth := 0; id != 0; depth++ {
		p, err := g.readPage(id, "lookup")
		if err != nil {
			return nil, err
		}
		if p.flags == flagLeaf {
			elems = p.elems
			break
		}
		if depth == 64 {
			return nil, g.corrupt("page %d: the tree is more than 64 levels deep", id)
		}
		next := p.elems[0].child
		for _, e := range p.elems[1:] {
			if bytes.Compare(e.key, key) > 0 {
				break
			}
			next = e.child
		}
		id = next
	}
	for _, e := range elems {
		if bytes.Equal(e.key, key) && e.flags&leafFlagBucket == 0 {
			return e.value, nil
		}
	}
	return nil, nil
}

// salvage is one run of Salvage.
type salvage struct {
	f       *pageFile
	out     *Store
	rep     *SalvageReport
	buckets map[string][]byte
}

func (s *salvage) skip(format string, args ...any) {
	s.rep.Skipped = append(s.rep.Skipped, fmt.Sprintf(format, args...))
}

// salvageBatch is how many records are written per transaction.
const salvageBatch = 500

// messages copies the messages whose record and content can be read.
func (s *salvage) messages() error {
	msgs, bodies := s.buckets[string(bucketMsg)], s.buckets[string(bucketBody)]
	if msgs == nil || bodies == nil {
		s.skip("the queue buckets (queue.msg, queue.body) cannot be found")
		return nil
	}
	var batch []*queue.Entry
	flush := func() error {
		err := s.out.db.Update(func(tx *bolt.Tx) error {
			t := queueTxn(tx)
			for _, e := range batch {
				if err := t.add(e); err != nil {
					return err
				}
			}
			return nil
		})
		s.rep.Messages += len(batch)
		batch = batch[:0]
		return err
	}
	seen := map[string]bool{}
	err := s.f.walkBucket(msgs, string(bucketMsg), func(e element) error {
		id := queue.ID(e.key)
		r, err := decode(s.f.path, id, e.value)
		switch {
		case e.flags&leafFlagBucket != 0:
			s.skip("queue.msg/%q: a bucket, not a record", e.key)
			return nil
		case err != nil:
			s.skip("queue.msg/%q: %s", e.key, err.(*CorruptError).What)
			return nil
		case seen[string(id)]: // a damaged tree may hold a key twice
			return nil
		}
		body, err := s.f.lookup(bodies, e.key)
		if body == nil {
			why := "missing"
			var ce *CorruptError
			if errors.As(err, &ce) {
				why = ce.What
			}
			s.skip("message %s: content unreadable (%s)", id, why)
			return nil
		}
		seen[string(id)] = true
		batch = append(batch, &queue.Entry{Envelope: r.Env, Body: bytes.Clone(body)})
		if len(batch) == salvageBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// records copies the MTA-STS policies and TLS-RPT records that decode.
func (s *salvage) records() error {
	for _, b := range []struct {
		name  []byte
		n     *int
		valid func([]byte) error
	}{
		{bucketSTS, &s.rep.Policies, func(v []byte) error { return json.Unmarshal(v, new(sts.StoredPolicy)) }},
		{bucketRPTCounts, &s.rep.TLSRPT, func(v []byte) error { return json.Unmarshal(v, new(storedCounts)) }},
		{bucketRPTSubs, &s.rep.TLSRPT, func(v []byte) error { return json.Unmarshal(v, new(tlsrpt.Submission)) }},
		{bucketRPTSupp, &s.rep.TLSRPT, func(v []byte) error { return json.Unmarshal(v, new(tlsrpt.Suppression)) }},
	} {
		header := s.buckets[string(b.name)]
		if header == nil {
			continue // not in the file: nothing was stored there
		}
		var keys, values [][]byte
		flush := func() error {
			err := s.out.db.Update(func(tx *bolt.Tx) error {
				for i, k := range keys {
					if err := tx.Bucket(b.name).Put(k, values[i]); err != nil {
						return err
					}
				}
				return nil
			})
			*b.n += len(keys)
			keys, values = keys[:0], values[:0]
			return err
		}
		err := s.f.walkBucket(header, string(b.name), func(e element) error {
			if err := b.valid(e.value); e.flags&leafFlagBucket != 0 || err != nil {
				s.skip("%s/%q: unreadable", b.name, e.key)
				return nil
			}
			keys, values = append(keys, bytes.Clone(e.key)), append(values, bytes.Clone(e.value))
			if len(keys) == salvageBatch {
				return flush()
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		if err != nil {
			return err
		}
	}
	return nil
}
