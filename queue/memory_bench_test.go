package queue

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkActiveMemory measures the heap a message costs while the
// scheduler holds it for delivery (envelope, tasks, per-domain queue). A
// queued message that is not due costs no memory: it lives in the store,
// and only Config.ActiveLimit messages are held at once.
func BenchmarkActiveMemory(b *testing.B) {
	const n = 10_000
	q, _ := New(Config{Store: &MemoryStore{}, Workers: 1})
	now := time.Now()
	envs := make([]*Envelope, n)
	for i := range envs {
		envs[i] = &Envelope{ID: ID(fmt.Sprintf("m%019d", i)), From: "sender@example.org", Arrived: now, Size: 5000,
			Recipients: []Recipient{{Addr: fmt.Sprintf("rcpt%d@domain%d.example", i, i%100), NextAttempt: now}}}
	}
	b.ResetTimer()
	var perMsg float64
	for range b.N {
		s := &scheduler{q: q, work: context.Background(), active: make(map[ID]*active), domains: make(map[string]*domainQueue),
			stopping: true} // stopping: admit only, start nothing
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for _, e := range envs {
			s.admit(e.Clone(), now)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perMsg = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(s)
	}
	b.ReportMetric(perMsg, "heap-B/active-msg")
}
