package boltstore_test

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/tlsrpt"
)

// TestTLSRPTStoreMatchesMemoryStore runs the same calls on the bolt store
// and on tlsrpt.MemoryStore, the model, and compares what they return.
func TestTLSRPTStoreMatchesMemoryStore(t *testing.T) {
	ctx := context.Background()
	bolt, mem := open(t, nil), tlsrpt.NewMemoryStore()
	stores := []tlsrpt.Store{bolt, mem}
	day := tlsrpt.DayOf(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC))
	sts := tlsrpt.NewPolicy(tlsrpt.PolicyTypeSTS, "Example.COM.", []string{"version: STSv1", "mode: enforce", "mx: mx.example.com", "max_age: 86400"}, []string{"mx.example.com"})
	tlsa := tlsrpt.NewPolicy(tlsrpt.PolicyTypeTLSA, "other.example", []string{"3 1 1 aabb"}, []string{"mx.other.example"})
	fail := tlsrpt.Failure{ResultType: tlsrpt.ResultCertificateExpired, ReceivingMXHostname: "mx.example.com",
		SendingMTAIP: netip.MustParseAddr("192.0.2.1"), ReceivingIP: netip.MustParseAddr("2001:db8::25")}
	batches := [][]tlsrpt.Counts{
		{{Day: day, Policy: sts, Successful: 3, Failures: map[tlsrpt.Failure]int64{fail: 2}}},
		{{Day: day, Policy: sts, Successful: 1, Failures: map[tlsrpt.Failure]int64{fail: 1}},
			{Day: day, Policy: tlsa, Successful: 5},
			// dnsname.Fold's rule: one trailing dot after a label is
			// dropped, "a.." stays itself (it is not the name "a.").
			{Day: day, Policy: tlsrpt.NewPolicy(tlsrpt.PolicyTypeTLSA, "Odd.Example..", []string{"3 1 1 ccdd"}, nil), Successful: 2},
			{Day: day - 1, Policy: tlsa, Successful: 9}},
	}
	// Past MaxFailureDetails, new failures fold into their result type.
	many := map[tlsrpt.Failure]int64{}
	for i := range tlsrpt.MaxFailureDetails + 5 {
		many[tlsrpt.Failure{ResultType: tlsrpt.ResultValidationFailure, FailureReasonCode: fmt.Sprint(i)}] = 1
	}
	batches = append(batches, []tlsrpt.Counts{{Day: day, Policy: tlsa, Failures: many}})
	for _, s := range stores {
		for _, b := range batches {
			if err := s.AddCounts(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	compare := func(what string, f func(s tlsrpt.Store) any) {
		t.Helper()
		got, want := f(bolt), f(mem)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: bolt store = %v\nmemory store = %v", what, got, want)
		}
	}
	compare("DayDomains", func(s tlsrpt.Store) any { d, _ := s.DayDomains(ctx, day); return d })
	for _, domain := range []string{"example.com", "other.example", "odd.example..", "odd.example."} {
		compare("DayCounts "+domain, func(s tlsrpt.Store) any {
			c, _ := s.DayCounts(ctx, day, domain)
			slices.SortFunc(c, func(a, b tlsrpt.Counts) int { return strings.Compare(a.Policy.ID().String(), b.Policy.ID().String()) })
			var out []string
			for _, x := range c {
				total := int64(0)
				for _, n := range x.Failures {
					total += n
				}
				out = append(out, fmt.Sprintf("%s %d ok, %d failed in %d groups", x.Policy.ID(), x.Successful, total, len(x.Failures)))
			}
			return out
		})
	}
	now := time.Date(2025, 3, 2, 3, 0, 0, 0, time.UTC)
	for _, s := range stores {
		err := s.UpdateSubmission(ctx, day, "EXAMPLE.com", func(sub *tlsrpt.Submission) error {
			if sub.ReportID != "" || sub.Domain != "example.com" {
				return fmt.Errorf("fresh submission = %+v", sub)
			}
			sub.ReportID, sub.First, sub.Attempts = "r1", now, 1
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, sup := range []tlsrpt.Suppression{
			{Kind: tlsrpt.SuppressDomain, Value: "Quiet.Example", Reason: "opt-out"},
			{Kind: tlsrpt.SuppressRUA, Value: "mailto:Reports@Example.com", Until: now.Add(-time.Hour), Reason: "bounced"},
			{Kind: tlsrpt.SuppressRUA, Value: "mailto:reports@example.com", Until: now.Add(time.Hour), Reason: "bounced again"},
		} {
			if err := s.Suppress(ctx, sup); err != nil {
				t.Fatal(err)
			}
		}
	}
	compare("submission", func(s tlsrpt.Store) any {
		var got tlsrpt.Submission
		s.UpdateSubmission(ctx, day, "example.com", func(sub *tlsrpt.Submission) error { got = *sub; return fmt.Errorf("read only") })
		return fmt.Sprintf("%s %s %d %v", got.Domain, got.ReportID, got.Attempts, got.First.UTC())
	})
	suppressions := func(s tlsrpt.Store) any {
		l, _ := s.Suppressions(ctx)
		var out []string
		for _, x := range l {
			out = append(out, fmt.Sprintf("%s %s %s %v", x.Kind, x.Value, x.Reason, x.Until.UTC()))
		}
		slices.Sort(out)
		return out
	}
	compare("Suppressions", suppressions)
	for _, s := range stores {
		if err := s.DeleteBefore(ctx, day, now); err != nil {
			t.Fatal(err)
		}
		if err := s.Unsuppress(ctx, tlsrpt.SuppressDomain, "quiet.example"); err != nil {
			t.Fatal(err)
		}
	}
	compare("Suppressions after DeleteBefore and Unsuppress", suppressions)
	compare("counts of the day before after DeleteBefore", func(s tlsrpt.Store) any { d, _ := s.DayDomains(ctx, day-1); return len(d) })
	compare("DayDomains after DeleteBefore", func(s tlsrpt.Store) any { d, _ := s.DayDomains(ctx, day); return d })
}
