package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/smtpclient"
	"github.com/sealpost/sealpost/sts"
)

// Client delivers messages to their recipients' MX hosts. It is safe for
// concurrent use by many goroutines and meant to be shared: its caches and
// its pool of sessions are what make a burst of messages to one domain
// cost one TLS handshake.
type Client struct {
	cfg      Config
	hostname string
	resolver *dane.Resolver
	dane     *dane.Discovery
	sts      *sts.Client
	log      *slog.Logger
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)

	reports   reportPolicies
	daneMu    sync.RWMutex
	daneCache map[daneKey]daneEntry
	pool      *pool
}

// NewClient returns a Client configured by cfg (see Config for what its
// zero fields mean), or the problems Config.Validate finds in cfg. Close it
// to end its idle sessions.
func NewClient(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, hostname: cfg.Hostname, resolver: cfg.Resolver, dane: cfg.DANE, sts: cfg.MTASTS,
		log: cfg.Logger, dial: cfg.Dial, daneCache: make(map[daneKey]daneEntry)}
	if c.hostname == "" {
		c.hostname = "localhost"
		if h, err := os.Hostname(); err == nil && strings.Contains(h, ".") {
			c.hostname = h
		}
	}
	if c.resolver == nil {
		c.resolver = &dane.Resolver{}
	}
	if c.dane == nil {
		c.dane = &dane.Discovery{Resolver: c.resolver}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	// A resolver list that mixes trusted and untrusted servers asks only
	// the trusted ones (dane.Resolver.IgnoredServers): say so once, since
	// the operator may think the others are a fallback.
	for _, s := range c.resolver.IgnoredServers() {
		c.log.Warn("DNS resolver never asked", "server", s.Addr, "reason", s.Reason)
	}
	if c.sts == nil {
		c.sts = c.defaultSTS()
	}
	c.pool = newPool(cfg.MaxConnsPerHost, cfg.IdleTimeout, c.now)
	return c, nil
}

// Close closes the idle sessions kept for reuse (each with a QUIT, at
// most 5 seconds) and returns once they, and the sessions already being
// ended, are closed. Sessions in use close when their delivery ends;
// deliveries still running finish.
func (c *Client) Close() error {
	c.pool.close()
	return nil
}

func (c *Client) now() time.Time {
	if c.cfg.Now != nil {
		return c.cfg.Now()
	}
	return time.Now()
}

// Deliver makes one delivery attempt of msg to every recipient: the
// recipients are grouped by domain, each domain's MX hosts are tried in
// order (the package doc's "One attempt", steps 1 to 4), and the domains
// are delivered concurrently. It returns one Result per recipient, in the
// order of msg.Recipients.
//
// The error is not nil only for a Message that cannot be sent at all (no
// recipients, a negative Size, no Body for a non-empty message, a sender
// address that cannot be written into MAIL FROM); every other failure is
// in the Results, temporary or permanent. Recipient addresses that cannot
// be written into RCPT TO fail with 5.1.3 before anything is looked up.
func (c *Client) Deliver(ctx context.Context, msg *Message) ([]Result, error) {
	switch {
	case len(msg.Recipients) == 0:
		return nil, errors.New("delivery: message has no recipients")
	case msg.Size < 0:
		return nil, errors.New("delivery: message has a negative size")
	case msg.Body == nil && msg.Size > 0:
		return nil, errors.New("delivery: message has a size but no body")
	}
	if msg.From != "" {
		if err := smtpclient.CheckMailbox(msg.From); err != nil {
			return nil, fmt.Errorf("delivery: sender address %q cannot be sent: %w", msg.From, err)
		}
	}
	results := make([]Result, len(msg.Recipients))
	groups := make(map[string][]int)
	var order []string
	for i, r := range msg.Recipients {
		results[i].Recipient = r.Address
		// Checked before any look-up or connection: an address that
		// cannot be written into RCPT TO (angle brackets, spaces, CR or
		// LF) would otherwise fail only after DNS, TCP and TLS.
		if err := smtpclient.CheckMailbox(r.Address); err != nil {
			setFailure(&results[i], failure(550, codeBadMailbox, err, "recipient address %q cannot be sent", r.Address))
			continue
		}
		domain, ok := r.domain()
		if !ok {
			setFailure(&results[i], failure(550, codeBadMailbox, nil, "recipient address %q has no domain", r.Address))
			continue
		}
		if _, seen := groups[domain]; !seen {
			order = append(order, domain)
		}
		groups[domain] = append(groups[domain], i)
	}
	var wg sync.WaitGroup
	for _, domain := range order {
		idx := groups[domain]
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := newAttempt(c, msg, domain, idx, results)
			a.run(ctx)
		}()
	}
	wg.Wait()
	return results, nil
}

// setFailure fills r from a failure.
func setFailure(r *Result, de *Error) {
	r.Status = PermanentFailure
	if de.Temporary {
		r.Status = TemporaryFailure
	}
	r.Code, r.Enhanced, r.Text, r.Remote, r.Err = de.Code, de.Enhanced, de.Message, de.Remote, de
}
