package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"
	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/internal/policyfile"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/queue/boltstore"
	"github.com/sealpost/sealpost/sts"
	"github.com/sealpost/sealpost/tlsrpt"
)

// Relay is a submission server in front of a sealpost queue: it accepts
// mail from its users, stores it in one bbolt file, delivers it to the
// recipients' MX hosts and sends TLS-RPT reports about those deliveries.
type Relay struct {
	cfg    Config
	log    *slog.Logger
	policy delivery.LocalPolicy // from cfg.PolicyFile

	store    *boltstore.Store
	resolver *dane.Resolver
	mtasts   *sts.Client
	recorder *tlsrpt.Recorder
	client   *delivery.Client
	queue    *queue.Queue
	reporter *tlsrpt.Reporter // nil when reporting is disabled

	sub    *submission
	server *smtp.Server
	ln     net.Listener
	stop   context.CancelFunc // ends sub.ctx
}

// New builds a relay from cfg (defaults filled, checked) in env: it opens
// the store, wires the library together and listens on cfg.Listen. Run
// it; on error, everything it opened is closed.
func New(ctx context.Context, cfg Config, env *Env) (*Relay, error) {
	if cfg.Hostname == "" {
		name, err := env.fqdn()
		if err != nil {
			return nil, fmt.Errorf("no hostname configured and %v: set \"hostname\" or -hostname", err)
		}
		cfg.Hostname = name
	}
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	r := &Relay{cfg: cfg}
	var err error
	if r.log, err = env.logger(cfg.LogLevel); err != nil {
		return nil, err
	}
	if cfg.PolicyFile != "" {
		if r.policy, err = policyfile.Read(cfg.PolicyFile); err != nil {
			return nil, fmt.Errorf("policy_file: %w", err)
		}
		r.log.Info("relay: local policy read", "file", cfg.PolicyFile, "domains", len(r.policy.Domains))
	}
	if r.resolver, err = env.resolver(cfg.Resolver); err != nil {
		return nil, err
	}
	if r.store, err = boltstore.Open(cfg.Store, nil); err != nil {
		return nil, fmt.Errorf("opening the store: %w", err)
	}
	r.checkResolver(ctx)
	if err := r.wire(env); err != nil {
		r.close()
		return nil, err
	}
	if err := r.listen(env); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// checkResolver logs what the resolver health check found: a resolver
// that does not validate silently turns DANE off.
func (r *Relay) checkResolver(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hr, err := r.resolver.CheckHealth(ctx, r.cfg.DNSSECProbe)
	if err != nil {
		r.log.Error("relay: resolver configuration", "err", err)
		return
	}
	for _, p := range hr.Problems() {
		r.log.Warn("relay: " + p)
	}
	if !hr.DANEUsable() {
		r.log.Warn("relay: no validating resolver configured: DANE cannot be used")
	}
}

// wire builds the MTA-STS client (its cache in the store), the TLS-RPT
// recorder, the delivery client, the queue and the reporter.
//
// The reporter runs on its own (tlsrpt.Reporter.Run): it sends each day's
// reports, retries failed submissions within the day (RFC 8460 §5.5) and
// drops old counts.
func (r *Relay) wire(env *Env) error {
	cfg := r.cfg
	r.mtasts = &sts.Client{
		Resolver: r.resolver, DialContext: env.Dial, RootCAs: env.RootCAs, Now: env.Now,
		Logger: r.log,
		// The policy cache lives in the store file: a restart never
		// forgets a policy and reopens the trust-on-first-use window
		// (RFC 8461 §10.2).
		Store: r.store.PolicyCache(),
	}
	r.recorder = tlsrpt.NewRecorder(tlsrpt.RecorderConfig{Store: r.store, Now: env.Now, Logger: r.log})
	var err error
	r.client, err = delivery.NewClient(delivery.Config{
		Hostname: cfg.Hostname,
		Resolver: r.resolver,
		MTASTS:   r.mtasts,
		RootCAs:  env.RootCAs,
		Dial:     env.Dial,
		TLSRPT:   r.recorder,
		Policy:   r.policy,
		Logger:   r.log,
		Now:      env.Now,
	})
	if err != nil {
		return err
	}
	signers, keys, err := loadDKIM(cfg.DKIM)
	if err != nil {
		return err
	}
	r.queue, err = queue.New(queue.Config{
		Store:     r.store,
		Deliverer: r.client,
		Hostname:  cfg.Hostname,
		// Room for the Received field added on top of what the
		// submission server let in.
		MaxMessageSize: cfg.MaxMessageSize + traceRoom,
		DKIM:           signers,
		// A report address that bounces is left out for a while
		// (RFC 8460 §3); the reporter is built below, with the queue as
		// its mail sender.
		ReportBounced: func(ctx context.Context, address, reason string) error {
			if r.reporter == nil {
				return nil
			}
			return r.reporter.Bounced(ctx, address, reason)
		},
		Now:    env.Now,
		Logger: r.log,
	})
	if err != nil {
		return err
	}
	if cfg.TLSRPT.Disabled {
		return nil
	}
	signer, err := reportSigner(keys, cfg.TLSRPT.Contact, r.log)
	if err != nil {
		return err
	}
	rcfg := tlsrpt.Config{
		OrganizationName: cfg.TLSRPT.Organization,
		Submitter:        cfg.TLSRPT.Submitter,
		ContactInfo:      cfg.TLSRPT.Contact,
		Store:            r.store,
		Recorder:         r.recorder,
		Resolver:         r.resolver,
		HTTPClient:       env.httpClient(r.resolver),
		Now:              env.Now,
		Logger:           r.log,
	}
	if signer != nil {
		// The queue implements tlsrpt.MailSender: report mail is queued
		// as queue.KindReport, delivered without enforcing the recipient's
		// TLS policy and not recorded for TLS-RPT (RFC 8460 §3).
		rcfg.MailSender, rcfg.MailSigner = r.queue, signer
	}
	r.reporter, err = tlsrpt.NewReporter(rcfg)
	return err
}

// traceRoom is more than the Received field the relay adds can take.
const traceRoom = 4 << 10

// loadDKIM reads the signing keys: as queue signers, and as keys for the
// TLS-RPT signer.
func loadDKIM(cfgs []DKIMConfig) ([]queue.Signer, []tlsrpt.DKIMKey, error) {
	var signers []queue.Signer
	var keys []tlsrpt.DKIMKey
	for i, c := range cfgs {
		key, err := readSigningKey(c.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("dkim[%d]: %w", i, err)
		}
		s, err := queue.NewDKIMSigner(&dkim.SignOptions{Domain: c.Domain, Selector: c.Selector, Signer: key})
		if err != nil {
			return nil, nil, fmt.Errorf("dkim[%d]: %w", i, err)
		}
		signers = append(signers, s)
		keys = append(keys, tlsrpt.DKIMKey{Domain: c.Domain, Selector: c.Selector, Signer: key})
	}
	return signers, keys, nil
}

// listen opens the submission port and configures the SMTP server.
func (r *Relay) listen(env *Env) error {
	cfg := r.cfg
	subCtx, stop := context.WithCancel(context.Background())
	r.stop = stop
	r.sub = &submission{
		queue: r.queue, hostname: cfg.Hostname, maxRcpts: cfg.MaxRecipients,
		now: env.now, log: r.log, ctx: subCtx,
	}
	if len(cfg.Users) > 0 {
		r.sub.users = newUsers(cfg.Users)
	}
	s := smtp.NewServer(r.sub)
	s.Domain = cfg.Hostname
	s.MaxMessageBytes = cfg.MaxMessageSize
	s.MaxRecipients = cfg.MaxRecipients
	s.ReadTimeout = 5 * time.Minute // RFC 5321 §4.5.3.2.7: the server timeout
	s.WriteTimeout = time.Minute
	s.EnableSMTPUTF8 = true
	s.EnableREQUIRETLS = true // go-smtp offers it on TLS sessions only
	s.EnableDSN = true
	s.ErrorLog = slogPrinter{r.log}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("loading the TLS certificate: %w", err)
		}
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	host, _, _ := net.SplitHostPort(cfg.Listen)
	// Passwords in plaintext only on loopback, and only when there is no
	// TLS to use instead (check refuses the rest).
	s.AllowInsecureAuth = isLoopback(host) && s.TLSConfig == nil
	ln, err := env.listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening for submissions: %w", err)
	}
	r.server, r.ln = s, ln
	return nil
}

// Addr returns the address the submission server listens on.
func (r *Relay) Addr() net.Addr { return r.ln.Addr() }

// Run serves submissions, delivers the queue and sends the daily TLS-RPT
// reports until ctx is done, then shuts down in order: it stops accepting
// connections and lets open submissions finish, stops the reporter, lets
// the deliveries under way finish and stores their results, writes the
// last TLS-RPT counts and closes the store. Each wait is bounded by
// ShutdownTimeout. It returns nil after a clean shutdown.
func (r *Relay) Run(ctx context.Context) error {
	r.log.Info("relay: accepting submissions", "addr", r.Addr().String(), "hostname", r.cfg.Hostname, "store", r.cfg.Store)
	var bg, rec, q sync.WaitGroup
	bgCtx, bgStop := context.WithCancel(context.WithoutCancel(ctx))
	recCtx, recStop := context.WithCancel(context.WithoutCancel(ctx))
	// The queue is stopped by Shutdown, which lets deliveries finish;
	// cancelling its context would cut them short.
	qCtx, qStop := context.WithCancel(context.WithoutCancel(ctx))
	defer qStop()
	failed := make(chan error, 2)
	goRun(&bg, func() {
		if err := r.server.Serve(r.ln); err != nil {
			failed <- fmt.Errorf("submission server: %w", err)
		}
	})
	goRun(&q, func() {
		if err := r.queue.Run(qCtx); err != nil && !errors.Is(err, context.Canceled) {
			failed <- fmt.Errorf("queue: %w", err)
		}
	})
	goRun(&rec, func() { _ = r.recorder.Run(recCtx) })
	goRun(&bg, func() { _ = r.mtasts.Run(bgCtx) })
	if r.reporter != nil {
		goRun(&bg, func() { _ = r.reporter.Run(bgCtx) })
	}

	var runErr error
	select {
	case <-ctx.Done():
		r.log.Info("relay: shutting down")
	case runErr = <-failed:
		r.log.Error("relay: stopping", "err", runErr)
	}
	grace := time.Duration(r.cfg.ShutdownTimeout)
	r.stopServer(grace)
	bgStop()
	bg.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	if err := r.queue.Shutdown(sctx); err != nil {
		r.log.Warn("relay: deliveries cut short by the shutdown timeout; they stay queued", "err", err)
	}
	cancel()
	qStop()
	q.Wait()
	recStop() // the recorder writes its last counts before returning
	rec.Wait()
	if err := r.close(); err != nil && runErr == nil {
		runErr = err
	}
	r.log.Info("relay: stopped")
	return runErr
}

// stopServer closes the listener and waits up to grace for open
// submissions to end; then it closes what is left.
func (r *Relay) stopServer(grace time.Duration) {
	r.stop() // new EHLOs get 421
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := r.server.Shutdown(ctx); err != nil {
		r.log.Warn("relay: closing submissions still open after the shutdown timeout", "err", err)
		r.server.Close()
	}
}

// close closes the delivery client and the store. It is safe on a
// half-built relay.
func (r *Relay) close() error {
	if r.stop != nil {
		r.stop()
	}
	if r.client != nil {
		r.client.Close()
	}
	if r.store != nil {
		if err := r.store.Close(); err != nil {
			return fmt.Errorf("closing the store: %w", err)
		}
	}
	return nil
}

func goRun(wg *sync.WaitGroup, f func()) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		f()
	}()
}

// slogPrinter passes go-smtp's error log to slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	p.log.Warn("relay: smtp server: " + fmt.Sprintf(format, v...))
}

func (p slogPrinter) Println(v ...any) {
	p.log.Warn("relay: smtp server: " + fmt.Sprint(v...))
}
