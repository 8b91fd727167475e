package tlsrpt

import (
	"testing"
	"time"
)

func TestResultTypesAreTheRFCValues(t *testing.T) {
	// RFC 8460 §4.3.1, §4.3.2.1 and §4.3.2.2, as registered in §6.6.
	want := []string{
		"starttls-not-supported", "certificate-host-mismatch", "certificate-expired",
		"certificate-not-trusted", "validation-failure", "tlsa-invalid", "dnssec-invalid",
		"dane-required", "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid",
	}
	got := ResultTypes()
	if len(got) != len(want) {
		t.Fatalf("%d result types, want %d", len(got), len(want))
	}
	for i, rt := range got {
		if string(rt) != want[i] || !rt.Known() {
			t.Errorf("result type %d = %q (known %v), want %q", i, rt, rt.Known(), want[i])
		}
	}
	if ResultType("certificate-revoked").Known() {
		t.Error("an unregistered result type is known")
	}
	for _, pt := range []PolicyType{"sts", "tlsa", "no-policy-found"} {
		if !pt.Known() {
			t.Errorf("policy type %q is not known", pt)
		}
	}
	if PolicyType("dane").Known() {
		t.Error(`policy type "dane" is known`)
	}
}

func TestPolicyID(t *testing.T) {
	base := NewPolicy(PolicyTypeSTS, "Example.COM.", []string{"version: STSv1", "mode: enforce"}, []string{"MX.example.com."})
	if base.Domain != "example.com" || base.MXHosts[0] != "mx.example.com" {
		t.Fatalf("not normalised: %+v", base)
	}
	same := Policy{Type: PolicyTypeSTS, Domain: "example.com", Strings: []string{"version: STSv1", "mode: enforce"}, MXHosts: []string{"mx.example.com"}}
	if base.ID() != same.ID() {
		t.Fatal("a literal Policy with the same content has another ID")
	}
	differ := map[string]Policy{
		"type":         NewPolicy(PolicyTypeTLSA, "example.com", base.Strings, base.MXHosts),
		"domain":       NewPolicy(PolicyTypeSTS, "example.net", base.Strings, base.MXHosts),
		"strings":      NewPolicy(PolicyTypeSTS, "example.com", []string{"version: STSv1", "mode: testing"}, base.MXHosts),
		"mx hosts":     NewPolicy(PolicyTypeSTS, "example.com", base.Strings, []string{"mx2.example.com"}),
		"no mx hosts":  NewPolicy(PolicyTypeSTS, "example.com", base.Strings, nil),
		"string split": NewPolicy(PolicyTypeSTS, "example.com", []string{"version: STSv1mode: enforce"}, base.MXHosts),
		"moved string": NewPolicy(PolicyTypeSTS, "example.com", []string{"version: STSv1"}, []string{"mode: enforce", "mx.example.com"}),
	}
	for name, p := range differ {
		if p.ID() == base.ID() {
			t.Errorf("changing the %s keeps the ID", name)
		}
	}
	in := []string{"MX.example.com"}
	NewPolicy(PolicyTypeSTS, "example.com", nil, in)
	if in[0] != "MX.example.com" {
		t.Error("NewPolicy modified the caller's slice")
	}
}

func TestDay(t *testing.T) {
	d := DayOf(time.Date(2020, 4, 18, 23, 59, 59, 999, time.FixedZone("x", -3600)))
	if d.String() != "2020-04-19" {
		t.Fatalf("day of 23:59:59 at UTC-1 = %s, want 2020-04-19", d)
	}
	d = DayOf(time.Date(2020, 4, 18, 0, 0, 0, 0, time.UTC))
	if got := d.Start().Format(time.RFC3339); got != "2020-04-18T00:00:00Z" {
		t.Errorf("Start = %s", got)
	}
	if got := d.End().Format(time.RFC3339); got != "2020-04-18T23:59:59Z" {
		t.Errorf("End = %s", got)
	}
	if DayOf(d.End()) != d || DayOf(d.End().Add(time.Second)) != d+1 {
		t.Error("End is not the day's last second")
	}
	if got := DayOf(time.Date(1969, 12, 31, 12, 0, 0, 0, time.UTC)); got != -1 {
		t.Errorf("day before the epoch = %d, want -1", got)
	}
}

func TestFailureNormalizedCutsLongText(t *testing.T) {
	long := make([]byte, 1000)
	for i := range long {
		long[i] = 'a'
	}
	long[maxHostLen-1] = 0xc3 // a two-byte sequence across the cut
	long[maxHostLen] = 0xa4
	f := Failure{ResultType: ResultValidationFailure, ReceivingMXHelo: string(long), FailureReasonCode: string(long), ReceivingMXHostname: "MX.Example.com."}
	n := f.normalized()
	if len(n.ReceivingMXHelo) != maxHostLen-1 || len(n.FailureReasonCode) != maxReasonLen {
		t.Fatalf("lengths %d, %d", len(n.ReceivingMXHelo), len(n.FailureReasonCode))
	}
	if n.ReceivingMXHostname != "mx.example.com" {
		t.Fatalf("host name %q", n.ReceivingMXHostname)
	}
}
