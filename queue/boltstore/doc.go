// Package boltstore keeps a sealpost node's whole state in one bbolt file
// (go.etcd.io/bbolt): the mail queue (queue.Store), the MTA-STS policy
// cache and the TLS-RPT counts, so that a restart loses neither accepted
// mail, nor the policies that close the trust-on-first-use window, nor the
// day's report counts.
//
// # Durability
//
// Every change is made in a bbolt read-write transaction whose commit
// writes the changed pages, fsyncs the file, writes the meta page and
// fsyncs again; a method returns only after that. The changes of
// concurrent callers are applied by one goroutine in shared transactions
// (group commit): it takes every change waiting when it becomes free, so
// a lone caller pays one commit and n concurrent callers share one. A
// crash at any point leaves the file at the last committed transaction.
//
// # Layout
//
// Messages are stored once (envelope as JSON in queue.msg, content in
// queue.body) however many recipients they have; queue.due indexes them
// by their due time (8 bytes of nanoseconds, big-endian, then the ID), so
// finding what is due is a B+tree seek however long the queue;
// queue.leased lists the messages handed to a scheduler, which Recover
// returns to the queue after a crash. IDs grow with arrival, so msg and
// body are filled by appending, and their pages are split nearly full
// (bbolt's default leaves them half empty); the freelist is a hashmap and
// is not written at each commit. The cost of scheduling one message grows
// only with the depth of the trees (BenchmarkSchedule: 1k to 1M queued).
// queue.damaged lists the messages set aside as damaged (see Damage).
//
// # Damage
//
// bbolt trusts its file: a damaged page makes it panic, or read outside
// the file and kill the process. So Open first reads an existing file
// itself, page by page, checking every offset: both meta pages
// (magic, version, checksum, page size), that the file holds every page
// the meta page in use counts, and every page reachable from the root
// bucket, nested buckets and the freelist page — page IDs, types, element
// counts, overflow, key and value bounds, key order, children's first
// keys, pages reached twice. A file that fails is refused with a
// *CorruptError (errors.Is ErrCorrupt) naming the file and the damage,
// and is not changed. A panic in bbolt while it opens the file, which the
// checker should have prevented, is turned into the same error.
//
// For an operator, ErrCorrupt from Open means: the relay cannot use this
// file. Move it aside, start with a new file (an empty or missing one is
// a new store), and run Salvage(damaged, fresh), which reads the damaged
// file read-only with the checker's reader, never with bbolt, and copies
// every message (envelope and content), MTA-STS policy and TLS-RPT record
// it can still read into the new store, skipping damaged pages and records
// and saying which. Salvaged messages lose their leases and are due again.
// Then use the fresh file. The check costs one read per page in use: an
// Open of 100 000 messages (41 MB in use) took 63 to 80 ms on a shared
// two-core machine, against 22 to 39 ms for bbolt alone (BenchmarkOpen).
//
// A record whose bytes bbolt reads but whose content does not decode is
// damage of one record: the method that read it returns a *CorruptError
// naming bucket and key, and the rest of the store works. So that one such
// record does not stop the queue, Claim and Recover (which the queue runs
// before anything else) set a message aside when its record does not
// decode or its content is missing: it leaves the due index and its lease
// ends, Damaged lists it, Get says what is wrong, Delete removes it, and
// its bytes stay for Salvage. List, the policy cache's List, DayCounts and
// Suppressions leave out what they cannot read (a policy left out is
// fetched again, and Put replaces it); AddCounts replaces counts it cannot
// read (a day of one policy's counts is lost, where failing would stop the
// TLS-RPT recorder for good); the other methods return the error.
package boltstore
