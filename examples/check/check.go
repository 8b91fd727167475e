package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/dnsname"
)

// Check examines the set-up of domain (an A-label, lower-case, without a
// trailing dot: see normalizeDomain) as senders see it, and returns the
// findings in report order. It never fails: whatever cannot be checked is a
// finding too.
func Check(ctx context.Context, env *Env, domain string) *Report {
	rep := &Report{Domain: domain, Checked: env.now().UTC().Format(time.RFC3339)}
	defer sortFindings(rep)
	validating, ok := checkResolver(ctx, env, rep)
	if !ok {
		return rep
	}
	set := checkMX(ctx, env, domain, rep)
	if set == nil || set.NullMX {
		// Nowhere to deliver to: no connection to secure, and no report
		// anyone would send.
		return rep
	}
	pol := checkSTS(ctx, env, domain, set, rep)
	reqs := checkDANE(ctx, env, set, validating, rep)
	checkHosts(ctx, env, set, pol, reqs, rep)
	checkTLSRPT(ctx, env, domain, rep)
	checkSPF(ctx, env, domain, rep)
	return rep
}

// checkResolver asks the resolver whether it answers and validates DNSSEC
// (dane.Resolver.CheckHealth). ok is false when it cannot answer at all,
// which ends the check; validating says whether DNSSEC status can be
// believed.
func checkResolver(ctx context.Context, env *Env, rep *Report) (validating, ok bool) {
	lctx, cancel := context.WithTimeout(ctx, env.timeout())
	defer cancel()
	health, err := env.resolver().CheckHealth(lctx, "")
	if err != nil {
		rep.add(AreaResolver, "", Error, "no DNS resolver: "+err.Error(), "name one with -resolver")
		return false, false
	}
	answering := false
	for _, s := range health.Servers {
		answering = answering || s.Answers
	}
	if !answering {
		for _, s := range health.Servers {
			rep.add(AreaResolver, s.Server, Error, fmt.Sprintf("does not answer: %v", s.Err), "name a resolver that answers with -resolver")
		}
		return false, false
	}
	for _, p := range health.Problems() {
		rep.add(AreaResolver, "", Warning, p, "use -resolver with a validating resolver you trust (e.g. unbound on this host)")
	}
	validating = health.DANEUsable()
	if validating {
		var names []string
		for _, s := range health.Servers {
			if s.Trusted && s.Validates {
				names = append(names, s.Server)
			}
		}
		rep.add(AreaResolver, strings.Join(names, ", "), OK, "validates DNSSEC", "")
	}
	return validating, true
}

// sortFindings orders the findings by area, keeping the order within one.
func sortFindings(rep *Report) {
	slices.SortStableFunc(rep.Findings, func(a, b Finding) int {
		return slices.Index(areaOrder, a.Area) - slices.Index(areaOrder, b.Area)
	})
}

// normalizeDomain turns what a user typed into the form the DNS knows,
// by the project's one rule for names (internal/dnsname): lower-case
// A-labels without a trailing dot; an internationalised name may be typed
// in U-labels. A name that breaks the rule is a usage error rather than a
// page of "does not exist" findings.
func normalizeDomain(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", fmt.Errorf("no domain given")
	case isAddress(strings.Trim(s, "[]")):
		return "", fmt.Errorf("%q is an address; give a domain name", s)
	}
	return dnsname.Canonical(s)
}
