package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/internal/testenv"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/queue/boltstore"
	"github.com/sealpost/sealpost/sts"
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
	// Cached are the domains whose MTA-STS policy the store's cache holds
	// at the end, sorted.
	Cached []string
}

// recipientOutcome is what became of one recipient.
type recipientOutcome struct {
	Scenario scenario
	// Queue is the recipient as the queue last reported it: its state,
	// the last reply, when it is tried next.
	Queue queue.Recipient
	// Result is the delivery result of the last attempt, as the queue's
	// observer got it: the session, how TLS was authenticated, the
	// requirement and its reason.
	Result delivery.Result
	// Failures are the failed TLS sessions recorded for TLS-RPT under the
	// domain's policy: how a check that was not enforced failed.
	Failures []tlsrpt.Failure
	// Received counts the messages the domain's MX host accepted;
	// Attacker what the on-path attacker saw, if there is one.
	Received int
	Attacker *attackerView
}

// attackerView is what an on-path attacker got out of the demo: the
// connections it relayed, the TLS handshakes clients completed with it
// (accepting its certificate) and the mail transactions it carried.
type attackerView struct {
	Connections, Handshakes, Transactions int
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

// node is the sending side: one bbolt file holding the queue, the
// MTA-STS policy cache and the TLS-RPT counts, a TLS-RPT recorder, an
// MTA-STS client and a delivery client wired to the world, and the queue
// with its observer.
type node struct {
	store    *boltstore.Store
	rec      *tlsrpt.Recorder
	sessions *sessionLog
	resolver *dane.Resolver
	client   *delivery.Client
	tracker  *tracker
	queue    *queue.Queue
}

// newNode opens the store in dir and builds the node on w. Close it when
// done.
func newNode(w *world, dir string, log *slog.Logger) (*node, error) {
	store, err := boltstore.Open(filepath.Join(dir, "sealpost.db"), nil)
	if err != nil {
		return nil, err
	}
	n := &node{store: store, resolver: w.resolver(), tracker: newTracker()}
	n.resolver.Logger = log
	n.rec = tlsrpt.NewRecorder(tlsrpt.RecorderConfig{Store: store, Logger: log})
	n.sessions = &sessionLog{rec: n.rec}
	// The MTA-STS policies are cached in the same file as the queue, so
	// that a restart never forgets a policy it has seen and never reopens
	// the trust-on-first-use window (RFC 8461 §10.2).
	mtasts := &sts.Client{
		Resolver:    n.resolver,
		DialContext: w.Dialer.DialContext,
		RootCAs:     w.CA.Pool(),
		Store:       store.PolicyCache(),
		Logger:      log,
	}
	n.client = delivery.NewClient(delivery.Config{
		Hostname: "mta." + sender,
		Resolver: n.resolver,
		MTASTS:   mtasts,
		Dial:     w.Dialer.DialContext,
		RootCAs:  w.CA.Pool(),
		TLSRPT:   n.sessions,
		Timeouts: demoTimeouts(2 * time.Second),
		Logger:   log,
	})
	n.queue, err = queue.New(queue.Config{
		Store:     store,
		Deliverer: n.client,
		Hostname:  "mta." + sender,
		Logger:    log,
		Observer:  n.tracker.observer(),
	})
	if err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Close ends the client's sessions and closes the store.
func (n *node) Close() error {
	n.client.Close()
	return n.store.Close()
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
	n, err := newNode(w, dir, log)
	if err != nil {
		return nil, err
	}
	defer n.Close()

	env := &queue.Envelope{From: "alice@" + sender}
	for _, sc := range scs {
		env.Recipients = append(env.Recipients, queue.Recipient{Addr: recipient(sc)})
	}
	start := time.Now()
	// Enqueued before Run starts, so that the ID is known before any
	// event about it.
	id, err := n.queue.Enqueue(ctx, env, demoMessage(env))
	if err != nil {
		return nil, err
	}
	n.tracker.expect(id, env)
	if err := n.deliver(ctx); err != nil {
		return nil, err
	}
	out := n.gather(w, scs)
	out.ID, out.Took = id, time.Since(start)
	cached, err := n.store.PolicyCache().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the MTA-STS policy cache: %w", err)
	}
	for _, p := range cached {
		out.Cached = append(out.Cached, p.Domain)
	}
	sort.Strings(out.Cached)
	if reportDomain != "" {
		out.ReportDomain = reportDomain
		if err := n.rec.Flush(ctx); err != nil {
			return nil, err
		}
		if out.Report, out.RUA, err = report(ctx, n.store, n.resolver, reportDomain, start); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// deliver runs the queue until the tracker says the mail is at rest, then
// shuts it down, so that every result is stored.
func (n *node) deliver(ctx context.Context) error {
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- n.queue.Run(runCtx) }()
	if err := n.tracker.wait(ctx); err != nil {
		stop()
		<-ran
		return err
	}
	if err := n.queue.Shutdown(ctx); err != nil {
		return fmt.Errorf("stopping the queue: %w", err)
	}
	if err := <-ran; err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	return nil
}

// gather collects what became of each scenario's recipient and of the
// bounce, from the queue's events, the delivery results and the world.
func (n *node) gather(w *world, scs []scenario) *outcome {
	out := &outcome{}
	for _, sc := range scs {
		addr := recipient(sc)
		ro := recipientOutcome{Scenario: sc, Queue: n.tracker.last(addr), Result: n.tracker.result(addr),
			Failures: n.sessions.failures(sc.Domain)}
		if s := w.sinks[sc.Domain]; s != nil {
			ro.Received = len(s.Messages())
		}
		if a := w.attackers[sc.Domain]; a != nil {
			ro.Attacker = &attackerView{Connections: a.Connections(), Handshakes: a.Handshakes(), Transactions: a.Transactions()}
		}
		out.Recipients = append(out.Recipients, ro)
	}
	if dsn := n.tracker.dsn(); dsn != nil {
		to := dsn.Recipients[0].Addr
		out.Bounce = &bounceOutcome{Envelope: dsn, Queue: n.tracker.last(to), Result: n.tracker.result(to),
			Status: dsnStatus(w.sinks[sender].Messages())}
	}
	return out
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
