package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/sts"
	"github.com/sealpost/sealpost/tlsrpt"
)

// cacheLimit bounds each of the Client's small caches; a full cache is
// emptied and refilled, which costs look-ups, never correctness.
const cacheLimit = 10000

// maxDANECache bounds how long a DANE decision is reused, whatever the
// records' TTL: a changed TLSA RRset is noticed within this time even when
// the resolver's cache is flushed.
const maxDANECache = 5 * time.Minute

type daneKey struct {
	domain, host string
	port         uint16
	mxSecure     bool
}

type daneEntry struct {
	req     *dane.Requirement
	report  tlsrpt.Policy
	expires time.Time
}

// daneRequirement returns the DANE requirement of host on port and the
// TLS-RPT policy its sessions are recorded under, from the cache while the
// TLSA answers' TTL lasts. Failed look-ups are not cached here (the
// resolver remembers them briefly).
func (c *Client) daneRequirement(ctx context.Context, domain, host string, port uint16, mxSecure bool) (*dane.Requirement, tlsrpt.Policy, error) {
	key := daneKey{domain, host, port, mxSecure}
	now := c.now()
	c.daneMu.RLock()
	e, ok := c.daneCache[key]
	c.daneMu.RUnlock()
	if ok && now.Before(e.expires) {
		return e.req, e.report, nil
	}
	req, err := c.dane.LookupPort(ctx, host, port, mxSecure)
	if err != nil {
		return nil, tlsrpt.Policy{}, err
	}
	e = daneEntry{req: req, expires: now.Add(min(time.Duration(req.TTL)*time.Second, maxDANECache))}
	if req.Outcome != dane.NotApplicable {
		e.report = c.reports.tlsa(domain, host, req)
	}
	if req.TTL > 0 {
		c.daneMu.Lock()
		if len(c.daneCache) >= cacheLimit {
			clear(c.daneCache)
		}
		c.daneCache[key] = e
		c.daneMu.Unlock()
	}
	return req, e.report, nil
}

// daneCachedUntil reports until when the DANE decision for host on port
// is cached, or false when the next one makes a look-up.
func (c *Client) daneCachedUntil(domain, host string, port uint16, mxSecure bool) (time.Time, bool) {
	c.daneMu.RLock()
	e, ok := c.daneCache[daneKey{domain, host, port, mxSecure}]
	c.daneMu.RUnlock()
	if !ok || !c.now().Before(e.expires) {
		return time.Time{}, false
	}
	return e.expires, true
}

// reportPolicies builds TLS-RPT policies once per distinct policy, so that
// recording a session stays cheap (tlsrpt.NewPolicy computes an ID).
type reportPolicies struct {
	mu sync.RWMutex
	m  map[reportKey]tlsrpt.Policy
}

type reportKey struct {
	domain string
	sts    *sts.Policy // the domain's MTA-STS policy; nil for no-policy-found
	failed bool        // an "sts" policy that could not be obtained
}

func (r *reportPolicies) get(key reportKey, build func() tlsrpt.Policy) tlsrpt.Policy {
	r.mu.RLock()
	p, ok := r.m[key]
	r.mu.RUnlock()
	if ok {
		return p
	}
	p = build()
	r.mu.Lock()
	if r.m == nil || len(r.m) >= cacheLimit {
		r.m = make(map[reportKey]tlsrpt.Policy)
	}
	r.m[key] = p
	r.mu.Unlock()
	return p
}

// noPolicy is the "no-policy-found" policy of domain (RFC 8460 §4.4).
func (r *reportPolicies) noPolicy(domain string) tlsrpt.Policy {
	return r.get(reportKey{domain: domain}, func() tlsrpt.Policy {
		return tlsrpt.NewPolicy(tlsrpt.PolicyTypeNoPolicyFound, domain, nil, nil)
	})
}

// sts is the "sts" policy of domain: its policy lines and mx patterns
// (RFC 8460 §4.4), or, for a policy that could not be obtained, none.
func (r *reportPolicies) sts(domain string, p *sts.Policy) tlsrpt.Policy {
	return r.get(reportKey{domain: domain, sts: p, failed: p == nil}, func() tlsrpt.Policy {
		if p == nil {
			return tlsrpt.NewPolicy(tlsrpt.PolicyTypeSTS, domain, nil, nil)
		}
		return tlsrpt.NewPolicy(tlsrpt.PolicyTypeSTS, domain, p.PolicyString, p.MX)
	})
}

// tlsa is the "tlsa" policy of host: its TLSA records in presentation
// format and the host as mx-host (RFC 8460 §4.4). req nil stands for
// records that could not be obtained. It is not cached here: the DANE
// cache keeps it with the requirement.
func (r *reportPolicies) tlsa(domain, host string, req *dane.Requirement) tlsrpt.Policy {
	var records []string
	if req != nil {
		records = req.PolicyStrings()
	}
	return tlsrpt.NewPolicy(tlsrpt.PolicyTypeTLSA, domain, records, []string{host})
}
