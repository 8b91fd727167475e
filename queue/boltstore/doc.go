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
package boltstore
