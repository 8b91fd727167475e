package queue

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sealpost/sealpost/delivery"
)

// Queue is a durable mail queue. It is safe for concurrent use: Enqueue
// and the operator methods may be called from any goroutine, before and
// while Run runs.
type Queue struct {
	cfg   Config
	store Store
	log   *slog.Logger
	// wake nudges the scheduler: new or released mail is due now.
	wake chan struct{}

	lastID atomic.Int64 // the time in the last ID made, see newID

	mu         sync.Mutex
	running    bool
	closed     bool          // Shutdown was called
	stop       chan struct{} // closed by Shutdown
	exited     chan struct{} // closed when Run returns
	cancelWork context.CancelFunc

	turns int // the scheduler loop's wake-ups in the last Run, for tests
}

// MaxRecipients bounds the recipients of one message.
const MaxRecipients = 10000

// New returns a Queue with cfg. It does not start delivering: see Run.
func New(cfg Config) (*Queue, error) {
	if cfg.Store == nil {
		return nil, errors.New("queue: Config.Store is nil")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Queue{cfg: cfg, store: cfg.Store, log: log, wake: make(chan struct{}, 1)}, nil
}

func (q *Queue) now() time.Time {
	if q.cfg.Now != nil {
		return q.cfg.Now()
	}
	return time.Now()
}

func (q *Queue) hostname() string { return cmp.Or(q.cfg.Hostname, "localhost") }

func (q *Queue) maxAge() time.Duration { return cmp.Or(q.cfg.MaxAge, 5*24*time.Hour) }

// kick wakes the scheduler without blocking.
func (q *Queue) kick() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// RejectError says why Enqueue refused a message. It is permanent: the
// same message will be refused again.
type RejectError struct {
	// Reason says what was expected and what was found.
	Reason string
}

func (e *RejectError) Error() string { return "queue: message refused: " + e.Reason }

// Temporary returns false: retrying the same message cannot help.
func (e *RejectError) Temporary() bool { return false }

func reject(format string, args ...any) error {
	return &RejectError{Reason: fmt.Sprintf(format, args...)}
}

// Enqueue stores a message for delivery and returns its ID. From,
// Recipients (Addr, Notify, ORcpt), EnvID, Ret, RequireTLS and Held are
// taken from env; the rest is set by the queue. body is the content as
// sent after DATA (header and body, CRLF or LF line ends); it is
// DKIM-signed first when Config.DKIM has keys for its From domain.
//
// When Enqueue returns nil, the message is on stable storage (for a
// durable Store) and will be delivered or bounced. A *RejectError means
// the message is unacceptable; any other error means it was not stored
// and may be offered again.
func (q *Queue) Enqueue(ctx context.Context, env *Envelope, body []byte) (ID, error) {
	if err := q.check(env, body); err != nil {
		return "", err
	}
	signed, err := q.sign(body, q.signingDomain(body))
	if err != nil {
		return "", fmt.Errorf("queue: DKIM signing: %w", err)
	}
	e := q.prepare(env, KindMessage, signed)
	if err := q.store.Enqueue(ctx, &Entry{Envelope: e, Body: signed}); err != nil {
		return "", fmt.Errorf("queue: storing message: %w", err)
	}
	q.enqueued(e)
	return e.ID, nil
}

// enqueued reports a stored message and wakes the scheduler.
func (q *Queue) enqueued(e *Envelope) {
	q.log.Info("queue: message enqueued", "id", e.ID, "from", e.From, "recipients", len(e.Recipients), "size", e.Size, "kind", e.Kind)
	if f := q.cfg.Observer.Enqueued; f != nil {
		f(e)
	}
	if !e.Held {
		q.kick()
	}
}

// check refuses what cannot be delivered.
func (q *Queue) check(env *Envelope, body []byte) error {
	if env == nil {
		return reject("no envelope")
	}
	if limit := cmp.Or(q.cfg.MaxMessageSize, 50<<20); int64(len(body)) > limit {
		return reject("message of %d bytes exceeds the limit of %d", len(body), limit)
	}
	if env.From != "" {
		if err := checkAddr(env.From); err != nil {
			return reject("sender %q: %v", env.From, err)
		}
	}
	switch n := len(env.Recipients); {
	case n == 0:
		return reject("no recipients")
	case n > MaxRecipients:
		return reject("%d recipients, at most %d allowed", n, MaxRecipients)
	}
	for _, r := range env.Recipients {
		if err := checkAddr(r.Addr); err != nil {
			return reject("recipient %q: %v", r.Addr, err)
		}
		if !r.Notify.valid() {
			return reject("recipient %q: NOTIFY=NEVER combined with %v", r.Addr, r.Notify)
		}
		if strings.ContainsAny(r.ORcpt, "\r\n") {
			return reject("recipient %q: ORCPT contains a line break", r.Addr)
		}
	}
	if strings.ContainsAny(env.EnvID, "\r\n") {
		return reject("ENVID contains a line break")
	}
	return nil
}

// checkAddr accepts "local@domain" without angle brackets, white space or
// control characters: what goes into MAIL, RCPT and DSN fields verbatim.
func checkAddr(a string) error {
	at := strings.LastIndexByte(a, '@')
	switch {
	case at <= 0 || at == len(a)-1:
		return errors.New(`expected "local@domain"`)
	case len(a) > 320:
		return fmt.Errorf("address of %d bytes, at most 320 allowed", len(a))
	}
	for i := 0; i < len(a); i++ {
		if c := a[i]; c <= ' ' || c == 0x7f || c == '<' || c == '>' {
			return fmt.Errorf("character %q not allowed", c)
		}
	}
	return nil
}

// prepare makes the envelope to store: a fresh ID, every recipient pending
// and due now, the content's properties.
func (q *Queue) prepare(in *Envelope, kind Kind, body []byte) *Envelope {
	now := q.now()
	e := &Envelope{
		ID: q.newID(now), From: in.From, Arrived: now,
		EnvID: in.EnvID, Ret: in.Ret, RequireTLS: in.RequireTLS,
		Kind: kind, Held: in.Held, Size: int64(len(body)),
	}
	seen := make(map[string]bool, len(in.Recipients))
	for _, r := range in.Recipients {
		// The same mailbox twice would get the message twice.
		if seen[r.Addr] {
			continue
		}
		seen[r.Addr] = true
		e.Recipients = append(e.Recipients, Recipient{Addr: r.Addr, Notify: r.Notify, ORcpt: r.ORcpt, NextAttempt: now})
	}
	dm := delivery.Message{Body: bytes.NewReader(body), Size: int64(len(body))}
	_ = dm.Inspect() // reading a bytes.Reader does not fail
	e.TLSOptional, e.SMTPUTF8, e.EightBit = dm.TLSOptional, dm.SMTPUTF8, dm.EightBit
	return e
}
