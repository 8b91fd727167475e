package dane

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Health is what CheckHealth found out about one configured resolver.
type Health struct {
	Server string // the resolver's address
	// Trusted: the configuration believes this resolver's AD bit.
	Trusted bool
	// Answers: it answered the probe over UDP (or over TCP after a
	// truncated UDP answer).
	Answers bool
	// Reached: it sent a response, perhaps one refusing the probe (a
	// split-horizon resolver that does not serve the root zone answers
	// REFUSED); false means a timeout or a network error.
	Reached bool
	// Validates: the probe, a DNSSEC-signed name, came back with the AD bit.
	Validates bool
	// RRSIGs: the answer carried the probe's RRSIG records, as it must when
	// the query sets the DO bit.
	RRSIGs bool
	// TCP: the probe was answered over TCP, which large DNSSEC answers need.
	TCP bool
	// Err says why the first failed step failed.
	Err error
}

// HealthReport is the outcome of CheckHealth, one entry per resolver.
type HealthReport struct {
	Probe   string
	Servers []Health // the resolvers asked
	// Ignored are the configured resolvers never asked because a trusted
	// one is configured beside them (Resolver.IgnoredServers).
	Ignored []IgnoredServer
}

// DANEUsable reports whether at least one resolver is trusted, answers and
// validates: without one, every answer is insecure and DANE never applies.
func (h HealthReport) DANEUsable() bool {
	for _, s := range h.Servers {
		if s.Trusted && s.Answers && s.Validates {
			return true
		}
	}
	return false
}

// Problems describes, one sentence each, what is wrong and what it costs;
// it is empty for a healthy configuration.
func (h HealthReport) Problems() []string {
	var out []string
	for _, s := range h.Ignored {
		out = append(out, fmt.Sprintf("resolver %s is never asked: %s", s.Addr, s.Reason))
	}
	for _, s := range h.Servers {
		switch {
		case !s.Answers && s.Reached:
			out = append(out, fmt.Sprintf("resolver %s answers, but not the DNSSEC probe %q (%v): whether it validates is unknown; probe a signed name it serves", s.Server, h.Probe, s.Err))
			continue
		case !s.Answers:
			out = append(out, fmt.Sprintf("resolver %s does not answer (%v): mail waits while it is asked", s.Server, s.Err))
			continue
		case !s.Validates:
			out = append(out, fmt.Sprintf("resolver %s does not validate DNSSEC (no AD bit for the signed name %q): DANE cannot be used and signed domains look unsigned", s.Server, h.Probe))
		case !s.Trusted:
			out = append(out, fmt.Sprintf("resolver %s validates, but the configuration does not trust its AD bit (only loopback resolvers are trusted by default): DANE cannot be used; run a validating resolver on loopback, or set Trust for a protected path", s.Server))
		}
		if s.Validates && !s.RRSIGs {
			out = append(out, fmt.Sprintf("resolver %s strips RRSIG records: it cannot be checked independently", s.Server))
		}
		if !s.TCP {
			out = append(out, fmt.Sprintf("resolver %s does not answer over TCP: answers larger than %d bytes (many signed TLSA and MX sets) will fail", s.Server, defaultUDPSize))
		}
	}
	if len(h.Servers) > 0 && !h.DANEUsable() && len(out) == 0 {
		out = append(out, "no trusted validating resolver: DANE cannot be used")
	}
	return out
}

// CheckHealth asks every resolver that is asked (see IgnoredServers) about probe, a name that is
// known to be DNSSEC-signed ("" means the root zone, which always is), over
// UDP and over TCP, bypassing the cache. Run it at start-up and expose it:
// a resolver that does not validate silently disables DANE, one that
// cannot answer blocks mail to every domain.
func (r *Resolver) CheckHealth(ctx context.Context, probe string) (HealthReport, error) {
	if err := r.init(); err != nil {
		return HealthReport{}, err
	}
	if probe == "" {
		probe = "."
	}
	probe = dns.Fqdn(strings.ToLower(probe))
	report := HealthReport{Probe: probe, Ignored: slices.Clone(r.ignored)}
	for _, srv := range r.servers {
		h := Health{Server: srv.addr, Trusted: srv.trusted}
		if msg, err := r.probe(ctx, srv, probe, "udp"); err != nil {
			h.Err = err
			h.Reached = msg != nil
		} else {
			h.Reached = true
			h.Answers = true
			h.Validates = msg.AuthenticatedData
			h.RRSIGs = coversType(msg.Answer, dns.TypeSOA)
		}
		if msg, err := r.probe(ctx, srv, probe, "tcp"); err == nil || msg != nil {
			h.TCP = true
		} else if h.Err == nil {
			h.Err = fmt.Errorf("over TCP: %w", err)
		}
		report.Servers = append(report.Servers, h)
	}
	return report, nil
}

// probe asks one resolver for the SOA of probe over network; an answer
// other than NOERROR is a failure, returned with the response.
func (r *Resolver) probe(ctx context.Context, srv resolvedServer, probe, network string) (*dns.Msg, error) {
	msg, err := r.exchangeOne(ctx, srv, probe, dns.TypeSOA, network)
	if err == nil && msg.Rcode != dns.RcodeSuccess {
		return msg, fmt.Errorf("rcode %s for the probe %s", dns.RcodeToString[msg.Rcode], probe)
	}
	return msg, err
}

func coversType(rrs []dns.RR, t uint16) bool {
	for _, rr := range rrs {
		if sig, ok := rr.(*dns.RRSIG); ok && sig.TypeCovered == t {
			return true
		}
	}
	return false
}
