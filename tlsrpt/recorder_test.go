package tlsrpt

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

var (
	day0      = time.Date(2020, 4, 18, 0, 0, 0, 0, time.UTC)
	stsPolicy = NewPolicy(PolicyTypeSTS, "example.com",
		[]string{"version: STSv1", "mode: enforce", "mx: mx1.example.com", "mx: mx2.example.com", "max_age: 604800"},
		[]string{"mx1.example.com", "mx2.example.com"})
	tlsaPolicy = NewPolicy(PolicyTypeTLSA, "example.com",
		[]string{"3 1 1 1F850A337E6DB9C609C522D136A475638CC43E1ED424F8EEC8513D747D1D085D"},
		[]string{"mx1.example.com"})
	noPolicy = NewPolicy(PolicyTypeNoPolicyFound, "example.org", nil, nil)
)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// dayCounts flushes r and returns the stored counts of domain on day, by
// policy ID.
func dayCounts(t *testing.T, r *Recorder, day Day, domain string) map[PolicyID]Counts {
	t.Helper()
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	cs, err := r.Store().DayCounts(context.Background(), day, domain)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[PolicyID]Counts)
	for _, c := range cs {
		out[c.Policy.ID()] = c
	}
	return out
}

func TestRecorderAggregates(t *testing.T) {
	r := NewRecorder(RecorderConfig{Now: fixedClock(day0.Add(10 * time.Hour))})
	d := DayOf(day0)
	expired := &Failure{
		ResultType: ResultCertificateExpired, SendingMTAIP: netip.MustParseAddr("192.0.2.1"),
		ReceivingMXHostname: "MX1.example.com.", ReceivingIP: netip.MustParseAddr("::ffff:198.51.100.7"),
	}
	for range 3 {
		r.Record(Session{Policy: stsPolicy})
	}
	r.Record(Session{Policy: stsPolicy, Failure: expired})
	r.Record(Session{Policy: stsPolicy, Failure: expired})
	r.Record(Session{Policy: stsPolicy, Failure: &Failure{ResultType: ResultSTARTTLSNotSupported, ReceivingMXHostname: "mx2.example.com"}})
	r.Record(Session{Policy: tlsaPolicy})
	r.Record(Session{Time: day0.Add(-time.Second), Policy: stsPolicy}) // the day before
	r.Record(Session{Policy: noPolicy, Failure: &Failure{ResultType: "certificate-revoked"}})
	// A literal Policy with the same content counts with the one from NewPolicy.
	r.Record(Session{Policy: Policy{Type: PolicyTypeTLSA, Domain: "EXAMPLE.com", Strings: tlsaPolicy.Strings, MXHosts: tlsaPolicy.MXHosts}})

	got := dayCounts(t, r, d, "example.com")
	if len(got) != 2 {
		t.Fatalf("%d policies on the day, want 2", len(got))
	}
	sts := got[stsPolicy.ID()]
	if sts.Successful != 3 || len(sts.Failures) != 2 {
		t.Fatalf("sts counts %+v", sts)
	}
	wantExpired := Failure{
		ResultType: ResultCertificateExpired, SendingMTAIP: netip.MustParseAddr("192.0.2.1"),
		ReceivingMXHostname: "mx1.example.com", ReceivingIP: netip.MustParseAddr("198.51.100.7"),
	}
	if n := sts.Failures[wantExpired]; n != 2 {
		t.Fatalf("expired failures = %d, want 2 (failures %v)", n, sts.Failures)
	}
	if tl := got[tlsaPolicy.ID()]; tl.Successful != 2 || len(tl.Failures) != 0 || tl.Policy.Type != PolicyTypeTLSA {
		t.Fatalf("tlsa counts %+v", tl)
	}
	if prev := dayCounts(t, r, d-1, "example.com"); prev[stsPolicy.ID()].Successful != 1 {
		t.Fatalf("the day before: %+v", prev)
	}
	org := dayCounts(t, r, d, "example.org")[noPolicy.ID()]
	want := Failure{ResultType: ResultValidationFailure, FailureReasonCode: "certificate-revoked"}
	if org.Failures[want] != 1 {
		t.Fatalf("unknown result type recorded as %v", org.Failures)
	}
}

func TestRecorderConcurrentCountsAreExact(t *testing.T) {
	r := NewRecorder(RecorderConfig{Now: fixedClock(day0)})
	policies := make([]Policy, 8)
	for i := range policies {
		policies[i] = NewPolicy(PolicyTypeSTS, fmt.Sprintf("d%d.example", i), []string{"mode: enforce"}, nil)
	}
	const workers, perWorker = 8, 2000
	var wg sync.WaitGroup
	flushErr := make(chan error, 1)
	stop := make(chan struct{})
	go func() { // flush while recording, as Run does
		defer close(flushErr)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := r.Flush(context.Background()); err != nil {
				flushErr <- err
				return
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				s := Session{Policy: policies[(w+i)%len(policies)]}
				if i%10 == 0 {
					s.Failure = &Failure{ResultType: ResultDANERequired, ReceivingMXHostname: "mx.example"}
				}
				r.Record(s)
			}
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-flushErr; err != nil {
		t.Fatal(err)
	}
	var ok, failed int64
	for _, p := range policies {
		c := dayCounts(t, r, DayOf(day0), p.Domain)[p.ID()]
		ok += c.Successful
		for _, n := range c.Failures {
			failed += n
		}
	}
	if ok+failed != workers*perWorker || failed != workers*perWorker/10 {
		t.Fatalf("counted %d successful and %d failed, want %d and %d", ok, failed, workers*perWorker*9/10, workers*perWorker/10)
	}
}

func TestRecorderMaxPendingDropsNewPolicies(t *testing.T) {
	r := NewRecorder(RecorderConfig{Now: fixedClock(day0), MaxPending: 2})
	p := func(i int) Policy { return NewPolicy(PolicyTypeNoPolicyFound, fmt.Sprintf("d%d.example", i), nil, nil) }
	r.Record(Session{Policy: p(1)})
	r.Record(Session{Policy: p(2)})
	r.Record(Session{Policy: p(3)}) // dropped
	r.Record(Session{Policy: p(1)}) // held already: counted
	if r.Dropped() != 1 {
		t.Fatalf("Dropped() = %d, want 1", r.Dropped())
	}
	select {
	case <-r.wake:
	default:
		t.Fatal("reaching MaxPending did not ask for a flush")
	}
	if c := dayCounts(t, r, DayOf(day0), "d1.example")[p(1).ID()]; c.Successful != 2 {
		t.Fatalf("d1 counted %d", c.Successful)
	}
	r.Record(Session{Policy: p(3)}) // room again after the flush
	if c := dayCounts(t, r, DayOf(day0), "d3.example")[p(3).ID()]; c.Successful != 1 {
		t.Fatalf("d3 counted %d after the flush", c.Successful)
	}
}

func TestRecorderFailureDetailsAreBounded(t *testing.T) {
	r := NewRecorder(RecorderConfig{Now: fixedClock(day0)})
	for i := range MaxFailureDetails + 50 {
		r.Record(Session{Policy: stsPolicy, Failure: &Failure{
			ResultType: ResultCertificateNotTrusted, ReceivingMXHelo: fmt.Sprintf("banner-%d", i),
		}})
	}
	c := dayCounts(t, r, DayOf(day0), "example.com")[stsPolicy.ID()]
	// Which details survive depends on the order the store merges them in;
	// the bound and the total do not.
	if len(c.Failures) > MaxFailureDetails+1 {
		t.Fatalf("%d distinct failures, want at most %d", len(c.Failures), MaxFailureDetails+1)
	}
	var total int64
	for _, n := range c.Failures {
		total += n
	}
	if n := c.Failures[Failure{ResultType: ResultCertificateNotTrusted}]; n < 50 || total != MaxFailureDetails+50 {
		t.Fatalf("%d failures folded into the result type (want at least 50), %d in all", n, total)
	}
}

// failingStore fails AddCounts while fail is set.
type failingStore struct {
	*MemoryStore
	mu   sync.Mutex
	fail bool
}

func (s *failingStore) AddCounts(ctx context.Context, batch []Counts) error {
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail {
		return errors.New("disk full")
	}
	return s.MemoryStore.AddCounts(ctx, batch)
}

func TestRecorderKeepsCountsWhenTheStoreFails(t *testing.T) {
	st := &failingStore{MemoryStore: NewMemoryStore(), fail: true}
	r := NewRecorder(RecorderConfig{Store: st, Now: fixedClock(day0)})
	r.Record(Session{Policy: stsPolicy})
	r.Record(Session{Policy: stsPolicy, Failure: &Failure{ResultType: ResultSTSWebPKIInvalid}})
	if err := r.Flush(context.Background()); err == nil {
		t.Fatal("Flush did not report the store's failure")
	}
	r.Record(Session{Policy: stsPolicy})
	st.fail = false
	c := dayCounts(t, r, DayOf(day0), "example.com")[stsPolicy.ID()]
	if c.Successful != 2 || c.Failures[Failure{ResultType: ResultSTSWebPKIInvalid}] != 1 {
		t.Fatalf("after the failed flush: %+v", c)
	}
}

func TestRecorderRunFlushesAndStops(t *testing.T) {
	r := NewRecorder(RecorderConfig{Now: fixedClock(day0), FlushInterval: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	r.Record(Session{Policy: stsPolicy})
	deadline := time.Now().Add(5 * time.Second)
	for {
		cs, _ := r.Store().DayCounts(context.Background(), DayOf(day0), "example.com")
		if len(cs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not flush")
		}
		time.Sleep(time.Millisecond)
	}
	r.Record(Session{Policy: stsPolicy})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	cs, _ := r.Store().DayCounts(context.Background(), DayOf(day0), "example.com")
	if len(cs) != 1 || cs[0].Successful != 2 {
		t.Fatalf("after Run returned: %+v", cs)
	}
}

func TestMemoryStoreSubmissionsAndSuppressions(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore()
	d := DayOf(day0)
	err := s.UpdateSubmission(ctx, d, "Example.com", func(sub *Submission) error {
		if sub.Day != d || sub.Domain != "example.com" || sub.Attempts != 0 {
			t.Errorf("new submission %+v", sub)
		}
		sub.Attempts = 1
		sub.Destinations = append(sub.Destinations, Destination{URI: "mailto:a@example.com"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// An update that fails changes nothing.
	boom := errors.New("boom")
	err = s.UpdateSubmission(ctx, d, "example.com", func(sub *Submission) error {
		sub.Attempts = 99
		sub.Destinations[0].Error = "changed"
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v", err)
	}
	s.UpdateSubmission(ctx, d, "example.com", func(sub *Submission) error {
		if sub.Attempts != 1 || sub.Destinations[0].Error != "" {
			t.Errorf("failed update was kept: %+v", sub)
		}
		return errors.New("read only")
	})

	now := day0
	s.Suppress(ctx, Suppression{Kind: SuppressDomain, Value: "Opted-Out.example."})
	s.Suppress(ctx, Suppression{Kind: SuppressRUA, Value: "mailto:Bounce@example.com", Until: now.Add(time.Hour)})
	s.Suppress(ctx, Suppression{Kind: SuppressRUA, Value: "mailto:bounce@example.com", Until: now.Add(2 * time.Hour)})
	list, _ := s.Suppressions(ctx)
	if len(list) != 2 || !list[1].Until.Equal(now.Add(2*time.Hour)) {
		t.Fatalf("suppressions %+v", list)
	}
	s.AddCounts(ctx, []Counts{{Day: d - 1, Policy: stsPolicy, Successful: 1}, {Day: d, Policy: stsPolicy, Successful: 1}})
	if err := s.DeleteBefore(ctx, d, now.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	list, _ = s.Suppressions(ctx)
	if len(list) != 1 || list[0].Kind != SuppressDomain {
		t.Fatalf("after expiry: %+v", list)
	}
	if doms, _ := s.DayDomains(ctx, d-1); len(doms) != 0 {
		t.Fatalf("old day kept: %v", doms)
	}
	if doms, _ := s.DayDomains(ctx, d); len(doms) != 1 {
		t.Fatalf("current day deleted: %v", doms)
	}
	s.Unsuppress(ctx, SuppressDomain, "opted-out.example")
	if list, _ = s.Suppressions(ctx); len(list) != 0 {
		t.Fatalf("after Unsuppress: %+v", list)
	}
}

func BenchmarkRecord(b *testing.B) {
	r := NewRecorder(RecorderConfig{})
	s := Session{Time: day0, Policy: stsPolicy}
	r.Record(s)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r.Record(s)
	}
}

func BenchmarkRecordParallel(b *testing.B) {
	r := NewRecorder(RecorderConfig{})
	policies := []Policy{stsPolicy, tlsaPolicy, noPolicy}
	for _, p := range policies {
		r.Record(Session{Time: day0, Policy: p})
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.Record(Session{Time: day0, Policy: policies[i%len(policies)]})
			i++
		}
	})
}

func BenchmarkRecordFailure(b *testing.B) {
	r := NewRecorder(RecorderConfig{})
	f := &Failure{
		ResultType: ResultCertificateExpired, SendingMTAIP: netip.MustParseAddr("192.0.2.1"),
		ReceivingMXHostname: "mx1.example.com", ReceivingIP: netip.MustParseAddr("198.51.100.7"),
	}
	s := Session{Time: day0, Policy: stsPolicy, Failure: f}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r.Record(s)
	}
}

func BenchmarkRecordUnpreparedPolicy(b *testing.B) {
	r := NewRecorder(RecorderConfig{})
	p := Policy{Type: stsPolicy.Type, Domain: stsPolicy.Domain, Strings: stsPolicy.Strings, MXHosts: stsPolicy.MXHosts}
	s := Session{Time: day0, Policy: p}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r.Record(s)
	}
}

// BenchmarkAggregateMillion records a million sessions (1000 policy
// domains, one in twenty sessions failed, from two goroutines) and
// flushes them into a MemoryStore. One op is the whole million.
func BenchmarkAggregateMillion(b *testing.B) {
	const sessions, domains = 1_000_000, 1000
	policies := make([]Policy, domains)
	for i := range policies {
		policies[i] = NewPolicy(PolicyTypeSTS, fmt.Sprintf("d%d.example", i),
			[]string{"version: STSv1", "mode: enforce", "mx: *.example", "max_age: 86400"}, []string{"*.example"})
	}
	failures := []Failure{
		{ResultType: ResultCertificateExpired, ReceivingMXHostname: "mx1.example", ReceivingIP: netip.MustParseAddr("192.0.2.1")},
		{ResultType: ResultSTARTTLSNotSupported, ReceivingMXHostname: "mx2.example", ReceivingIP: netip.MustParseAddr("192.0.2.2")},
		{ResultType: ResultValidationFailure, ReceivingMXHostname: "mx3.example", FailureReasonCode: "handshake failure"},
	}
	b.ReportAllocs()
	for range b.N {
		r := NewRecorder(RecorderConfig{})
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < sessions; i += 2 {
					s := Session{Time: day0, Policy: policies[i%domains]}
					if i%20 == 0 {
						s.Failure = &failures[(i/20)%len(failures)]
					}
					r.Record(s)
				}
			}()
		}
		wg.Wait()
		if err := r.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
