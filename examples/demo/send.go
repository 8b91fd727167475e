package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/internal/testenv"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/queue/boltstore"
	"github.com/sealpost/sealpost/tlsrpt"
)

// outcome is everything the demo shows: what became of each recipient,
// the bounce, what the attackers saw and a TLS-RPT report.
type outcome struct {
	// ID is the queue ID of the demo's message.
	ID queue.ID
	// Recipients are in the order of the scenarios.
	Recipients []recipientOutcome
	// Bounce is the DSN the queue wrote for the bounced recipients; nil
	// when it wrote none.
	Bounce *bounceOutcome
	// ReportDomain is the policy domain Report is about, RUA where its
	// _smtp._tls record asks for reports.
	ReportDomain string
	RUA          []string
	Report       *tlsrpt.Report
	// Took is how long the mail took from Enqueue until the queue came to
	// rest.
	Took time.Duration
}

// recipientOutcome is what became of one recipient.
type recipientOutcome struct {
	Scenario scenario
	// Queue is the recipient as the queue last reported it: its state,
	// the last reply, when it is tried next.
	Queue queue.Recipient
	// Result is the delivery client's result of the last attempt: the
	// session, how TLS was authenticated, the requirement and its reason.
	Result delivery.Result
	// Failures are the failed TLS sessions recorded for TLS-RPT under the
	// domain's policy: how a check that was not enforced failed.
	Failures []tlsrpt.Failure
	// Received counts the messages the domain's MX host accepted;
	// Attacker what the on-path attacker saw, if there is one.
	Received int
	Attacker *attackerView
}

// attackerView is what an on-path attacker got out of the demo.
type attackerView struct {
	Connections, Transactions int
}

// bounceOutcome is the DSN the queue wrote and how it was delivered.
type bounceOutcome struct {
	Envelope *queue.Envelope // as enqueued: From "", To the sender
	Queue    queue.Recipient // its recipient as the queue last reported it
	Result   delivery.Result
	// Status is the per-recipient Status field of the DSN the sender's MX
	// host received (RFC 3464 §2.3.4), by Final-Recipient.
	Status map[string]string
}

// send builds the world, sends one message to a recipient of every
// scenario through a queue on a bbolt store, waits until the queue has
// nothing left to do now, and gathers what happened.
func send(ctx context.Context, scs []scenario, reportDomain string, log *slog.Logger) (*outcome, error) {
	w, err := buildWorld(scs)
	if err != nil {
		return nil, err
	}
	defer w.Close()

	dir, err := os.MkdirTemp("", "sealpost-demo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// One file holds the node's state: the queue and the TLS-RPT counts.
	store, err := boltstore.Open(filepath.Join(dir, "sealpost.db"), nil)
	if err != nil {
		return nil, err
	}
	defer store.Close()

	rec := tlsrpt.NewRecorder(tlsrpt.RecorderConfig{Store: store, Logger: log})
	sessions := &sessionLog{rec: rec}
	resolver := w.resolver()
	resolver.Logger = log
	client := delivery.NewClient(delivery.Config{
		Hostname: "mta." + sender,
		Resolver: resolver,
		Dial:     w.Dialer.DialContext,
		RootCAs:  w.CA.Pool(),
		TLSRPT:   sessions,
		Timeouts: demoTimeouts(2 * time.Second),
		Logger:   log,
	})
	defer client.Close()

	wit := &witness{client: client, results: map[string]delivery.Result{}}
	tr := newTracker()
	q, err := queue.New(queue.Config{
		Store:     store,
		Deliverer: wit,
		Hostname:  "mta." + sender,
		Logger:    log,
		Observer:  tr.observer(),
	})
	if err != nil {
		return nil, err
	}

	env := &queue.Envelope{From: "alice@" + sender}
	for _, sc := range scs {
		env.Recipients = append(env.Recipients, queue.Recipient{Addr: recipient(sc)})
	}
	start := time.Now()
	// Enqueued before Run starts, so that the ID is known before any
	// event about it.
	id, err := q.Enqueue(ctx, env, demoMessage(env))
	if err != nil {
		return nil, err
	}
	tr.expect(id, env)

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	ran := make(chan error, 1)
	go func() { ran <- q.Run(runCtx) }()
	waitErr := tr.wait(ctx)
	took := time.Since(start)
	if err := q.Shutdown(ctx); err != nil {
		return nil, fmt.Errorf("stopping the queue: %w", err)
	}
	if err := <-ran; err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	if waitErr != nil {
		return nil, waitErr
	}

	out := &outcome{ID: id, Took: took, ReportDomain: reportDomain}
	for _, sc := range scs {
		addr := recipient(sc)
		ro := recipientOutcome{Scenario: sc, Queue: tr.last(addr), Result: wit.result(addr),
			Failures: sessions.failures(sc.Domain)}
		if s := w.sinks[sc.Domain]; s != nil {
			ro.Received = len(s.Messages())
		}
		if a := w.attackers[sc.Domain]; a != nil {
			ro.Attacker = &attackerView{Connections: a.Connections(), Transactions: a.Transactions()}
		}
		out.Recipients = append(out.Recipients, ro)
	}
	if dsn := tr.dsn(); dsn != nil {
		to := dsn.Recipients[0].Addr
		out.Bounce = &bounceOutcome{Envelope: dsn, Queue: tr.last(to), Result: wit.result(to),
			Status: dsnStatus(w.sinks[sender].Messages())}
	}
	if reportDomain != "" {
		if err := rec.Flush(ctx); err != nil {
			return nil, err
		}
		if out.Report, out.RUA, err = report(ctx, store, resolver, reportDomain, start); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// report builds the TLS-RPT report for domain on the day of t from the
// counts in the store, as the daily job would, and looks up where the
// domain wants it sent.
func report(ctx context.Context, store tlsrpt.Store, r tlsrpt.TXTResolver, domain string, t time.Time) (*tlsrpt.Report, []string, error) {
	day := tlsrpt.DayOf(t)
	counts, err := store.DayCounts(ctx, day, domain)
	if err != nil {
		return nil, nil, err
	}
	rep := tlsrpt.NewReport(tlsrpt.ReportHeader{
		OrganizationName: "sealpost demo",
		ContactInfo:      "postmaster@" + sender,
		ReportID:         tlsrpt.NewReportID(day, domain, sender),
	}, day, counts)
	var rua []string
	rec, err := tlsrpt.LookupRecord(ctx, r, domain)
	switch {
	case err == nil:
		for _, u := range rec.RUA {
			rua = append(rua, u.URI)
		}
	case !errors.Is(err, tlsrpt.ErrNoRecord):
		return nil, nil, err
	}
	return rep, rua, nil
}

// recipient is the demo's recipient at a scenario's domain.
func recipient(sc scenario) string { return "bob@" + sc.Domain }

// demoMessage is the content of the demo's message.
func demoMessage(env *queue.Envelope) []byte {
	var to []string
	for _, r := range env.Recipients {
		to = append(to, r.Addr)
	}
	return []byte("From: Alice <" + env.From + ">\r\n" +
		"To: " + strings.Join(to, ",\r\n ") + "\r\n" +
		"Subject: sealpost demo\r\n" +
		"Message-ID: <demo@" + sender + ">\r\n" +
		"\r\n" +
		"Sent through the queue, over whatever TLS each domain demands.\r\n")
}

// demoTimeouts bounds every step of an SMTP session by d: the loopback
// world answers at once, or not at all.
func demoTimeouts(d time.Duration) delivery.Timeouts {
	return delivery.Timeouts{Connect: d, Greeting: d, Mail: d, Rcpt: d, DataInit: d,
		DataBlock: d, DataTerm: d, Command: d, TLSHandshake: d}
}

// dsnStatus reads the Final-Recipient and Status fields of the DSNs
// among msgs (RFC 3464 §2.3.2, §2.3.4).
func dsnStatus(msgs []testenv.Message) map[string]string {
	st := map[string]string{}
	for _, m := range msgs {
		var final string
		for _, line := range strings.Split(string(m.Data), "\r\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			switch strings.ToLower(k) {
			case "final-recipient":
				_, final, _ = strings.Cut(v, ";")
				final = strings.TrimSpace(final)
			case "status":
				if final != "" {
					st[final] = v
				}
			}
		}
	}
	return st
}

// witness is the queue's Deliverer: it hands each attempt to the delivery
// client and keeps the last result per recipient, which holds what the
// queue does not keep — the session, how TLS was authenticated, the
// requirement the host was held to and why.
type witness struct {
	client  *delivery.Client
	mu      sync.Mutex
	results map[string]delivery.Result
}

// Deliver implements queue.Deliverer.
func (w *witness) Deliver(ctx context.Context, m *delivery.Message) ([]delivery.Result, error) {
	res, err := w.client.Deliver(ctx, m)
	w.mu.Lock()
	for _, r := range res {
		w.results[strings.ToLower(r.Recipient)] = r
	}
	w.mu.Unlock()
	return res, err
}

func (w *witness) result(addr string) delivery.Result {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.results[strings.ToLower(addr)]
}

// sessionLog is the delivery client's TLS-RPT recorder: it hands every
// session to the real recorder and keeps the failures by policy domain.
// A delivery.Result says how the server was authenticated, but not how a
// check that was not enforced failed (MTA-STS testing mode); only the
// TLS-RPT record says that.
type sessionLog struct {
	rec  *tlsrpt.Recorder
	mu   sync.Mutex
	fail map[string][]tlsrpt.Failure
}

// Record implements delivery.Recorder.
func (l *sessionLog) Record(s tlsrpt.Session) {
	l.rec.Record(s)
	if s.Failure == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail == nil {
		l.fail = map[string][]tlsrpt.Failure{}
	}
	l.fail[s.Policy.Domain] = append(l.fail[s.Policy.Domain], *s.Failure)
}

func (l *sessionLog) failures(domain string) []tlsrpt.Failure {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]tlsrpt.Failure(nil), l.fail[domain]...)
}
