package tlsrpt

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Counts is what was recorded for one policy on one day: the unit the
// Recorder hands to a Store and a report is built from.
type Counts struct {
	Day    Day
	Policy Policy
	// Successful is the number of sessions that met the policy.
	Successful int64
	// Failures counts the failed sessions per distinct failure.
	Failures map[Failure]int64
}

// MaxFailureDetails bounds the distinct failures kept for one policy on one
// day. Further distinct failures are counted under their result type alone
// (the other fields empty), so that the totals stay right while a hostile
// server, one banner per connection, cannot grow a report without limit.
const MaxFailureDetails = 1000

// addFailure adds n sessions of failure f to m, folding f into its result
// type alone once m holds MaxFailureDetails entries.
func addFailure(m map[Failure]int64, f Failure, n int64) {
	if _, ok := m[f]; !ok && len(m) >= MaxFailureDetails {
		f = Failure{ResultType: f.ResultType}
	}
	m[f] += n
}

// Store keeps what the package must not lose across a restart: the counts
// of the days not yet reported, the submission state of each day's reports
// (so that none is sent twice) and the suppression list. Implementations
// must be safe for concurrent use.
//
// The Recorder writes counts in batches (one AddCounts call every flush
// interval, not one per session), so a store on disk or on a database
// server does one transaction per batch: for PostgreSQL, one
// "INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n" per entry.
//
// MemoryStore is the in-memory implementation; the queue package provides
// persistent ones.
type Store interface {
	// AddCounts adds a batch to the stored counts: entries of the same Day
	// and Policy.ID() are summed, successes and each failure apart, with
	// at most MaxFailureDetails distinct failures per day and policy (as
	// addFailure does). The store must not keep references to the batch.
	AddCounts(ctx context.Context, batch []Counts) error
	// DayDomains returns the policy domains with counts on day, sorted.
	DayDomains(ctx context.Context, day Day) ([]string, error)
	// DayCounts returns the counts of one policy domain on day, one entry
	// per policy, in any order.
	DayCounts(ctx context.Context, day Day, domain string) ([]Counts, error)

	// UpdateSubmission reads the submission state of one day's report for
	// one policy domain (a zero Submission with Day and Domain set when
	// there is none yet), calls update on it and, if update returns nil,
	// stores the result, all atomically with respect to other calls for
	// the same day and domain. update must be quick and do no I/O; it may
	// be called more than once (a database may retry the transaction).
	UpdateSubmission(ctx context.Context, day Day, domain string, update func(*Submission) error) error

	// Suppress adds s to the suppression list, replacing an entry of the
	// same Kind and Value.
	Suppress(ctx context.Context, s Suppression) error
	// Unsuppress removes the entry of that kind and value, if any.
	Unsuppress(ctx context.Context, kind SuppressionKind, value string) error
	// Suppressions returns the suppression list, expired entries included.
	Suppressions(ctx context.Context) ([]Suppression, error)

	// DeleteBefore removes the counts and submission states of the days
	// before day, and the suppressions that expired before now.
	DeleteBefore(ctx context.Context, day Day, now time.Time) error
}

// Submission is the delivery state of one day's report for one policy
// domain.
type Submission struct {
	Day    Day
	Domain string
	// ReportID is chosen at the first attempt and kept by the retries, so
	// that the receiver can tell a retry from a new report (RFC 8460 §5.3).
	ReportID string
	// First is the time of the first attempt; retries stop 24 hours later
	// (RFC 8460 §5.5).
	First time.Time
	// Attempts counts the attempts made.
	Attempts int
	// Next is the earliest time of the next attempt.
	Next time.Time
	// Lease is set while an attempt is under way: another Reporter (in a
	// fleet sharing the store) leaves the submission alone until then.
	Lease time.Time
	// Outcome is empty while the submission is pending.
	Outcome Outcome
	// Destinations holds the state of each rua the report went to.
	Destinations []Destination
}

// Outcome says how a submission ended.
type Outcome string

// The outcomes of a submission.
const (
	// OutcomeSent: every destination accepted the report, or refused it
	// permanently, and at least one accepted it.
	OutcomeSent Outcome = "sent"
	// OutcomeNoRecord: the domain publishes no usable TLSRPT record.
	OutcomeNoRecord Outcome = "no-record"
	// OutcomeSuppressed: reporting is turned off for the domain, or every
	// destination is suppressed.
	OutcomeSuppressed Outcome = "suppressed"
	// OutcomeFailed: no destination accepted the report within the retry
	// period, or all refused it permanently.
	OutcomeFailed Outcome = "failed"
)

// Destination is the delivery state of a report at one rua.
type Destination struct {
	// URI is the rua, as in RUA.URI.
	URI string
	// Delivered is when the destination accepted the report; zero if not.
	Delivered time.Time
	// Attempts counts the attempts at this destination.
	Attempts int
	// Error is the last error, if any.
	Error string
	// Permanent is set when the destination refused the report for good.
	Permanent bool
}

// SuppressionKind says what a Suppression applies to.
type SuppressionKind string

// The kinds of suppression.
const (
	// SuppressDomain turns reporting off for a policy domain: the
	// operator's opt-out. Value is the domain.
	SuppressDomain SuppressionKind = "domain"
	// SuppressRUA stops sending to one destination, such as an address
	// that bounced. Value is the rua URI ("mailto:..." or "https://...").
	SuppressRUA SuppressionKind = "rua"
)

// Suppression is one entry of the suppression list.
type Suppression struct {
	Kind  SuppressionKind
	Value string
	// Until is when the suppression ends; zero means never.
	Until time.Time
	// Reason says why, for the operator.
	Reason string
	// Created is when the entry was made.
	Created time.Time
}

// Active reports whether s is in force at now.
func (s Suppression) Active(now time.Time) bool {
	return s.Until.IsZero() || now.Before(s.Until)
}

// suppressionKey normalises the value of a suppression: domains and mail
// addresses compare case-insensitively.
func suppressionKey(kind SuppressionKind, value string) string {
	if kind == SuppressDomain {
		return string(kind) + " " + normalizeDomain(value)
	}
	if strings.HasPrefix(strings.ToLower(value), "mailto:") {
		return string(kind) + " " + strings.ToLower(value)
	}
	return string(kind) + " " + value
}

// MemoryStore is a Store in memory, for tests, for programs that can lose
// a day's counts on a restart, and as the model of the persistent stores.
// The zero value is ready to use.
type MemoryStore struct {
	mu     sync.Mutex
	counts map[Day]map[string]map[PolicyID]*Counts // day, domain, policy
	subs   map[subKey]*Submission
	supp   map[string]Suppression
}

type subKey struct {
	day    Day
	domain string
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

// AddCounts implements Store.
func (s *MemoryStore) AddCounts(ctx context.Context, batch []Counts) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = make(map[Day]map[string]map[PolicyID]*Counts)
	}
	for i := range batch {
		in := &batch[i]
		byDomain := s.counts[in.Day]
		if byDomain == nil {
			byDomain = make(map[string]map[PolicyID]*Counts)
			s.counts[in.Day] = byDomain
		}
		domain := normalizeDomain(in.Policy.Domain)
		byPolicy := byDomain[domain]
		if byPolicy == nil {
			byPolicy = make(map[PolicyID]*Counts)
			byDomain[domain] = byPolicy
		}
		id := in.Policy.ID()
		c := byPolicy[id]
		if c == nil {
			c = &Counts{Day: in.Day, Policy: in.Policy.clone(), Failures: make(map[Failure]int64)}
			byPolicy[id] = c
		}
		c.Successful += in.Successful
		for f, n := range in.Failures {
			addFailure(c.Failures, f, n)
		}
	}
	return nil
}

// DayDomains implements Store.
func (s *MemoryStore) DayDomains(ctx context.Context, day Day) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.counts[day])), nil
}

// DayCounts implements Store.
func (s *MemoryStore) DayCounts(ctx context.Context, day Day, domain string) ([]Counts, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Counts
	for _, c := range s.counts[day][normalizeDomain(domain)] {
		cp := *c
		cp.Policy = c.Policy.clone()
		cp.Failures = maps.Clone(c.Failures)
		out = append(out, cp)
	}
	return out, nil
}

// UpdateSubmission implements Store.
func (s *MemoryStore) UpdateSubmission(ctx context.Context, day Day, domain string, update func(*Submission) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	domain = normalizeDomain(domain)
	s.mu.Lock()
	defer s.mu.Unlock()
	key := subKey{day, domain}
	sub := Submission{Day: day, Domain: domain}
	if old := s.subs[key]; old != nil {
		sub = *old
		sub.Destinations = slices.Clone(old.Destinations)
	}
	if err := update(&sub); err != nil {
		return err
	}
	if s.subs == nil {
		s.subs = make(map[subKey]*Submission)
	}
	sub.Destinations = slices.Clone(sub.Destinations)
	s.subs[key] = &sub
	return nil
}

// Suppress implements Store.
func (s *MemoryStore) Suppress(ctx context.Context, sup Suppression) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.supp == nil {
		s.supp = make(map[string]Suppression)
	}
	s.supp[suppressionKey(sup.Kind, sup.Value)] = sup
	return nil
}

// Unsuppress implements Store.
func (s *MemoryStore) Unsuppress(ctx context.Context, kind SuppressionKind, value string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.supp, suppressionKey(kind, value))
	return nil
}

// Suppressions implements Store.
func (s *MemoryStore) Suppressions(ctx context.Context) ([]Suppression, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := slices.Sorted(maps.Keys(s.supp))
	out := make([]Suppression, 0, len(keys))
	for _, k := range keys {
		out = append(out, s.supp[k])
	}
	return out, nil
}

// DeleteBefore implements Store.
func (s *MemoryStore) DeleteBefore(ctx context.Context, day Day, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for d := range s.counts {
		if d < day {
			delete(s.counts, d)
		}
	}
	for k := range s.subs {
		if k.day < day {
			delete(s.subs, k)
		}
	}
	for k, sup := range s.supp {
		if !sup.Active(now) {
			delete(s.supp, k)
		}
	}
	return nil
}
