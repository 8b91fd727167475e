package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/sts"
	"github.com/sealpost/sealpost/tlsrpt"
)

var testT0 = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)

var testDay = tlsrpt.DayOf(testT0)

// fillStore puts n messages (every tenth with a body over a page, so that
// body has overflow pages; enough for branch pages in msg, body and due),
// leases a few, and adds MTA-STS policies and TLS-RPT counts, submissions
// and suppressions.
func fillStore(t testing.TB, s *Store, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		e := message(i, testT0)
		if i%10 == 0 {
			e.Body = bytes.Repeat([]byte(fmt.Sprintf("line %d\r\n", i)), 1200)
			e.Envelope.Size = int64(len(e.Body))
		}
		if err := s.Enqueue(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Claim(ctx, testT0, testT0.Add(time.Hour), 5); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		p := sts.StoredPolicy{Domain: fmt.Sprintf("d%d.example", i), ID: "1", Text: "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n",
			FetchedAt: testT0, Expires: testT0.Add(24 * time.Hour)}
		if err := s.PolicyCache().Put(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	var batch []tlsrpt.Counts
	for i := range 20 {
		batch = append(batch, tlsrpt.Counts{Day: testDay, Successful: int64(i),
			Policy: tlsrpt.NewPolicy(tlsrpt.PolicyTypeSTS, fmt.Sprintf("d%d.example", i), []string{"version: STSv1"}, []string{"mx.example.com"})})
	}
	if err := s.AddCounts(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateSubmission(ctx, testDay, "d1.example", func(*tlsrpt.Submission) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Suppress(ctx, tlsrpt.Suppression{Kind: tlsrpt.SuppressDomain, Value: "d2.example", Until: testT0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

// buildFile writes a store of n messages at path and cuts the file to its
// high-water mark, so that copies of it are cheap. It returns the file's
// bytes and page size.
func buildFile(t testing.TB, path string, n int) ([]byte, int) {
	t.Helper()
	s, err := Open(path, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, s, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := openPageFile(bytes.NewReader(b), path, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	b = b[:f.npages*f.psize]
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return b, int(f.psize)
}

// useStore calls every method that reads the store, and a few that write
// it; it fails the test only by panicking. It returns the first error.
func useStore(s *Store) error {
	ctx := context.Background()
	var errs []error
	note := func(err error) {
		if !errors.Is(err, queue.ErrNotFound) { // the calls below delete messages others look for
			errs = append(errs, err)
		}
	}
	_, _, err := s.Stats(ctx)
	note(err)
	envs, err := s.List(ctx, "", 1000)
	note(err)
	for _, env := range envs {
		_, err = s.Get(ctx, env.ID)
		note(err)
		_, err = s.Body(ctx, env.ID)
		note(err)
	}
	_, err = s.Get(ctx, message(7, testT0).Envelope.ID)
	note(err)
	_, err = s.Body(ctx, message(7, testT0).Envelope.ID)
	note(err)
	_, err = s.Recover(ctx)
	note(err)
	claimed, err := s.Claim(ctx, testT0.Add(time.Minute), testT0.Add(time.Hour), 50)
	note(err)
	for _, env := range claimed {
		note(s.Update(ctx, env.ID, nil))
	}
	note(s.Enqueue(ctx, message(1_000_000, testT0)))
	note(s.Delete(ctx, message(3, testT0).Envelope.ID))
	_, _, err = s.PolicyCache().Get(ctx, "d3.example")
	note(err)
	_, err = s.PolicyCache().List(ctx)
	note(err)
	_, err = s.DayDomains(ctx, testDay)
	note(err)
	_, err = s.DayCounts(ctx, testDay, "d4.example")
	note(err)
	_, err = s.Suppressions(ctx)
	note(err)
	note(s.AddCounts(ctx, []tlsrpt.Counts{{Day: testDay, Successful: 1,
		Policy: tlsrpt.NewPolicy(tlsrpt.PolicyTypeSTS, "d5.example", []string{"version: STSv1"}, []string{"mx.example.com"})}}))
	note(s.DeleteBefore(ctx, testDay+1, testT0))
	return errors.Join(errs...)
}

// openDamaged opens the file b at path: it must be refused with an
// ErrCorrupt that names the file, or open and then serve every method
// without panicking. It reports whether Open refused it.
func openDamaged(t *testing.T, path string, b []byte) (refused bool) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, &Options{NoSync: true})
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open = %v, want an error that Is ErrCorrupt", err)
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "Salvage") {
			t.Fatalf("Open = %q; want the path and the way out (Salvage) named", err)
		}
		return true
	}
	useStore(s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	return false
}

// pageDamages are the ways TestOpenDamagedPage spoils a page.
var pageDamages = []struct {
	name string
	do   func(p []byte, rnd *rand.Rand)
}{
	{"zeroed", func(p []byte, _ *rand.Rand) { clear(p) }},
	{"header bytes flipped", func(p []byte, rnd *rand.Rand) {
		for range 3 {
			p[rnd.IntN(pageHeaderSize)] ^= byte(1 + rnd.IntN(255))
		}
	}},
	{"type flipped", func(p []byte, _ *rand.Rand) { p[8] ^= 0x03 }},
	{"overflow huge", func(p []byte, _ *rand.Rand) { native.PutUint32(p[12:], 0x7fffffff) }},
	{"body bytes flipped", func(p []byte, rnd *rand.Rand) {
		for range 8 {
			p[pageHeaderSize+rnd.IntN(len(p)-pageHeaderSize)] ^= byte(1 + rnd.IntN(255))
		}
	}},
	{"first element flipped", func(p []byte, rnd *rand.Rand) {
		p[pageHeaderSize+rnd.IntN(elementSize)] ^= byte(1 + rnd.IntN(255))
	}},
	{"element count huge", func(p []byte, _ *rand.Rand) { native.PutUint16(p[10:], 0xffff) }},
	{"element count one more", func(p []byte, _ *rand.Rand) { native.PutUint16(p[10:], native.Uint16(p[10:])+1) }},
}

// TestOpenDamagedPage spoils each page of a real store in each of the ways
// above: Open must refuse the file with ErrCorrupt, or every method must
// work on it without a panic. Before the checker, a zeroed page 2 made Open
// panic ("Page expected to be: 2, but self identifies as ...") and left the
// file locked for the rest of the process.
func TestOpenDamagedPage(t *testing.T) {
	dir := t.TempDir()
	orig, psize := buildFile(t, filepath.Join(dir, "orig.db"), 300)
	path := filepath.Join(dir, "state.db")
	npages := len(orig) / psize
	rnd := rand.New(rand.NewPCG(1, 2))
	refused := map[string]int{}
	for _, d := range pageDamages {
		for id := range npages {
			t.Run(fmt.Sprintf("%s/page %d", d.name, id), func(t *testing.T) {
				b := bytes.Clone(orig)
				d.do(b[id*psize:(id+1)*psize], rnd)
				if bytes.Equal(b, orig) {
					return
				}
				if openDamaged(t, path, b) {
					refused[d.name]++
				}
			})
		}
	}
	// Most of the pages are in use: spoiling their headers must be caught.
	for _, name := range []string{"zeroed", "type flipped", "overflow huge", "element count huge"} {
		if refused[name] < npages/2 {
			t.Errorf("%s: %d of %d pages refused, want most", name, refused[name], npages)
		}
	}
}

func TestOpenDamagedFile(t *testing.T) {
	dir := t.TempDir()
	orig, psize := buildFile(t, filepath.Join(dir, "orig.db"), 300)
	path := filepath.Join(dir, "state.db")
	rnd := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 16*psize)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	spoilMeta := func(b []byte, i int) { b[i*psize+pageHeaderSize+8] ^= 0xff } // the page size field: checksum fails
	tests := []struct {
		name string
		file func() []byte
	}{
		{"one byte", func() []byte { return []byte{0xed} }},
		{"shorter than a page", func() []byte { return orig[:100] }},
		{"cut one byte short of a page", func() []byte { return orig[:psize-1] }},
		{"cut after page 0", func() []byte { return orig[:psize] }},
		{"cut after page 0 and a byte", func() []byte { return orig[:psize+1] }},
		{"cut after the meta pages", func() []byte { return orig[:2*psize] }},
		{"cut in page 3", func() []byte { return orig[:3*psize+7] }},
		{"cut a page short", func() []byte { return orig[:len(orig)-psize] }},
		{"cut a byte short", func() []byte { return orig[:len(orig)-1] }},
		{"cut to half", func() []byte { return orig[:len(orig)/2/psize*psize] }},
		{"both meta pages broken", func() []byte { b := bytes.Clone(orig); spoilMeta(b, 0); spoilMeta(b, 1); return b }},
		{"random bytes", func() []byte { return random }},
		{"a text file", func() []byte {
			return bytes.Repeat([]byte("This is not a bbolt file, but a note an operator left here.\n"), 200)
		}},
		{"zeros", func() []byte { return make([]byte, 8*psize) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !openDamaged(t, path, tt.file()) {
				t.Error("Open accepted the file")
			}
		})
	}
}

// TestOpenOneMetaPageBroken: bbolt keeps two meta pages so that a torn
// write of one leaves the other; Open must open from the other.
func TestOpenOneMetaPageBroken(t *testing.T) {
	dir := t.TempDir()
	orig, psize := buildFile(t, filepath.Join(dir, "orig.db"), 300)
	path := filepath.Join(dir, "state.db")
	for i := range 2 {
		t.Run(fmt.Sprintf("page %d", i), func(t *testing.T) {
			b := bytes.Clone(orig)
			clear(b[i*psize+pageHeaderSize : (i+1)*psize])
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path, &Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// The older meta page is one transaction behind: it may lack the
			// last change (a suppression) but holds every message.
			if n, _, err := s.Stats(context.Background()); err != nil || n != 300 {
				t.Errorf("Stats = %d, %v; want 300 messages", n, err)
			}
			if err := useStore(s); err != nil {
				t.Errorf("on a store opened from meta page %d: %v", 1-i, err)
			}
		})
	}
}

// TestOpenEmptyFileIsNew: bbolt treats an empty file as a new store, and
// so does Open.
func TestOpenEmptyFileIsNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCheckAcceptsGrownStore: a store that grew, shrank and grew again
// (freed pages reused, trees rebalanced) is sound.
func TestCheckAcceptsGrownStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, s, 600)
	for i := 0; i < 600; i += 3 {
		if err := s.Delete(ctx, message(i, testT0).Envelope.ID); err != nil {
			t.Fatal(err)
		}
	}
	for i := 600; i < 800; i++ {
		if err := s.Enqueue(ctx, message(i, testT0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := checkFile(f, path, fi.Size()); err != nil {
		t.Fatal(err)
	}
}

// TestCheckFreelist: a freelist page (written by bbolt without
// NoFreelistSync, by another program or an older sealpost) is read, and
// one that lists a page in use is refused: bbolt would hand the page out
// again and panic when it is freed twice.
func TestCheckFreelist(t *testing.T) {
	dir := t.TempDir()
	orig, psize := buildFile(t, filepath.Join(dir, "orig.db"), 50)
	f, err := openPageFile(bytes.NewReader(orig), "orig.db", int64(len(orig)))
	if err != nil {
		t.Fatal(err)
	}
	// Make page n-1 a freelist page listing ids, appended to the file, and
	// point the meta page in use at it.
	withFreelist := func(ids ...uint64) []byte {
		b := bytes.Clone(orig)
		n := f.npages
		p := make([]byte, psize)
		native.PutUint64(p, n)
		native.PutUint16(p[8:], flagFreelist)
		native.PutUint16(p[10:], uint16(len(ids)))
		for i, id := range ids {
			native.PutUint64(p[pageHeaderSize+8*i:], id)
		}
		b = append(b, p...)
		for i := range 2 {
			m := b[i*psize+pageHeaderSize:]
			if native.Uint64(m[48:]) != f.meta.txid {
				continue
			}
			native.PutUint64(m[32:], n)
			native.PutUint64(m[40:], n+1)
			h := newMetaSum(m)
			native.PutUint64(m[metaSummed:], h)
		}
		return b
	}
	if err := checkFile(bytes.NewReader(withFreelist()), "x", int64(len(orig)+psize)); err != nil {
		t.Errorf("an empty freelist: %v", err)
	}
	tests := []struct {
		name string
		ids  []uint64
		bad  bool
	}{
		{"none", nil, false},
		{"the root page, in use", []uint64{f.meta.root}, true},
		{"the freelist page itself", []uint64{f.npages}, true},
		{"a meta page", []uint64{1}, true},
		{"past the end", []uint64{f.npages + 5}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := withFreelist(tt.ids...)
			err := checkFile(bytes.NewReader(b), "x", int64(len(b)))
			if got := err != nil; got != tt.bad {
				t.Errorf("checkFile = %v; want refused %v", err, tt.bad)
			}
			if err == nil {
				path := filepath.Join(dir, "state.db")
				if openDamaged(t, path, b) {
					t.Error("Open refused what checkFile accepted")
				}
			}
		})
	}
}

// newMetaSum is the checksum of the meta m (FNV-64a up to the checksum).
func newMetaSum(m []byte) uint64 {
	h := fnv.New64a()
	h.Write(m[:metaSummed])
	return h.Sum64()
}
