package delivery

import (
	"context"
	"errors"
	"log/slog"

	"github.com/sealpost/sealpost/sts"
)

// lookupSTS finds the MTA-STS policy that applies to domain for this
// attempt: the domain's own in enforce or testing mode; else the
// operator's preloaded policy; else none. A failed look-up that leaves no
// policy is kept, to be reported with the sessions that go ahead without
// one (RFC 8461 §5: without a valid policy, deliver as without MTA-STS).
func (c *Client) lookupSTS(ctx context.Context, domain string, local DomainPolicy) *stsState {
	st := &stsState{}
	p, source, err := c.stsLookup(ctx, domain)
	switch {
	case err == nil && p != nil && p.Mode != sts.ModeNone:
		st.policy, st.source = p, source
		st.report = c.reports.sts(domain, p)
		return st
	case err != nil && !errors.Is(err, sts.ErrNoRecord) && !errors.Is(err, sts.ErrInvalidDomain):
		st.err = err
		st.report = c.reports.sts(domain, nil)
		c.log.Info("delivery: MTA-STS policy not available", slog.String("domain", domain), slog.String("error", err.Error()))
	}
	if local.Preloaded != nil {
		// Issue 6: the preloaded policy protects the first contact, and any
		// contact while the domain publishes nothing usable.
		st.policy, st.preloaded, st.source = local.Preloaded, true, "preloaded by the operator"
		st.report = c.reports.noPolicy(domain)
	}
	return st
}

// defaultSTS is the MTA-STS client of a Config that names none.
func (c *Client) defaultSTS() *sts.Client {
	return &sts.Client{RootCAs: c.cfg.RootCAs, Now: c.cfg.Now}
}

// stsLookup asks the sts package for domain's policy. WIRING PENDING: the
// sts look-up API has not landed yet.
func (c *Client) stsLookup(ctx context.Context, domain string) (*sts.Policy, string, error) {
	return nil, "", sts.ErrNoRecord
}

// refetchSTS asks the sts package to fetch domain's policy again. WIRING
// PENDING with stsLookup.
func (c *Client) refetchSTS(domain string) {}
