package tlsrpt

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Config configures a Reporter. OrganizationName and Submitter are
// required; every other field has a working zero value.
type Config struct {
	// OrganizationName is the "organization-name" of the reports.
	OrganizationName string
	// Submitter is the domain of the sending MTA: the "sender" of the
	// report file name (RFC 8460 §5.1) and the TLS-Report-Submitter of
	// report mail (§5.3).
	Submitter string
	// ContactInfo is the "contact-info" address. RFC 8460 §5.3 wants its
	// domain to be the Submitter. Empty means "postmaster@" + Submitter.
	ContactInfo string
	// MailFrom is the From address and envelope sender of report mail.
	// Empty means ContactInfo.
	MailFrom string

	// Store holds counts, submission states and suppressions. Nil means
	// the Recorder's store, or a new MemoryStore without a Recorder.
	Store Store
	// Recorder, if set, is flushed before a day's reports are built, so
	// that they include the last sessions of the day.
	Recorder *Recorder
	// Resolver looks up the _smtp._tls records. Nil means a net.Resolver
	// (the system's resolver, without DNSSEC); pass the dane package's
	// resolver instead.
	Resolver TXTResolver

	// MailSender hands report mail to the MTA. Nil means mailto:
	// destinations are not used.
	MailSender MailSender
	// MailSigner DKIM-signs report mail (RFC 8460 §3: MUST), such as a
	// DKIMSigner. Required when MailSender is set.
	MailSigner MailSigner
	// HTTPClient POSTs reports to https: destinations. Nil means a client
	// with its own copy of http.DefaultTransport, without a proxy, that
	// looks report hosts up through Resolver and verifies them against the
	// system's roots. Resolver must then also have LookupNetIP, as
	// *dane.Resolver and *net.Resolver do: without it https: submissions
	// fail rather than ask the machine's resolver.
	HTTPClient *http.Client
	// StrictHTTPS forbids the second, unverified POST made when a report
	// host's certificate does not verify. RFC 8460 §3 lets submitters
	// ignore certificate errors and says reports MUST be delivered despite
	// TLS failures, so by default a report is posted anyway.
	StrictHTTPS bool
	// SubmitTimeout bounds the submission to one destination. Zero means
	// one minute.
	SubmitTimeout time.Duration
	// Parallel is how many domains' reports are submitted at once. Zero
	// means 4.
	Parallel int

	// SendDelay and SendWindow place the sending of a day's reports: at a
	// random time between SendDelay and SendDelay+SendWindow after the UTC
	// day ended (RFC 8460 §4.1 asks for a delay, so that receivers are not
	// flooded at midnight). Zero means 15 minutes and 4 hours.
	SendDelay, SendWindow time.Duration
	// RetryInterval is the wait before the first retry of a failed
	// submission; it doubles with each retry (RFC 8460 §5.5: exponential
	// backoff). Zero means 10 minutes.
	RetryInterval time.Duration
	// RetryPeriod is how long after the first attempt retries go on. Zero
	// means 24 hours (RFC 8460 §5.5).
	RetryPeriod time.Duration
	// SuppressFor is how long a destination that refused a report for good
	// (a permanent bounce, an HTTP 4xx) is left out. Zero means 7 days.
	SuppressFor time.Duration
	// RetentionDays is how many days of counts and submission states are
	// kept, for inspection. Zero means 7; at least 3 are kept.
	RetentionDays int

	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// Sleep waits for d or until ctx is done, returning ctx's error then.
	// Nil means a timer. Tests pass one that advances a fake clock.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand draws the sending times. Nil means a generator seeded from
	// crypto/rand. Only Run uses it.
	Rand *rand.Rand
	// Logger receives what goes wrong. Nil means slog.Default().
	Logger *slog.Logger
}

// Reporter builds each day's reports from a Store and submits them to
// every destination of each policy domain's TLSRPT record. It is safe for
// concurrent use; run one Run per process (several processes sharing a
// store coordinate through the submissions' leases).
type Reporter struct {
	cfg    Config
	store  Store
	header ReportHeader
	http   *http.Client
	rng    *rand.Rand
	log    *slog.Logger
}

// leaseTime is how long an attempt keeps other Reporters off a
// submission: more than the DNS look-up and the submission to every
// destination may take.
const leaseTime = 15 * time.Minute

// NewReporter returns a Reporter configured by cfg.
func NewReporter(cfg Config) (*Reporter, error) {
	if cfg.OrganizationName == "" || cfg.Submitter == "" {
		return nil, errors.New("tlsrpt: Config: expected OrganizationName and Submitter, found them empty")
	}
	if cfg.MailSender != nil && cfg.MailSigner == nil {
		return nil, errors.New("tlsrpt: Config: expected a MailSigner with the MailSender (RFC 8460 §3: report mail MUST be DKIM-signed)")
	}
	cfg.Submitter = normalizeDomain(cfg.Submitter)
	if cfg.ContactInfo == "" {
		cfg.ContactInfo = "postmaster@" + cfg.Submitter
	}
	if cfg.MailFrom == "" {
		cfg.MailFrom = cfg.ContactInfo
	}
	r := &Reporter{cfg: cfg, store: cfg.Store, http: cfg.HTTPClient, rng: cfg.Rand, log: cfg.Logger}
	if r.store == nil {
		if cfg.Recorder != nil {
			r.store = cfg.Recorder.Store()
		} else {
			r.store = NewMemoryStore()
		}
	}
	if r.cfg.Resolver == nil {
		r.cfg.Resolver = &net.Resolver{}
	}
	if r.http == nil {
		r.http = defaultHTTPClient(r.cfg.Resolver)
	}
	if r.rng == nil {
		var seed [16]byte
		crand.Read(seed[:])
		r.rng = rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	c := &r.cfg
	setDefault(&c.SubmitTimeout, time.Minute)
	setDefault(&c.SendDelay, 15*time.Minute)
	setDefault(&c.SendWindow, 4*time.Hour)
	setDefault(&c.RetryInterval, 10*time.Minute)
	setDefault(&c.RetryPeriod, 24*time.Hour)
	setDefault(&c.SuppressFor, 7*24*time.Hour)
	setDefault(&c.Parallel, 4)
	setDefault(&c.RetentionDays, 7)
	c.RetentionDays = max(c.RetentionDays, 3)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	r.header = ReportHeader{OrganizationName: cfg.OrganizationName, ContactInfo: cfg.ContactInfo}
	return r, nil
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Store returns the store the Reporter uses.
func (r *Reporter) Store() Store { return r.store }

// OptOut turns reporting off for a policy domain, for good (until OptIn).
func (r *Reporter) OptOut(ctx context.Context, domain, reason string) error {
	return r.store.Suppress(ctx, Suppression{Kind: SuppressDomain, Value: normalizeDomain(domain),
		Reason: reason, Created: r.cfg.Now()})
}

// OptIn turns reporting for a policy domain back on.
func (r *Reporter) OptIn(ctx context.Context, domain string) error {
	return r.store.Unsuppress(ctx, SuppressDomain, domain)
}

// Bounced records that report mail to address bounced permanently: the
// mailto: destination is left out for SuppressFor. The queue calls it
// when it learns of the bounce after SendReport returned.
func (r *Reporter) Bounced(ctx context.Context, address, reason string) error {
	now := r.cfg.Now()
	return r.store.Suppress(ctx, Suppression{Kind: SuppressRUA, Value: "mailto:" + address,
		Until: now.Add(r.cfg.SuppressFor), Reason: reason, Created: now})
}

// ruaKey is the suppression value of a destination: mail destinations by
// address, so that a bounce (which knows only the address) matches.
func ruaKey(rua RUA) string {
	if rua.IsMail() {
		return "mailto:" + rua.Address
	}
	return rua.URI
}

// suppressions is a snapshot of the suppression list, updated as a run
// suppresses destinations.
type suppressions struct {
	mu  sync.Mutex
	now time.Time
	m   map[string]Suppression
}

func (r *Reporter) loadSuppressions(ctx context.Context, now time.Time) (*suppressions, error) {
	list, err := r.store.Suppressions(ctx)
	if err != nil {
		return nil, err
	}
	s := &suppressions{now: now, m: make(map[string]Suppression, len(list))}
	for _, sup := range list {
		s.m[suppressionKey(sup.Kind, sup.Value)] = sup
	}
	return s, nil
}

func (s *suppressions) active(kind SuppressionKind, value string) (Suppression, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sup, ok := s.m[suppressionKey(kind, value)]
	return sup, ok && sup.Active(s.now)
}

func (s *suppressions) add(sup Suppression) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[suppressionKey(sup.Kind, sup.Value)] = sup
}

// SendDay submits, now, the reports of day that are due: those not yet
// attempted and the failed ones whose retry time has come. Reports
// already sent are never sent again. Run calls it; call it directly to
// send from a cron job instead.
func (r *Reporter) SendDay(ctx context.Context, day Day) error {
	_, err := r.sendDay(ctx, day)
	return err
}

// sendDay returns the number of submissions of day still pending.
func (r *Reporter) sendDay(ctx context.Context, day Day) (pending int, err error) {
	if r.cfg.Recorder != nil {
		if err := r.cfg.Recorder.Flush(ctx); err != nil {
			r.log.Warn("tlsrpt: flushing the recorder before reporting failed", "day", day, "err", err)
		}
	}
	domains, err := r.store.DayDomains(ctx, day)
	if err != nil {
		return 0, fmt.Errorf("tlsrpt: listing the domains of %s: %w", day, err)
	}
	sups, err := r.loadSuppressions(ctx, r.cfg.Now())
	if err != nil {
		return 0, fmt.Errorf("tlsrpt: reading the suppression list: %w", err)
	}
	var mu sync.Mutex
	var errs []error
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.Parallel)
	for _, domain := range domains {
		g.Go(func() error {
			p, err := r.submitDomain(gctx, day, domain, sups)
			mu.Lock()
			defer mu.Unlock()
			if p {
				pending++
			}
			if err != nil {
				errs = append(errs, err)
			}
			return nil
		})
	}
	g.Wait()
	if err := ctx.Err(); err != nil {
		return pending, err
	}
	return pending, errors.Join(errs...)
}

// Run sends each day's reports once the UTC day is over, at a random time
// in the first hours of the next day (SendDelay, SendWindow), retries
// failed submissions, and deletes what is older than RetentionDays. It
// returns ctx's error when ctx is done.
func (r *Reporter) Run(ctx context.Context) error {
	offsets := make(map[Day]time.Duration) // per day, drawn once
	settled := make(map[Day]bool)          // no submission of the day pending
	sendAt := func(d Day) time.Time {
		off, ok := offsets[d]
		if !ok {
			off = r.cfg.SendDelay + time.Duration(r.rng.Int64N(int64(r.cfg.SendWindow)))
			offsets[d] = off
		}
		return (d + 1).Start().Add(off)
	}
	for {
		now := r.cfg.Now()
		today := DayOf(now)
		busy := false
		// Yesterday's reports, and the retries of the day before's (which
		// can go on until about this time of day).
		for d := today - 2; d < today; d++ {
			if settled[d] || now.Before(sendAt(d)) {
				continue
			}
			pending, err := r.sendDay(ctx, d)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				r.log.Warn("tlsrpt: sending the reports of a day", "day", d, "err", err)
			}
			settled[d] = err == nil && pending == 0
			busy = busy || !settled[d]
		}
		for d := range offsets {
			if d < today-2 {
				delete(offsets, d)
				delete(settled, d)
			}
		}
		if err := r.store.DeleteBefore(ctx, today-Day(r.cfg.RetentionDays), now); err != nil {
			r.log.Warn("tlsrpt: deleting old counts", "err", err)
		}
		next := sendAt(today - 1)
		if !now.Before(next) {
			next = sendAt(today)
		}
		wait := next.Sub(now)
		if busy {
			wait = min(wait, r.cfg.RetryInterval)
		}
		if err := r.cfg.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}
