package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
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

// normalizeDomain turns what a user typed into the form the DNS knows:
// lower-case, without a trailing dot. It checks the RFC 1035 §2.3.1
// syntax (letters, digits, hyphens; underscores tolerated) so that a typo
// is a usage error rather than a page of "does not exist" findings.
// Internationalised names must be given as A-labels ("xn--...").
func normalizeDomain(s string) (string, error) {
	s = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
	switch {
	case s == "":
		return "", fmt.Errorf("no domain given")
	case isAddress(strings.Trim(s, "[]")):
		return "", fmt.Errorf("%q is an address; give a domain name", s)
	case len(s) > 253:
		return "", fmt.Errorf("%q is longer than the 253 characters a domain name may have", s)
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", fmt.Errorf("%q is not a domain name: label %q", s, label)
		}
		for _, c := range []byte(label) {
			if c >= 0x80 {
				return "", fmt.Errorf("%q is not ASCII: give the A-label form (xn--...) of an internationalised name", s)
			}
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("%q is not a domain name: %q in label %q", s, c, label)
			}
		}
	}
	return s, nil
}
