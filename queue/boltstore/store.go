package boltstore

import (
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Options configures Open. The zero value (or nil) gives a durable store
// with the defaults described for each field.
type Options struct {
	// MaxBatch bounds the changes committed in one transaction. Zero means
	// 256.
	MaxBatch int

	// LockTimeout is how long Open waits for another process to let go of
	// the file (bbolt takes an exclusive lock). Zero means one second.
	LockTimeout time.Duration

	// InitialMmapSize is the size in bytes of the first memory map of the
	// file. While the file grows past the mapped size every writer waits
	// for all readers to finish, so a size that fits the expected queue
	// avoids stalls. Zero means 64 MiB (address space, not memory).
	InitialMmapSize int

	// NoSync skips fsync on commit. The store is then NOT durable: a power
	// cut loses recent changes and may corrupt the file. For tests and
	// benchmarks of the logic above the store only.
	NoSync bool
}

// Store is a node's whole state in one bbolt file: the mail queue (it
// implements queue.Store), the MTA-STS policy cache and the TLS-RPT
// counts. It is safe for concurrent use; only one process can open a file
// at a time.
//
// Every change is committed by one goroutine in group commits (see
// committer) and is on disk, data and index, before the method that made
// it returns.
type Store struct {
	db *bolt.DB
	c  *committer
}

// The top-level buckets. Each holds one part of a node's state.
var (
	bucketMsg    = []byte("queue.msg")    // ID → record (JSON)
	bucketBody   = []byte("queue.body")   // ID → content
	bucketDue    = []byte("queue.due")    // 8-byte time + ID → nothing
	bucketLeased = []byte("queue.leased") // ID → nothing: messages under lease
	bucketMeta   = []byte("queue.meta")   // counters

	// ID → why: messages Claim or Recover could not hand out (Damaged).
	bucketDamaged = []byte("queue.damaged")
)

var allBuckets = [][]byte{
	bucketMsg, bucketBody, bucketDue, bucketLeased, bucketMeta, bucketDamaged,
	bucketRPTCounts, bucketRPTSubs, bucketRPTSupp,
	bucketSTS,
}

// Open opens or creates the store at path. An existing file is checked
// page by page before bbolt reads it (see check.go): a damaged one is left
// untouched and refused with a *CorruptError (errors.Is ErrCorrupt) that
// says what is damaged; Salvage copies what can still be read out of it.
func Open(path string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = time.Second
	}
	if o.InitialMmapSize <= 0 {
		o.InitialMmapSize = 64 << 20
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	if err := lockFile(f, o.LockTimeout); err != nil {
		f.Close()
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	if err := checkFile(f, path, fi.Size()); err != nil {
		f.Close()
		return nil, err
	}
	db, err := openBolt(f, path, o)
	if err != nil {
		return nil, err
	}
	return &Store{db: db, c: newCommitter(db, o.MaxBatch)}, nil
}

// openBolt opens the checked, locked file f with bbolt and creates the
// buckets a new store lacks.
//
// The checker is the first line of defence against a damaged file: bbolt
// does not read a page it has not checked. The recover here is the second:
// a panic in bbolt while it opens the file means damage the checker missed,
// and is reported as ErrCorrupt instead of ending the process. It cannot
// catch everything (a panic in a goroutine of bbolt's, a read past the end
// of the file), which is why the checker comes first. After a panic bbolt's
// memory map of the file is not unmapped: the process should exit soon.
func openBolt(f *os.File, path string, o Options) (db *bolt.DB, err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if db != nil {
			db.Close()
		}
		f.Close() // releases the lock, if bbolt had not closed f yet
		db, err = nil, &CorruptError{Path: path, What: fmt.Sprintf("bbolt failed reading it: %v", r)}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		// bbolt opens the very file the checker read and still holds locked.
		OpenFile:        func(string, int, os.FileMode) (*os.File, error) { return f, nil },
		Timeout:         o.LockTimeout,
		InitialMmapSize: o.InitialMmapSize,
		// The hashmap freelist keeps allocation flat in a large, churning
		// file; not syncing it saves a write per commit (bbolt rebuilds it
		// on open, so this costs only start-up time).
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
		NoSync:         o.NoSync,
	})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				if errors.Is(err, berrors.ErrIncompatibleValue) {
					return &CorruptError{Path: path, What: fmt.Sprintf("root bucket: %s is not a bucket", name)}
				}
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		var ce *CorruptError
		if errors.As(err, &ce) {
			return nil, err
		}
		return nil, fmt.Errorf("boltstore: prepare %s: %w", path, err)
	}
	return db, nil
}

// Close waits for pending changes and closes the file.
func (s *Store) Close() error {
	s.c.close()
	return s.db.Close()
}

// Path returns the file's path.
func (s *Store) Path() string { return s.db.Path() }

// Size returns the file's size in bytes.
func (s *Store) Size() (int64, error) {
	fi, err := os.Stat(s.db.Path())
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
