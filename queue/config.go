package queue

import (
	"cmp"
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/sealpost/sealpost/delivery"
)

// Deliverer makes one delivery attempt of a message whose recipients all
// share one domain, returning a result per recipient in their order.
// *delivery.Client implements it. An error means the attempt could not be
// made at all; a *delivery.Error says whether that is temporary, any other
// error is taken as temporary.
type Deliverer interface {
	Deliver(ctx context.Context, m *delivery.Message) ([]delivery.Result, error)
}

// Config configures a Queue. Only Store is required (and Deliverer, to
// Run). A Config must not be changed once a Queue uses it.
type Config struct {
	// Store keeps the messages. Required.
	Store Store
	// Deliverer makes the delivery attempts. Required by Run.
	Deliverer Deliverer

	// Hostname names this MTA in DSNs (Reporting-MTA, RFC 3464 §2.2.2)
	// and in their From address (MAILER-DAEMON@Hostname). Empty means
	// "localhost".
	Hostname string

	// Workers bounds the deliveries under way at once. Zero means 64. A
	// delivery counts until its result is stored, so a crash repeats at
	// most Workers attempts (at-least-once delivery).
	Workers int
	// DomainWorkers bounds the deliveries under way at once to one
	// recipient domain, so that a large batch to one domain neither
	// monopolises the workers nor floods the domain. Zero means 8.
	// Per-host limits are the delivery client's: only it knows which MX
	// host a domain's mail goes to (delivery.Config.MaxConnsPerHost).
	DomainWorkers int
	// DomainLimits overrides DomainWorkers for the domains it names
	// (lower-case). Nil means none.
	DomainLimits map[string]int

	// Retry is the back-off between attempts for a recipient that failed
	// temporarily. The zero value is described at Backoff.
	Retry Backoff
	// MaxAge is how long a message is retried; a recipient still pending
	// then bounces (RFC 5321 §4.5.4.1 suggests at least 4–5 days). Zero
	// means 5 days.
	MaxAge time.Duration
	// DelayWarning, when positive, sends one "delayed" DSN (RFC 3464
	// §2.3.3) for a recipient still pending after this long, if its NOTIFY
	// asks for DELAY or it gave no NOTIFY. Zero sends none.
	DelayWarning time.Duration

	// MaxMessageSize is the largest content Enqueue accepts, in bytes.
	// Zero means 50 MiB.
	MaxMessageSize int64

	// DKIM holds the signers, each for its Domain (DKIMSigner makes one
	// from an RSA or Ed25519 key). A message is signed at enqueue, once,
	// by every signer for the domain of its From header field (the domain
	// DMARC aligns with, RFC 7489 §3.1.1); the stored, signed bytes are
	// what every attempt sends. DSNs are signed by the signers for
	// Hostname. Nil signs nothing.
	DKIM []Signer

	// Lease is how long a message taken for delivery stays hidden from
	// other schedulers sharing the store; one still under way then may be
	// sent twice. Zero means one hour.
	Lease time.Duration
	// Shared says the store is shared by several nodes (a database
	// server): Run then leaves other nodes' leases to expire instead of
	// ending every lease at start-up, as a node alone with its file does
	// to retry at once what a crash interrupted.
	Shared bool
	// ActiveLimit bounds the messages taken from the store and held in
	// memory for delivery at once. Zero means 10000.
	ActiveLimit int
	// PollInterval is the longest the scheduler sleeps without looking at
	// the store (Enqueue, RetryNow and Release wake it at once). Zero
	// means one minute.
	PollInterval time.Duration

	// ReportBounced, when set, is told of each recipient of TLS-RPT report
	// mail (SendReport) that failed permanently, with the reason:
	// tlsrpt.Reporter.Bounced, which suppresses that rua for a while. Nil
	// tells no one.
	ReportBounced func(ctx context.Context, address, reason string) error

	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives what an operator wants to know: deferrals, bounces,
	// store failures. Nil discards.
	Logger *slog.Logger
	// Observer receives events for metrics. The zero value observes
	// nothing.
	Observer Observer
}

// Backoff is the retry schedule of a recipient that failed temporarily:
// the n-th retry comes Initial·Factor^(n-1) after the failure, at most
// Max, spread by ±Jitter so that a burst of failures does not come back
// as a burst (RFC 5321 §4.5.4.1: retry intervals of at least 30 minutes
// are suggested; the shorter default first retry suits today's greylisting).
type Backoff struct {
	// Initial is the delay before the first retry. Zero means 5 minutes.
	Initial time.Duration
	// Max caps the delay. Zero means 4 hours.
	Max time.Duration
	// Factor multiplies the delay after each attempt. Zero (or less than
	// 1) means 2.
	Factor float64
	// Jitter is the fraction by which a delay is randomly lengthened or
	// shortened. Zero means 0.2; negative means none.
	Jitter float64
}

// Delay returns the wait after the attempts-th failed attempt.
func (b Backoff) Delay(attempts int) time.Duration {
	initial := cmp.Or(b.Initial, 5*time.Minute)
	limit := cmp.Or(b.Max, 4*time.Hour)
	factor := b.Factor
	if factor < 1 {
		factor = 2
	}
	jitter := b.Jitter
	switch {
	case jitter == 0:
		jitter = 0.2
	case jitter < 0:
		jitter = 0
	}
	d := float64(initial)
	for i := 1; i < attempts && d < float64(limit); i++ {
		d *= factor
	}
	d = min(d, float64(limit))
	d *= 1 - jitter + 2*jitter*rand.Float64()
	return max(time.Duration(d), time.Millisecond)
}

// Observer receives the queue's events, for metrics. Every field may be
// nil. The functions are called synchronously from the queue's goroutines:
// they must be quick and safe for concurrent use, and must not keep r,
// which the queue goes on changing (copy it).
type Observer struct {
	// Enqueued: a message was stored (bounces included).
	Enqueued func(env *Envelope)
	// AttemptStarted: a delivery of the message's recipients at domain
	// begins.
	AttemptStarted func(id ID, domain string, recipients int)
	// Delivered: a recipient was delivered. res is the attempt's result
	// as the Deliverer returned it: res.Session says over what (MX host,
	// IP, TLS version, res.Session.Auth such as delivery.DANEEE) and under
	// which requirement (res.Session.Requirement: Basis, Reason).
	Delivered func(id ID, r *Recipient, res *delivery.Result)
	// Deferred: a recipient failed temporarily and is retried at
	// r.NextAttempt. res is the failed attempt's result; res.Err holds
	// the cause (a *dane.VerifyError, an *sts.Error, ...).
	Deferred func(id ID, r *Recipient, res *delivery.Result)
	// Bounced: a recipient failed permanently, or expired after the
	// temporary failure in res.
	Bounced func(id ID, r *Recipient, res *delivery.Result)
	// Depth: the number of messages stored and of those in memory for
	// delivery, after each look at the store.
	Depth func(stored, active int)
}
