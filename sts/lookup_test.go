package sts

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/testenv"
)

// lookup runs Lookup and fails the test on an error.
func (w *world) lookup(domain string) *Result {
	w.t.Helper()
	r, err := w.client.Lookup(context.Background(), domain)
	if err != nil {
		w.t.Fatalf("Lookup(%s): %v", domain, err)
	}
	return r
}

// expect checks a result's source, mode and, for SourceStale, its error.
func expect(t *testing.T, r *Result, source Source, mode Mode, staleErr error) {
	t.Helper()
	if r.Source != source || r.Policy.Mode != mode {
		t.Fatalf("result from %v in mode %s, want %v in mode %s (err %v)", r.Source, r.Policy.Mode, source, mode, r.Err)
	}
	if (staleErr == nil) != (r.Err == nil) || staleErr != nil && !errors.Is(r.Err, staleErr) {
		t.Fatalf("result error %v, want %v", r.Err, staleErr)
	}
}

func TestLookupFetchesThenServesFromCache(t *testing.T) {
	w := newWorld(t)
	w.publish("example.com", "id1", enforcePolicy)
	r := w.lookup("Example.COM.")
	expect(t, r, SourceFetch, ModeEnforce, nil)
	if r.Domain != "example.com" || r.ID != "id1" || !r.Expires.Equal(r.FetchedAt.Add(24*time.Hour)) || !r.FetchedAt.Equal(w.clock.Now()) {
		t.Fatalf("result %+v", r)
	}
	if len(r.Policy.PolicyString) != 5 || r.Policy.PolicyString[0] != "version: STSv1" || len(r.Policy.MX) != 2 {
		t.Fatalf("policy %+v lacks what TLS-RPT needs", r.Policy)
	}
	w.clock.Advance(time.Hour)
	expect(t, w.lookup("example.com"), SourceCache, ModeEnforce, nil)
	if n := w.srv.Fetches("example.com"); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
	if n := w.dns.count(txtName("example.com")); n != 2 {
		t.Fatalf("%d TXT look-ups, want one per Lookup", n)
	}
}

func TestLookupIDChangeTriggersRefetch(t *testing.T) {
	w := newWorld(t)
	w.publish("example.com", "id1", enforcePolicy)
	expect(t, w.lookup("example.com"), SourceFetch, ModeEnforce, nil)

	// A new policy under the same id is not seen: the id is the signal.
	w.serve("example.com", testenv.PolicyResponse{Body: testingPolicy})
	expect(t, w.lookup("example.com"), SourceCache, ModeEnforce, nil)

	w.dns.set(txtName("example.com"), "v=STSv1; id=id2")
	r := w.lookup("example.com")
	expect(t, r, SourceFetch, ModeTesting, nil)
	if r.ID != "id2" || !r.Policy.Match("mx2.example.com") {
		t.Fatalf("result %+v", r)
	}
	expect(t, w.lookup("example.com"), SourceCache, ModeTesting, nil)
	if n := w.srv.Fetches("example.com"); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

func TestLookupModeNoneReplaces(t *testing.T) {
	w := newWorld(t)
	w.publish("example.com", "id1", enforcePolicy)
	w.lookup("example.com")
	w.publish("example.com", "id2", nonePolicy)
	expect(t, w.lookup("example.com"), SourceFetch, ModeNone, nil)
	expect(t, w.lookup("example.com"), SourceCache, ModeNone, nil)
}

func TestLookupKeepsCachedPolicyAfterFailures(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(w *world)
		want   error
	}{
		{"fetch fails after an id change", func(w *world) {
			w.dns.set(txtName("example.com"), "v=STSv1; id=id2")
			w.serve("example.com", testenv.PolicyResponse{Status: 500})
		}, ErrFetch},
		{"fetched policy is invalid after an id change", func(w *world) {
			w.publish("example.com", "id2", "version: STSv1\nmode: enforce\nmax_age: 1\n")
		}, ErrInvalidPolicy},
		{"policy host certificate is invalid after an id change", func(w *world) {
			w.dns.set(txtName("example.com"), "v=STSv1; id=id2")
			cert := w.ca.MustLeaf(testenv.LeafOptions{Expired: true}, "mta-sts.example.com")
			w.serve("example.com", testenv.PolicyResponse{Body: testingPolicy, Certificate: &cert})
		}, ErrWebPKI},
		{"policy host too slow after an id change", func(w *world) {
			w.client.Timeout = 50 * time.Millisecond // set between look-ups, never during one
			w.dns.set(txtName("example.com"), "v=STSv1; id=id2")
			w.serve("example.com", testenv.PolicyResponse{Body: testingPolicy, Delay: 10 * time.Second})
		}, context.DeadlineExceeded},
		{"TXT look-up fails", func(w *world) {
			w.dns.fail(txtName("example.com"), &net.DNSError{Err: "server misbehaving", IsTemporary: true})
		}, ErrTemporaryDNS},
		{"TXT record disappeared", func(w *world) {
			w.dns.remove(txtName("example.com"))
		}, ErrNoRecord},
		{"TXT record became several", func(w *world) {
			w.dns.set(txtName("example.com"), "v=STSv1; id=id1", "v=STSv1; id=id2")
		}, ErrSeveralRecords},
		{"TXT record became invalid", func(w *world) {
			w.dns.set(txtName("example.com"), "v=STSv1; id=")
		}, ErrInvalidRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.publish("example.com", "id1", enforcePolicy)
			first := w.lookup("example.com")
			tt.break_(w)
			w.clock.Advance(12 * time.Hour)
			r := w.lookup("example.com")
			expect(t, r, SourceStale, ModeEnforce, tt.want)
			if r.ID != "id1" || !r.Expires.Equal(first.Expires) {
				t.Fatalf("stale result %+v, want the cached one", r)
			}
			// Once expired, the cached policy is no longer used.
			w.clock.Advance(12 * time.Hour)
			if r, err := w.client.Lookup(context.Background(), "example.com"); !errors.Is(err, tt.want) {
				t.Fatalf("Lookup after expiry = %+v, %v; want %v", r, err, tt.want)
			}
		})
	}
}

func TestLookupExpiredPolicyIsFetchedAgain(t *testing.T) {
	w := newWorld(t)
	w.publish("example.com", "id1", enforcePolicy)
	w.lookup("example.com")
	w.clock.Advance(24 * time.Hour)
	expect(t, w.lookup("example.com"), SourceFetch, ModeEnforce, nil)
	if n := w.srv.Fetches("example.com"); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

func TestLookupWithoutPolicy(t *testing.T) {
	w := newWorld(t)
	w.serve("webpki.example", testenv.PolicyResponse{Body: enforcePolicy, Certificate: leaf(w.ca, testenv.LeafOptions{}, "www.webpki.example")})
	w.dns.set(txtName("webpki.example"), "v=STSv1; id=1")
	w.dns.set(txtName("several.example"), "v=STSv1; id=1", "v=STSv1; id=2")
	w.dns.set(txtName("nohost.example"), "v=STSv1; id=1")
	w.dns.fail(txtName("servfail.example"), &net.DNSError{Err: "server misbehaving", IsTemporary: true})
	tests := []struct {
		domain string
		want   error
		result string
	}{
		{"none.example", ErrNoRecord, ""},
		{"several.example", ErrSeveralRecords, "sts-policy-invalid"},
		{"servfail.example", ErrTemporaryDNS, "sts-policy-fetch-error"},
		{"nohost.example", ErrFetch, "sts-policy-fetch-error"},
		{"webpki.example", ErrWebPKI, "sts-webpki-invalid"},
		{"bad domain", ErrInvalidDomain, ""},
	}
	for _, tt := range tests {
		r, err := w.client.Lookup(context.Background(), tt.domain)
		var se *Error
		if r != nil || !errors.Is(err, tt.want) || !errors.As(err, &se) || se.ResultType() != tt.result {
			t.Errorf("Lookup(%s) = %+v, %v; want %v with result type %q", tt.domain, r, err, tt.want, tt.result)
		}
	}
}

func TestLookupRemembersFailedFetch(t *testing.T) {
	w := newWorld(t)
	w.dns.set(txtName("example.com"), "v=STSv1; id=id1")
	w.serve("example.com", testenv.PolicyResponse{Status: 404})
	for i := 0; i < 3; i++ {
		if _, err := w.client.Lookup(context.Background(), "example.com"); !errors.Is(err, ErrFetch) {
			t.Fatalf("Lookup = %v, want ErrFetch", err)
		}
	}
	if n := w.srv.Fetches("example.com"); n != 1 {
		t.Fatalf("%d fetches within fetchRetry, want 1", n)
	}
	// A new id is tried at once: the domain may have fixed its policy.
	w.publish("example.com", "id2", enforcePolicy)
	expect(t, w.lookup("example.com"), SourceFetch, ModeEnforce, nil)

	w.dns.set(txtName("example.com"), "v=STSv1; id=id3")
	w.serve("example.com", testenv.PolicyResponse{Status: 404})
	expect(t, w.lookup("example.com"), SourceStale, ModeEnforce, ErrFetch)
	expect(t, w.lookup("example.com"), SourceStale, ModeEnforce, ErrFetch)
	if n := w.srv.Fetches("example.com"); n != 3 {
		t.Fatalf("%d fetches, want 3", n)
	}
	w.clock.Advance(fetchRetry)
	w.serve("example.com", testenv.PolicyResponse{Body: testingPolicy})
	expect(t, w.lookup("example.com"), SourceFetch, ModeTesting, nil)
}

func TestLookupCollapsesConcurrentFetches(t *testing.T) {
	w := newWorld(t)
	w.publish("example.com", "id1", enforcePolicy)
	w.serve("example.com", testenv.PolicyResponse{Body: enforcePolicy, Delay: 100 * time.Millisecond})
	const n = 20
	var wg sync.WaitGroup
	results := make([]*Result, n)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := w.client.Lookup(context.Background(), "example.com")
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = r
		}()
	}
	wg.Wait()
	if f := w.srv.Fetches("example.com"); f != 1 {
		t.Fatalf("%d concurrent look-ups made %d fetches, want 1", n, f)
	}
	for _, r := range results {
		if r != nil && r.Policy != results[0].Policy {
			t.Fatal("concurrent look-ups got different policies")
		}
	}
}

func TestLookupCallerGivesUpFetchGoesOn(t *testing.T) {
	w := newWorld(t)
	w.publish("example.com", "id1", enforcePolicy)
	w.serve("example.com", testenv.PolicyResponse{Body: enforcePolicy, Delay: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := w.client.Lookup(ctx, "example.com"); !errors.Is(err, ErrFetch) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lookup with a short deadline = %v, want ErrFetch with the deadline", err)
	}
	// The fetch finishes for the next caller, which waits for it.
	expect(t, w.lookup("example.com"), SourceFetch, ModeEnforce, nil)
	expect(t, w.lookup("example.com"), SourceCache, ModeEnforce, nil)
	if n := w.srv.Fetches("example.com"); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}

func TestLookupRecordCheckInterval(t *testing.T) {
	w := newWorld(t)
	w.client.RecordCheckInterval = time.Hour
	w.publish("example.com", "id1", enforcePolicy)
	w.lookup("example.com")
	w.dns.set(txtName("example.com"), "v=STSv1; id=id2")
	w.clock.Advance(30 * time.Minute)
	expect(t, w.lookup("example.com"), SourceCache, ModeEnforce, nil)
	if n := w.dns.count(txtName("example.com")); n != 1 {
		t.Fatalf("%d TXT look-ups within the interval, want 1", n)
	}
	w.clock.Advance(30 * time.Minute)
	expect(t, w.lookup("example.com"), SourceFetch, ModeEnforce, nil)
}

func TestLookupStoreSurvivesRestart(t *testing.T) {
	w := newWorld(t)
	store := &MemoryStore{}
	w.client.Store = store
	w.publish("example.com", "id1", enforcePolicy)
	w.lookup("example.com")
	stored, ok, _ := store.Get(context.Background(), "example.com")
	if !ok || stored.ID != "id1" || stored.Text != enforcePolicy {
		t.Fatalf("stored %+v, %v", stored, ok)
	}

	// A restarted client behind an attacker who hides the TXT record
	// still applies the policy: the window stays closed.
	restarted := func() *Client {
		return &Client{Resolver: w.dns, DialContext: w.dialer.DialContext, RootCAs: w.ca.Pool(), Now: w.clock.Now, Store: store}
	}
	w.dns.fail(txtName("example.com"), &net.DNSError{Err: "i/o timeout", IsTimeout: true})
	r, err := restarted().Lookup(context.Background(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, r, SourceStale, ModeEnforce, ErrTemporaryDNS)
	if !r.FetchedAt.Equal(stored.FetchedAt) {
		t.Fatalf("FetchedAt %v, want the stored %v", r.FetchedAt, stored.FetchedAt)
	}
	w.dns.set(txtName("example.com"), "v=STSv1; id=id1")
	r, err = restarted().Lookup(context.Background(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, r, SourceCache, ModeEnforce, nil)
	if n := w.srv.Fetches("example.com"); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}

func TestLookupReusesPolicyStoredByAnotherNode(t *testing.T) {
	w := newWorld(t)
	store := &MemoryStore{}
	w.client.Store = store
	other := &Client{Resolver: w.dns, DialContext: w.dialer.DialContext, RootCAs: w.ca.Pool(), Now: w.clock.Now, Store: store}
	if err := other.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.publish("example.com", "id1", enforcePolicy)
	w.lookup("example.com")
	r, err := other.Lookup(context.Background(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, r, SourceCache, ModeEnforce, nil)
	if n := w.srv.Fetches("example.com"); n != 1 {
		t.Fatalf("%d fetches, want 1: the second node should use the stored policy", n)
	}
}

func TestLoadDropsExpiredAndInvalidStoredPolicies(t *testing.T) {
	clock := newFakeClock()
	now := clock.Now()
	store := &MemoryStore{}
	ctx := context.Background()
	store.Put(ctx, StoredPolicy{Domain: "good.example", ID: "1", Text: enforcePolicy, FetchedAt: now, Expires: now.Add(24 * time.Hour)})
	store.Put(ctx, StoredPolicy{Domain: "expired.example", ID: "1", Text: enforcePolicy, FetchedAt: now.Add(-48 * time.Hour), Expires: now.Add(-24 * time.Hour)})
	store.Put(ctx, StoredPolicy{Domain: "invalid.example", ID: "1", Text: "junk", FetchedAt: now, Expires: now.Add(time.Hour)})
	store.Put(ctx, StoredPolicy{Domain: "Upper.Example", ID: "1", Text: enforcePolicy, FetchedAt: now, Expires: now.Add(time.Hour)})
	// Expires beyond max_age (a damaged store) is cut back to max_age.
	store.Put(ctx, StoredPolicy{Domain: "long.example", ID: "1", Text: enforcePolicy, FetchedAt: now.Add(-12 * time.Hour), Expires: now.Add(300 * 24 * time.Hour)})

	dns := newFakeTXT()
	dns.fail(txtName("good.example"), &net.DNSError{Err: "timeout", IsTimeout: true})
	dns.fail(txtName("long.example"), &net.DNSError{Err: "timeout", IsTimeout: true})
	c := &Client{Resolver: dns, Store: store, Now: clock.Now}
	if err := c.Load(ctx); err != nil {
		t.Fatal(err)
	}
	list, _ := store.List(ctx)
	if len(list) != 2 || list[0].Domain != "good.example" || list[1].Domain != "long.example" {
		t.Fatalf("store after Load holds %+v, want good.example and long.example", list)
	}
	clock.Advance(13 * time.Hour)
	if r, err := c.Lookup(ctx, "good.example"); err != nil || r.Source != SourceStale {
		t.Fatalf("Lookup(good.example) = %+v, %v; want the stored policy", r, err)
	}
	if r, err := c.Lookup(ctx, "long.example"); !errors.Is(err, ErrTemporaryDNS) {
		t.Fatalf("Lookup(long.example) = %+v, %v; want no policy, its max_age is over", r, err)
	}
}

// failingStore fails every call.
type failingStore struct{}

var errStore = errors.New("store unavailable")

func (failingStore) Get(context.Context, string) (StoredPolicy, bool, error) {
	return StoredPolicy{}, false, errStore
}
func (failingStore) Put(context.Context, StoredPolicy) error      { return errStore }
func (failingStore) Delete(context.Context, string) error         { return errStore }
func (failingStore) List(context.Context) ([]StoredPolicy, error) { return nil, errStore }

func TestLookupWorksWhenStoreFails(t *testing.T) {
	w := newWorld(t)
	w.client.Store = failingStore{}
	if err := w.client.Load(context.Background()); !errors.Is(err, errStore) {
		t.Fatalf("Load = %v, want the store's error", err)
	}
	w.publish("example.com", "id1", enforcePolicy)
	expect(t, w.lookup("example.com"), SourceFetch, ModeEnforce, nil)
	expect(t, w.lookup("example.com"), SourceCache, ModeEnforce, nil)
	if err := w.client.Purge(context.Background(), "example.com"); !errors.Is(err, errStore) {
		t.Fatalf("Purge = %v, want the store's error", err)
	}
}

func TestPurge(t *testing.T) {
	w := newWorld(t)
	store := &MemoryStore{}
	w.client.Store = store
	w.publish("example.com", "id1", enforcePolicy)
	w.lookup("example.com")
	if err := w.client.Purge(context.Background(), "EXAMPLE.com."); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := store.Get(context.Background(), "example.com"); ok {
		t.Fatal("the store still holds the purged policy")
	}
	// The domain moved its MX hosts; after the purge the new policy is
	// fetched, though the id did not change.
	w.serve("example.com", testenv.PolicyResponse{Body: testingPolicy})
	expect(t, w.lookup("example.com"), SourceFetch, ModeTesting, nil)
	if err := w.client.Purge(context.Background(), "bad domain"); !errors.Is(err, ErrInvalidDomain) {
		t.Fatalf("Purge(bad domain) = %v", err)
	}
}

func TestRefetch(t *testing.T) {
	w := newWorld(t)
	w.client.RefetchInterval = 10 * time.Minute
	ctx := context.Background()
	w.publish("example.com", "id1", enforcePolicy)
	w.lookup("example.com")

	// The domain changed its policy but not the id; a delivery failed.
	w.serve("example.com", testenv.PolicyResponse{Body: testingPolicy})
	r, err := w.client.Refetch(ctx, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, r, SourceFetch, ModeTesting, nil)

	// Rate-limited: the next failure within the interval does not fetch.
	w.serve("example.com", testenv.PolicyResponse{Body: enforcePolicy})
	r, err = w.client.Refetch(ctx, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, r, SourceCache, ModeTesting, nil)
	if n := w.srv.Fetches("example.com"); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	w.clock.Advance(10 * time.Minute)
	r, _ = w.client.Refetch(ctx, "example.com")
	expect(t, r, SourceFetch, ModeEnforce, nil)

	// A failed re-fetch keeps the cached policy.
	w.clock.Advance(10 * time.Minute)
	w.serve("example.com", testenv.PolicyResponse{Status: 503})
	r, _ = w.client.Refetch(ctx, "example.com")
	expect(t, r, SourceStale, ModeEnforce, ErrFetch)

	// Without a cached policy it is a Lookup.
	w.publish("other.example", "1", testingPolicy)
	r, err = w.client.Refetch(ctx, "other.example")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, r, SourceFetch, ModeTesting, nil)
}

// TestLookupCachedDoesNotAllocate holds Lookup to what its documentation
// promises for the path every delivery takes.
func TestLookupCachedDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	w := newWorld(t)
	w.publish("example.com", "id1", enforcePolicy)
	w.lookup("example.com")
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := w.client.Lookup(ctx, "example.com"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("a cached Lookup allocates %v times", allocs)
	}
}
