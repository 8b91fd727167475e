package boltstore

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkOpen measures what the checker adds to Open: check is Open,
// bbolt the same Open without the check (bbolt still walks every page to
// rebuild its freelist). MB/s is over the pages in use.
func BenchmarkOpen(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		path := filepath.Join(b.TempDir(), "state.db")
		inUse := buildLarge(b, path, n)
		for _, mode := range []string{"check", "bbolt"} {
			b.Run(fmt.Sprintf("messages=%d/%s", n, mode), func(b *testing.B) {
				b.SetBytes(inUse)
				for b.Loop() {
					var s *Store
					var err error
					if mode == "check" {
						s, err = Open(path, nil)
					} else {
						s, err = openUnchecked(path)
					}
					if err != nil {
						b.Fatal(err)
					}
					s.Close()
				}
			})
		}
	}
}

// openUnchecked is Open without the checker.
func openUnchecked(path string) (*Store, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	db, err := openBolt(f, path, Options{LockTimeout: 1e9, InitialMmapSize: 64 << 20})
	if err != nil {
		return nil, err
	}
	return &Store{db: db, c: newCommitter(db, 1)}, nil
}

// buildLarge writes n messages, a thousand a transaction, and returns the
// bytes of the pages in use.
func buildLarge(b *testing.B, path string, n int) int64 {
	s, err := Open(path, &Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i += 1000 {
		err := s.db.Update(func(tx *bolt.Tx) error {
			t := queueTxn(tx)
			for j := i; j < min(i+1000, n); j++ {
				if err := t.add(message(j, testT0)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	pf, err := openPageFile(bytes.NewReader(data), path, int64(len(data)))
	if err != nil {
		b.Fatal(err)
	}
	return int64(pf.npages * pf.psize)
}
