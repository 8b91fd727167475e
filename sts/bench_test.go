package sts

import (
	"context"
	"testing"
	"time"
)

// benchClient returns a client with example.com's policy cached.
func benchClient(b *testing.B, recordCheck time.Duration) *Client {
	w := newWorld(b)
	w.client.RecordCheckInterval = recordCheck
	w.publish("example.com", "id1", enforcePolicy)
	w.lookup("example.com")
	return w.client
}

// BenchmarkLookupCached measures the look-up every delivery makes: a cache
// hit with the TXT id checked through the resolver (here a map, so the
// numbers are the package's own cost).
func BenchmarkLookupCached(b *testing.B) {
	c := benchClient(b, 0)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Lookup(ctx, "example.com"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLookupCachedNoRecordCheck is a cache hit within
// RecordCheckInterval: no TXT look-up at all.
func BenchmarkLookupCachedNoRecordCheck(b *testing.B) {
	c := benchClient(b, time.Hour)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Lookup(ctx, "example.com"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLookupCachedParallel is BenchmarkLookupCached from all CPUs,
// which shows contention on the cache.
func BenchmarkLookupCachedParallel(b *testing.B) {
	c := benchClient(b, 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := c.Lookup(ctx, "example.com"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	p, err := ParsePolicy(enforcePolicy)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p.Match("a.mx.example.net.")
	}
}

func BenchmarkParsePolicy(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := ParsePolicy(enforcePolicy); err != nil {
			b.Fatal(err)
		}
	}
}
