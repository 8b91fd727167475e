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
// the bounces, what the attackers saw and a TLS-RPT report.
type outcome struct {
	// Recipients are in the order of the scenarios.
	Recipients []recipientOutcome
	// ReportDomain is the policy domain Report is about, RUA where its
	// _smtp._tls record asks for reports.
	ReportDomain string
	RUA          []string
	Report       *tlsrpt.Report
	// Took is how long the mail took from the first Enqueue until the
	// queue came to rest after the last.
	Took time.Duration
	// Cached are the domains whose MTA-STS policy the store's cache holds
	// at the end, sorted.
	Cached []string
}

// recipientOutcome is what became of one recipient.
type recipientOutcome struct {
	Scenario scenario
	// MessageID is the queue ID of the message the recipient was in.
	MessageID queue.ID
	// Queue is the recipient as the queue last reported it: its state,
	// the last reply, when it is tried next.
	Queue queue.Recipient
	// Result is the delivery result of the last attempt, as the queue's
	// observer got it: the session, how TLS was authenticated, the
	// requirement and its reason.
	Result delivery.Result
	// Failures are the failed TLS sessions the TLS-RPT recorder counted
	// under the domain's policy, as its store holds them for the daily
	// report.
	Failures []tlsrpt.Failure
	// Received counts the messages the domain's MX host accepted;
	// Attacker what the on-path attacker saw, if there is one.
	Received int
	Attacker *attackerView
	// Bounce is the DSN the queue wrote about a bounced recipient; nil
	// for the others.
	Bounce *bounceOutcome
}

// attackerView is what an on-path attacker got out of the demo: the
// connections it relayed, the TLS handshakes clients completed with it
// (accepting its certificate) and the mail transactions it carried.
type attackerView struct {
	Connections, Handshakes, Transactions int
}

// bounceOutcome is a DSN the queue wrote and how it was delivered.
type bounceOutcome struct {
	Envelope *queue.Envelope // as enqueued: From "", To the sender
	Queue    queue.Recipient // its recipient as the queue last reported it
	Result   delivery.Result
	// Status is the Status field (RFC 3464 §2.3.4) the sender's MX host
	// received for the bounced recipient; empty when none arrived.
	Status string
}

// node is the sending side: one bbolt file holding the queue, the
// MTA-STS policy cache and the TLS-RPT counts, a TLS-RPT recorder, an
// MTA-STS client and a delivery client wired to the world, and the queue
// with its observer.
type node struct {
	store    *boltstore.Store
	rec      *tlsrpt.Recorder
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
	n.client, err = delivery.NewClient(delivery.Config{
		Hostname: "mta." + sender,
		Resolver: n.resolver,
		MTASTS:   mtasts,
		Dial:     w.Dialer.DialContext,
		RootCAs:  w.CA.Pool(),
		TLSRPT:   n.rec,
		Timeouts: demoTimeouts(2 * time.Second),
		Logger:   log,
	})
	if err != nil {
		n.Close()
		return nil, err
	}
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

	start := time.Now()
	ids, err := n.deliver(ctx, envelopes(scs))
	if err != nil {
		return nil, err
	}
	took := time.Since(start)
	// The recorder writes its counts in batches: flush them, so that the
	// failures shown and the report are what it recorded.
	if err := n.rec.Flush(ctx); err != nil {
		return nil, err
	}
	out, err := n.gather(ctx, w, scs, ids, start)
	if err != nil {
		return nil, err
	}
	out.Took = took
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
		if out.Report, out.RUA, err = report(ctx, n.store, n.resolver, reportDomain, start); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// envelopes returns the demo's messages: one to every scenario's
// recipient but those whose message carries REQUIRETLS, then one with
// REQUIRETLS to those (RFC 8689 makes it a property of the whole message).
func envelopes(scs []scenario) []*queue.Envelope {
	plain := &queue.Envelope{From: "alice@" + sender}
	strict := &queue.Envelope{From: "alice@" + sender, RequireTLS: true}
	for _, sc := range scs {
		env := plain
		if sc.RequireTLS {
			env = strict
		}
		env.Recipients = append(env.Recipients, queue.Recipient{Addr: recipient(sc)})
	}
	if len(strict.Recipients) == 0 {
		return []*queue.Envelope{plain}
	}
	return []*queue.Envelope{plain, strict}
}

// deliver runs the queue, enqueues each message once the tracker says the
// one before is at rest, and shuts the queue down after the last, so that
// every result is stored. It returns the messages' queue IDs.
func (n *node) deliver(ctx context.Context, envs []*queue.Envelope) ([]queue.ID, error) {
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- n.queue.Run(runCtx) }()
	var ids []queue.ID
	for i, env := range envs {
		id, err := n.queue.Enqueue(ctx, env, demoMessage(env, i))
		if err == nil {
			ids = append(ids, id)
			n.tracker.expect(id, env)
			err = n.tracker.wait(ctx)
		}
		if err != nil {
			stop()
			<-ran
			return nil, err
		}
	}
	if err := n.queue.Shutdown(ctx); err != nil {
		return nil, fmt.Errorf("stopping the queue: %w", err)
	}
	if err := <-ran; err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	return ids, nil
}

// gather collects what became of each scenario's recipient and of the
// bounces, from the queue's events, the delivery results, the TLS-RPT
// counts recorded since start and the world. ids are the queue IDs of the
// messages envelopes made.
func (n *node) gather(ctx context.Context, w *world, scs []scenario, ids []queue.ID, start time.Time) (*outcome, error) {
	out := &outcome{}
	status := dsnStatus(w.sinks[sender].Messages())
	for _, sc := range scs {
		addr := recipient(sc)
		id := ids[0]
		if sc.RequireTLS {
			id = ids[len(ids)-1]
		}
		failures, err := n.failures(ctx, sc.Domain, start)
		if err != nil {
			return nil, err
		}
		ro := recipientOutcome{Scenario: sc, MessageID: id, Queue: n.tracker.last(id, addr),
			Result: n.tracker.result(id, addr), Failures: failures}
		if s := w.sinks[sc.Domain]; s != nil {
			ro.Received = len(s.Messages())
		}
		if a := w.attackers[sc.Domain]; a != nil {
			ro.Attacker = &attackerView{Connections: a.Connections(), Handshakes: a.Handshakes(), Transactions: a.Transactions()}
		}
		if dsn := n.tracker.dsn(id); dsn != nil && ro.Queue.State == queue.StateBounced {
			to := dsn.Recipients[0].Addr
			ro.Bounce = &bounceOutcome{Envelope: dsn, Queue: n.tracker.last(dsn.ID, to),
				Result: n.tracker.result(dsn.ID, to), Status: status[addr]}
		}
		out.Recipients = append(out.Recipients, ro)
	}
	return out, nil
}

// failures returns the failed sessions the TLS-RPT recorder counted for
// domain since start, sorted by result type.
func (n *node) failures(ctx context.Context, domain string, start time.Time) ([]tlsrpt.Failure, error) {
	days := []tlsrpt.Day{tlsrpt.DayOf(start)}
	if today := tlsrpt.DayOf(time.Now()); today != days[0] {
		days = append(days, today) // the demo ran over midnight UTC
	}
	var fs []tlsrpt.Failure
	for _, day := range days {
		counts, err := n.store.DayCounts(ctx, day, domain)
		if err != nil {
			return nil, fmt.Errorf("reading the TLS-RPT counts: %w", err)
		}
		for _, c := range counts {
			for f := range c.Failures {
				fs = append(fs, f)
			}
		}
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].ResultType < fs[j].ResultType })
	return fs, nil
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

// demoMessage is the content of the demo's i-th message.
func demoMessage(env *queue.Envelope, i int) []byte {
	var to []string
	for _, r := range env.Recipients {
		to = append(to, r.Addr)
	}
	subject, body := "sealpost demo", "Sent through the queue, over whatever TLS each domain demands.\r\n"
	if env.RequireTLS {
		subject = "sealpost demo, with REQUIRETLS"
		body = "Sent with REQUIRETLS: only over authenticated TLS, to hosts that promise the same onwards.\r\n"
	}
	return []byte("From: Alice <" + env.From + ">\r\n" +
		"To: " + strings.Join(to, ",\r\n ") + "\r\n" +
		"Subject: " + subject + "\r\n" +
		fmt.Sprintf("Message-ID: <demo.%d@%s>\r\n", i+1, sender) +
		"\r\n" + body)
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
