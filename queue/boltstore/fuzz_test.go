package boltstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// FuzzOpen gives Open any file content: it must refuse it with ErrCorrupt
// or open it, and then every method must work without a panic; Salvage
// must not panic on it either.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed.db")
	// 1 KiB pages keep the inputs small, and the fuzzer quick to shorten
	// what it finds; Open keeps the page size of the file it is given.
	db, err := bolt.Open(path, 0o600, &bolt.Options{PageSize: 1024})
	if err != nil {
		f.Fatal(err)
	}
	if err := db.Close(); err != nil {
		f.Fatal(err)
	}
	seed, psize := buildFile(f, path, 2) // trimmed to its pages: small inputs
	pf, err := openPageFile(bytes.NewReader(seed), path, int64(len(seed)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	for _, spoil := range []func(b []byte){
		func(b []byte) { clear(b[2*psize : 3*psize]) },
		func(b []byte) { b[int(pf.meta.root)*psize+10] = 0xff },
		func(b []byte) { b[int(pf.meta.root)*psize+pageHeaderSize+4] ^= 0x40 },
		func(b []byte) { b[pageHeaderSize+8] ^= 1 },
	} {
		b := bytes.Clone(seed)
		spoil(b)
		f.Add(b)
	}
	f.Add(seed[:len(seed)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "state.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Salvage(path, filepath.Join(dir, "fresh.db")); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Salvage = %v", err)
		}
		s, err := Open(path, &Options{NoSync: true})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open = %v, want ErrCorrupt", err)
			}
			return
		}
		useStore(s)
		_, _ = s.Damaged(context.Background())
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})
}
