package boltstore

// The checker: Open reads an existing store file page by page, itself,
// before bbolt is given it, and refuses it with a *CorruptError if any page
// bbolt would read breaks bbolt's layout.
//
// Why before bbolt: bbolt maps the file into memory and trusts it. A damaged
// page makes it fail an assertion (a panic), index past its slices (a
// panic), panic in the goroutine it uses to find free pages at Open (no
// recover can catch that), or read outside the file (SIGBUS, which kills
// the process). So the checks have to be made by a reader that checks
// every offset against the bytes it read, and made before bbolt reads
// anything. What it verifies, for the meta page bbolt will use:
//
//   - both meta pages: magic, version 2, FNV-64a checksum; the page size
//     found as bbolt finds it, a power of two, and the same in both; the
//     valid one with the higher transaction ID is the one bbolt uses, and
//     its root page, freelist page and high-water mark lie in the file;
//   - the file is a whole number of pages and holds every page below the
//     high-water mark (a file cut short, or shorter than a page, is
//     damaged; an empty file is a new store);
//   - every page reachable from the root bucket, and every nested bucket
//     (inline, in its parent's value, or with a root page of its own):
//     page ID below the high-water mark and equal to its position, the
//     page type expected there (branch or leaf), element array and
//     overflow pages within the page run and the file, every key and
//     value inside the page run and after the element array, keys non-empty
//     and strictly increasing, a child's first key equal to its branch
//     key and its keys before the next one, no page without elements
//     below a branch page, leaf element flags known, and no page reached
//     twice (a cycle or a shared page);
//   - the freelist page, if one was written: its type, its length, and
//     that every page it lists is below the high-water mark, listed once,
//     and not in use.
//
// It reads only the pages bbolt will read, one read per page run, so its
// cost grows with the data in the file, not with the file's size
// (BenchmarkOpen). Salvage uses the same reader, read-only, in a mode that
// skips a damaged subtree instead of stopping.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/bits"
)

// bbolt v1.4's file layout, as far as the checker reads it. bbolt reads
// the integers in place from its memory map, so they are in the machine's
// byte order.
const (
	pageHeaderSize   = 16 // page ID u64, flags u16, count u16, overflow u32
	elementSize      = 16 // branch: pos u32, ksize u32, child u64; leaf: flags u32, pos u32, ksize u32, vsize u32
	bucketHeaderSize = 16 // root page u64, sequence u64
	metaSize         = 64 // magic, version, page size, flags (u32); root bucket header; freelist, high-water mark, txid, checksum (u64)
	metaSummed       = 56 // the checksum covers the meta up to itself

	flagBranch     = 0x01
	flagLeaf       = 0x02
	flagMeta       = 0x04
	flagFreelist   = 0x10
	leafFlagBucket = 0x01

	boltMagic   = 0xED0CDAED
	boltVersion = 2
	noFreelist  = ^uint64(0)

	// bbolt looks for the second meta page at 1 KiB to 16 MiB.
	minPageSize = 512
	maxPageSize = 16 << 20
)

var native = binary.NativeEndian

// meta is a meta page's content.
type meta struct {
	pageSize uint32
	root     uint64 // the root bucket's root page
	freelist uint64 // noFreelist when none was written
	pgid     uint64 // high-water mark: pages below it are in use or free
	txid     uint64
}

// parseMeta reads the meta in the page that starts at b, as bbolt's
// Meta.Validate does: magic, version, checksum.
func parseMeta(b []byte) (meta, error) {
	if len(b) < pageHeaderSize+metaSize {
		return meta{}, fmt.Errorf("only %d bytes", len(b))
	}
	m := b[pageHeaderSize : pageHeaderSize+metaSize]
	if v := native.Uint32(m[0:]); v != boltMagic {
		return meta{}, fmt.Errorf("magic %#08x, not bbolt's %#08x", v, uint32(boltMagic))
	}
	if v := native.Uint32(m[4:]); v != boltVersion {
		return meta{}, fmt.Errorf("format version %d, not %d", v, boltVersion)
	}
	h := fnv.New64a()
	h.Write(m[:metaSummed])
	if sum, want := native.Uint64(m[metaSummed:]), h.Sum64(); sum != want {
		return meta{}, fmt.Errorf("checksum %016x, computed %016x", sum, want)
	}
	return meta{
		pageSize: native.Uint32(m[8:]),
		root:     native.Uint64(m[16:]),
		freelist: native.Uint64(m[32:]),
		pgid:     native.Uint64(m[40:]),
		txid:     native.Uint64(m[48:]),
	}, nil
}

// findPageSize finds the page size as bbolt's Open does (DB.getPageSize),
// so that the checker reads the pages at the offsets bbolt will: from the
// first meta page if it is valid, else from the first valid meta found at
// 1 KiB, 2 KiB, ... 16 MiB.
func findPageSize(r io.ReaderAt, size int64) (uint64, bool) {
	var buf [4096]byte
	if n, err := r.ReadAt(buf[:], 0); err == nil && n == len(buf) {
		if m, err := parseMeta(buf[:]); err == nil {
			return uint64(m.pageSize), true
		}
	}
	for i := range 15 {
		pos := int64(1024) << i
		if pos >= size-1024 {
			break
		}
		buf = [4096]byte{}
		n, err := r.ReadAt(buf[:], pos)
		if err == nil && n == len(buf) || err == io.EOF && int64(n) == size-pos {
			if m, err := parseMeta(buf[:]); err == nil {
				return uint64(m.pageSize), true
			}
		}
	}
	return 0, false
}

// pageFile reads a bbolt file's pages by hand, checking every offset.
type pageFile struct {
	r      io.ReaderAt
	path   string
	size   int64
	psize  uint64
	npages uint64 // the high-water mark of the meta in use
	meta   meta

	// seen has a bit per page reached, to find cycles and shared pages;
	// nil for lookups, which go down one path.
	seen []uint64

	// skip, when set, is given the damage found below a bucket or a
	// branch page; if it returns nil, the walk goes on without that part
	// (Salvage). When nil, the first damage ends the walk (Open).
	skip func(*CorruptError) error
}

func (f *pageFile) corrupt(format string, args ...any) *CorruptError {
	return &CorruptError{Path: f.path, What: fmt.Sprintf(format, args...)}
}

// openPageFile reads and checks the meta pages of the file r of size
// bytes and returns a reader of the pages of the meta bbolt will use.
func openPageFile(r io.ReaderAt, path string, size int64) (*pageFile, error) {
	return readMeta(r, path, size, false)
}

// readMeta is openPageFile; if cut is set, it accepts a file cut short,
// whose missing pages are then damaged pages (for Salvage).
func readMeta(r io.ReaderAt, path string, size int64, cut bool) (*pageFile, error) {
	f := &pageFile{r: r, path: path, size: size}
	if size < minPageSize {
		return nil, f.corrupt("the file is %d bytes, smaller than a page", size)
	}
	psize, ok := findPageSize(r, size)
	if !ok {
		return nil, f.corrupt("meta pages: neither page 0 nor a second meta page is a valid bbolt meta page (not a bbolt file, or both meta pages damaged)")
	}
	if psize < minPageSize || psize > maxPageSize || bits.OnesCount64(psize) != 1 {
		return nil, f.corrupt("meta pages: page size %d is not a power of two from %d to %d", psize, minPageSize, maxPageSize)
	}
	f.psize = psize
	if size%int64(psize) != 0 && !cut {
		return nil, f.corrupt("the file is %d bytes, not a whole number of %d-byte pages: cut short", size, psize)
	}
	if size < 2*int64(psize) {
		return nil, f.corrupt("the file is %d bytes, too short for its two meta pages", size)
	}
	m, err := f.chooseMeta()
	if err != nil {
		return nil, err
	}
	if uint64(m.pageSize) != psize {
		return nil, f.corrupt("meta pages: page size %d in the meta page in use, %d in page 0", m.pageSize, psize)
	}
	filePages := uint64(size) / psize
	if cut {
		m.pgid = min(m.pgid, filePages)
	}
	switch {
	case cut:
		// readRun checks every page ID against the pages that are there.
	case m.pgid < 3 || m.pgid > filePages:
		return nil, f.corrupt("meta page (txid %d): high-water mark %d pages, the file holds %d: cut short or damaged", m.txid, m.pgid, filePages)
	case m.root < 2 || m.root >= m.pgid:
		return nil, f.corrupt("meta page (txid %d): root bucket at page %d, outside pages 2 to %d", m.txid, m.root, m.pgid-1)
	case m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.pgid):
		return nil, f.corrupt("meta page (txid %d): freelist at page %d, outside pages 2 to %d", m.txid, m.freelist, m.pgid-1)
	}
	f.meta, f.npages = m, m.pgid
	f.seen = make([]uint64, (m.pgid+63)/64)
	return f, nil
}

// chooseMeta reads both meta pages and returns the one bbolt uses: the
// valid one with the higher transaction ID (DB.meta).
func (f *pageFile) chooseMeta() (meta, error) {
	var ms [2]meta
	var errs [2]error
	for i := range ms {
		buf := make([]byte, pageHeaderSize+metaSize)
		if _, err := f.r.ReadAt(buf, int64(i)*int64(f.psize)); err != nil {
			errs[i] = err
			continue
		}
		ms[i], errs[i] = parseMeta(buf)
	}
	switch {
	case errs[0] != nil && errs[1] != nil:
		return meta{}, f.corrupt("meta pages: both fail their checks (page 0: %v; page 1: %v)", errs[0], errs[1])
	case errs[0] != nil:
		return ms[1], nil
	case errs[1] != nil || ms[0].txid >= ms[1].txid:
		return ms[0], nil
	}
	return ms[1], nil
}

// element is one entry of a branch or leaf page.
type element struct {
	flags      uint32 // leaf: leafFlagBucket or 0
	key, value []byte
	child      uint64 // branch: the child page
}

// page is a branch or leaf page, read and checked.
type page struct {
	id    uint64
	flags uint16
	elems []element
}

// readRun reads page id and its overflow pages.
func (f *pageFile) readRun(id uint64, where string) ([]byte, error) {
	if id < 2 {
		return nil, f.corrupt("%s: refers to page %d, a meta page", where, id)
	}
	if id >= f.npages {
		return nil, f.corrupt("%s: refers to page %d, beyond the last page (%d)", where, id, f.npages-1)
	}
	buf := make([]byte, f.psize)
	if _, err := f.r.ReadAt(buf, int64(id*f.psize)); err != nil {
		return nil, f.corrupt("page %d of %d: cannot be read: %v", id, f.npages, err)
	}
	if got := native.Uint64(buf); got != id {
		return nil, f.corrupt("page %d of %d (%s): its header says it is page %d", id, f.npages, where, got)
	}
	overflow := uint64(native.Uint32(buf[12:]))
	if overflow >= f.npages-id {
		return nil, f.corrupt("page %d of %d (%s): %d overflow pages run past the last page", id, f.npages, where, overflow)
	}
	for i := id; f.seen != nil && i <= id+overflow; i++ {
		if f.seen[i/64]&(1<<(i%64)) != 0 {
			return nil, f.corrupt("page %d of %d (%s): reached twice (a cycle, or a page two parents share)", i, f.npages, where)
		}
		f.seen[i/64] |= 1 << (i % 64)
	}
	if overflow > 0 {
		run := make([]byte, (overflow+1)*f.psize)
		copy(run, buf)
		if _, err := f.r.ReadAt(run[f.psize:], int64((id+1)*f.psize)); err != nil {
			return nil, f.corrupt("page %d of %d: overflow pages cannot be read: %v", id, f.npages, err)
		}
		buf = run
	}
	return buf, nil
}

// readPage reads and checks the branch or leaf page id.
func (f *pageFile) readPage(id uint64, where string) (*page, error) {
	buf, err := f.readRun(id, where)
	if err != nil {
		return nil, err
	}
	p, what := parsePage(buf)
	if what != "" {
		return nil, f.corrupt("page %d of %d (%s): %s", id, f.npages, where, what)
	}
	p.id = id
	return p, nil
}

// parsePage checks and reads the branch or leaf page in buf (a page run,
// or an inline bucket's page). It returns what is wrong, or "".
func parsePage(buf []byte) (*page, string) {
	if len(buf) < pageHeaderSize {
		return nil, fmt.Sprintf("%d bytes, shorter than a page header", len(buf))
	}
	p := &page{flags: native.Uint16(buf[8:])}
	count := uint64(native.Uint16(buf[10:]))
	switch p.flags {
	case flagBranch, flagLeaf:
	case flagMeta, flagFreelist:
		return nil, fmt.Sprintf("a %s page where a branch or leaf page belongs", pageType(p.flags))
	default:
		return nil, fmt.Sprintf("unknown page type %#04x", p.flags)
	}
	if p.flags == flagBranch && count == 0 {
		return nil, "branch page with 0 elements"
	}
	dataStart := pageHeaderSize + count*elementSize
	if dataStart > uint64(len(buf)) {
		return nil, fmt.Sprintf("%d elements do not fit in %d bytes", count, len(buf))
	}
	p.elems = make([]element, count)
	for i := range p.elems {
		at := uint64(pageHeaderSize + i*elementSize)
		e := buf[at : at+elementSize]
		var pos, ksize, vsize uint64
		el := &p.elems[i]
		if p.flags == flagLeaf {
			el.flags = native.Uint32(e[0:])
			pos, ksize, vsize = uint64(native.Uint32(e[4:])), uint64(native.Uint32(e[8:])), uint64(native.Uint32(e[12:]))
			if el.flags&^leafFlagBucket != 0 {
				return nil, fmt.Sprintf("element %d: unknown flags %#x", i, el.flags)
			}
		} else {
			pos, ksize = uint64(native.Uint32(e[0:])), uint64(native.Uint32(e[4:]))
			el.child = native.Uint64(e[8:])
		}
		start := at + pos
		end := start + ksize + vsize // each term < 2^32: no overflow
		switch {
		case ksize == 0:
			return nil, fmt.Sprintf("element %d: empty key", i)
		case start < dataStart || end > uint64(len(buf)):
			return nil, fmt.Sprintf("element %d: key and value at bytes %d to %d, outside %d to %d", i, start, end, dataStart, len(buf))
		}
		el.key = buf[start : start+ksize : start+ksize]
		el.value = buf[start+ksize : end : end]
		if i > 0 && bytes.Compare(p.elems[i-1].key, el.key) >= 0 {
			return nil, fmt.Sprintf("element %d: key %q not after the previous key %q", i, el.key, p.elems[i-1].key)
		}
	}
	return p, ""
}

func pageType(flags uint16) string {
	switch flags {
	case flagBranch:
		return "branch"
	case flagLeaf:
		return "leaf"
	case flagMeta:
		return "meta"
	case flagFreelist:
		return "freelist"
	}
	return fmt.Sprintf("unknown (%#04x)", flags)
}

// damaged passes err to f.skip, if the walk skips damage, or returns it.
func (f *pageFile) damaged(err error) error {
	var ce *CorruptError
	if f.skip != nil && errors.As(err, &ce) {
		return f.skip(ce)
	}
	return err
}

// walkTree calls leaf with every leaf element of the tree whose root is
// page id, in key order, having checked every page on the way. first is
// the key of the branch element that leads to the page (nil for a root):
// the page's first key must be that very key, because bbolt finds a child
// in its parent by its first key when it writes the child back, and adds
// a second reference to the page, freed twice later, when it does not
// find it. hi is the parent's next key (nil: none), which every key of
// the page must sort before.
func (f *pageFile) walkTree(id uint64, first, hi []byte, where string, leaf func(element) error) error {
	p, err := f.readPage(id, where)
	if err != nil {
		return f.damaged(err)
	}
	n := len(p.elems)
	switch {
	case f.skip != nil:
		// Salvage reads what it can: the keys' order matters to bbolt,
		// which will not read this file, not to a walk.
	case first != nil && n == 0:
		return f.damaged(f.corrupt("page %d of %d (%s): a %s page with 0 elements below a branch page", id, f.npages, where, pageType(p.flags)))
	case first != nil && !bytes.Equal(p.elems[0].key, first):
		return f.damaged(f.corrupt("page %d of %d (%s): first key %q, but its parent knows it by %q", id, f.npages, where, p.elems[0].key, first))
	case hi != nil && n > 0 && bytes.Compare(p.elems[n-1].key, hi) >= 0:
		return f.damaged(f.corrupt("page %d of %d (%s): last key %q not before its parent's next key %q", id, f.npages, where, p.elems[n-1].key, hi))
	}
	if p.flags == flagLeaf {
		for _, e := range p.elems {
			if err := leaf(e); err != nil {
				return err
			}
		}
		return nil
	}
	for i, e := range p.elems {
		next := hi
		if i+1 < len(p.elems) {
			next = p.elems[i+1].key
		}
		if err := f.walkTree(e.child, e.key, next, where, leaf); err != nil {
			return err
		}
	}
	return nil
}

// walkBucket calls leaf with every element of the bucket whose header
// (and inline page) is value.
func (f *pageFile) walkBucket(value []byte, where string, leaf func(element) error) error {
	if len(value) < bucketHeaderSize {
		return f.damaged(f.corrupt("bucket %s: header of %d bytes, want %d", where, len(value), bucketHeaderSize))
	}
	if root := native.Uint64(value); root != 0 {
		return f.walkTree(root, nil, nil, where, leaf)
	}
	inline := value[bucketHeaderSize:]
	p, what := parsePage(inline)
	switch {
	case what != "":
	case p.flags != flagLeaf:
		what = "a branch page inline"
	case native.Uint64(inline) != 0 || native.Uint32(inline[12:]) != 0:
		what = "page ID or overflow set in an inline page"
	}
	if what != "" {
		return f.damaged(f.corrupt("bucket %s (inline): %s", where, what))
	}
	for _, e := range p.elems {
		if err := leaf(e); err != nil {
			return err
		}
	}
	return nil
}

// checkBucket walks the bucket whose header is value and every bucket
// nested in it.
func (f *pageFile) checkBucket(value []byte, where string) error {
	return f.walkBucket(value, where, func(e element) error {
		if e.flags&leafFlagBucket == 0 {
			return nil
		}
		return f.checkBucket(e.value, where+"/"+string(e.key))
	})
}

// checkFreelist checks the freelist page, if the meta names one: after
// checkAll has marked the pages in use, so that a free page in use shows.
func (f *pageFile) checkFreelist(ids []uint64) error {
	listed := make([]uint64, len(f.seen))
	for _, id := range ids {
		switch {
		case id < 2 || id >= f.npages:
			return f.corrupt("freelist page %d: lists page %d, outside pages 2 to %d", f.meta.freelist, id, f.npages-1)
		case listed[id/64]&(1<<(id%64)) != 0:
			return f.corrupt("freelist page %d: lists page %d twice", f.meta.freelist, id)
		case f.seen[id/64]&(1<<(id%64)) != 0:
			return f.corrupt("freelist page %d: lists page %d, which is in use", f.meta.freelist, id)
		}
		listed[id/64] |= 1 << (id % 64)
	}
	return nil
}

// readFreelist reads the IDs the freelist page lists.
func (f *pageFile) readFreelist() ([]uint64, error) {
	id := f.meta.freelist
	buf, err := f.readRun(id, "freelist")
	if err != nil {
		return nil, err
	}
	if flags := native.Uint16(buf[8:]); flags != flagFreelist {
		return nil, f.corrupt("page %d of %d: a %s page where the freelist belongs", id, f.npages, pageType(flags))
	}
	// A count of 0xFFFF means the count is in the first ID's place.
	first, count := uint64(0), uint64(native.Uint16(buf[10:]))
	if count == 0xFFFF {
		if len(buf) < pageHeaderSize+8 {
			return nil, f.corrupt("freelist page %d: too short for its count", id)
		}
		first, count = 1, native.Uint64(buf[pageHeaderSize:])
	}
	if room := uint64(len(buf)-pageHeaderSize) / 8; count > room-first {
		return nil, f.corrupt("freelist page %d: %d IDs do not fit in %d bytes", id, count, len(buf))
	}
	ids := make([]uint64, count)
	for i := range ids {
		ids[i] = native.Uint64(buf[pageHeaderSize+8*(first+uint64(i)):])
	}
	return ids, nil
}

// checkAll checks every page bbolt reads: the freelist page, the root
// bucket's tree, and every bucket under it.
func (f *pageFile) checkAll() error {
	var free []uint64
	if f.meta.freelist != noFreelist {
		var err error
		if free, err = f.readFreelist(); err != nil {
			return err
		}
	}
	err := f.walkTree(f.meta.root, nil, nil, "root bucket", func(e element) error {
		if e.flags&leafFlagBucket == 0 {
			return f.corrupt("root bucket: key %q is not a bucket", e.key)
		}
		return f.checkBucket(e.value, string(e.key))
	})
	if err != nil {
		return err
	}
	return f.checkFreelist(free)
}

// checkFile checks the store file r of size bytes, named path, before
// bbolt reads it: nil if it is empty (a new store) or sound, a
// *CorruptError if not.
func checkFile(r io.ReaderAt, path string, size int64) error {
	if size == 0 {
		return nil
	}
	f, err := openPageFile(r, path, size)
	if err != nil {
		return err
	}
	return f.checkAll()
}
