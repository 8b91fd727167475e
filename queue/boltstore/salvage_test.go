package boltstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// salvaged checks the store Salvage wrote at path: it opens, and each
// message in it is one of the originals, with its content.
func salvaged(t *testing.T, path string) (messages int) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open of the salvaged store = %v", err)
	}
	defer s.Close()
	envs, err := s.List(ctx, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range envs {
		body, err := s.Body(ctx, env.ID)
		if err != nil {
			t.Fatalf("Body(%s) = %v", env.ID, err)
		}
		var i int
		for i = range 300 {
			if message(i, testT0).Envelope.ID == env.ID {
				break
			}
		}
		if want := message(i, testT0).Body; i%10 != 0 && !bytes.Equal(body, want) || int64(len(body)) != env.Size {
			t.Fatalf("%s: salvaged content %q, want %q", env.ID, body, want)
		}
	}
	if n, _, err := s.Stats(ctx); err != nil || n != len(envs) {
		t.Errorf("Stats = %d, %v; want %d", n, err, len(envs))
	}
	if err := useStore(s); err != nil {
		t.Errorf("on the salvaged store: %v", err)
	}
	return len(envs)
}

func TestSalvage(t *testing.T) {
	dir := t.TempDir()
	orig, psize := buildFile(t, filepath.Join(dir, "orig.db"), 300)
	f, err := openPageFile(bytes.NewReader(orig), "orig.db", int64(len(orig)))
	if err != nil {
		t.Fatal(err)
	}
	// A leaf page of queue.msg and one of queue.body, to spoil.
	buckets, err := f.topBuckets()
	if err != nil {
		t.Fatal(err)
	}
	leafOf := func(bucket []byte) int {
		g := *f
		g.seen = make([]uint64, len(f.seen))
		root := native.Uint64(buckets[string(bucket)])
		p, err := g.readPage(root, "")
		if err != nil || p.flags != flagBranch {
			t.Fatalf("%s: root page %d is not a branch page (%v)", bucket, root, err)
		}
		return int(p.elems[1].child)
	}
	msgLeaf, bodyLeaf := leafOf(bucketMsg), leafOf(bucketBody)
	spoil := func(ids ...int) []byte {
		b := bytes.Clone(orig)
		for _, id := range ids {
			clear(b[id*psize : (id+1)*psize])
		}
		return b
	}
	tests := []struct {
		name     string
		file     []byte
		all      bool // every message copied
		policies int
	}{
		{"sound file", orig, true, 20},
		{"a page of records zeroed", spoil(msgLeaf), false, 20},
		{"a page of content zeroed", spoil(bodyLeaf), false, 20},
		{"newest meta page zeroed too", spoil(msgLeaf, int(f.meta.txid%2)), false, 20},
		// bbolt writes a bucket's root page last, at the end of the file:
		// the cut takes the root bucket with it, and nothing can be found.
		{"cut to three quarters", orig[:len(orig)*3/4], false, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			damaged, fresh := filepath.Join(t.TempDir(), "damaged.db"), filepath.Join(t.TempDir(), "fresh.db")
			if err := os.WriteFile(damaged, tt.file, 0o400); err != nil {
				t.Fatal(err)
			}
			rep, err := Salvage(damaged, fresh)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", rep)
			if after, _ := os.ReadFile(damaged); !bytes.Equal(after, tt.file) {
				t.Error("Salvage changed the damaged file")
			}
			n := salvaged(t, fresh)
			switch {
			case n != rep.Messages:
				t.Errorf("report says %d messages copied, the store holds %d", rep.Messages, n)
			case tt.all && (n != 300 || len(rep.Skipped) != 0):
				t.Errorf("copied %d messages and skipped %q; want all 300 and nothing skipped", n, rep.Skipped)
			case !tt.all && (n == 0 && tt.policies >= 0 || n >= 300 || len(rep.Skipped) == 0):
				t.Errorf("copied %d messages and skipped %q; want most, and the damage reported", n, rep.Skipped)
			}
			if tt.policies >= 0 && rep.Policies != tt.policies {
				t.Errorf("copied %d policies, want %d", rep.Policies, tt.policies)
			}
		})
	}
}

func TestSalvageRefuses(t *testing.T) {
	dir := t.TempDir()
	orig, _ := buildFile(t, filepath.Join(dir, "orig.db"), 10)
	text := filepath.Join(dir, "text")
	if err := os.WriteFile(text, bytes.Repeat([]byte("not a store\n"), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Salvage(text, filepath.Join(dir, "a.db")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Salvage of a text file = %v, want ErrCorrupt", err)
	}
	damaged := filepath.Join(dir, "damaged.db")
	if err := os.WriteFile(damaged, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Salvage(damaged, text); err == nil {
		t.Error("Salvage into a file that is not empty succeeded")
	}
}
