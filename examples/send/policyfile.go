package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/sts"
)

// maxPolicyFileSize bounds the policy file: a list of rules, not a
// database.
const maxPolicyFileSize = 1 << 20

// policyFile is the JSON form of a delivery.LocalPolicy (see the package
// documentation for the format).
type policyFile struct {
	Default *domainRules           `json:"default"`
	Domains map[string]domainRules `json:"domains"`
}

// domainRules is the JSON form of a delivery.DomainPolicy.
type domainRules struct {
	RequireTLS           bool           `json:"require_tls"`
	RequireAuthenticated bool           `json:"require_authenticated"`
	DANEOnly             bool           `json:"dane_only"`
	MTASTS               *preloaded     `json:"mta_sts"`
	NextHop              string         `json:"next_hop"`
	SourceIPv4           string         `json:"source_ipv4"`
	SourceIPv6           string         `json:"source_ipv6"`
	Override             *overrideRules `json:"override"`
}

// preloaded is an MTA-STS-style policy the operator preloads for a domain.
type preloaded struct {
	Mode string   `json:"mode"`
	MX   []string `json:"mx"`
}

type overrideRules struct {
	IgnoreDANE   bool   `json:"ignore_dane"`
	IgnoreMTASTS bool   `json:"ignore_mta_sts"`
	Reason       string `json:"reason"`
	Until        string `json:"until"`
}

// PolicyError says what is wrong in a policy file, and where.
type PolicyError struct {
	// Where is the part of the file at fault: `domains["example.com"].mta_sts`.
	Where string
	// Reason says what was expected and what was found.
	Reason string
}

func (e *PolicyError) Error() string {
	if e.Where == "" {
		return "policy file: " + e.Reason
	}
	return fmt.Sprintf("policy file: %s: %s", e.Where, e.Reason)
}

// readPolicyFile reads and parses the policy file at path.
func readPolicyFile(path string) (delivery.LocalPolicy, error) {
	f, err := os.Open(path)
	if err != nil {
		return delivery.LocalPolicy{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyFileSize+1))
	if err != nil {
		return delivery.LocalPolicy{}, err
	}
	if len(data) > maxPolicyFileSize {
		return delivery.LocalPolicy{}, &PolicyError{Reason: fmt.Sprintf("larger than %d bytes", maxPolicyFileSize)}
	}
	return parsePolicy(data)
}

// parsePolicy parses a policy file. It is strict: unknown fields, trailing
// data, invalid names and patterns are errors, since a rule silently
// dropped is a requirement silently relaxed.
func parsePolicy(data []byte) (delivery.LocalPolicy, error) {
	var pf policyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pf); err != nil {
		return delivery.LocalPolicy{}, &PolicyError{Reason: "not valid JSON of the expected shape: " + err.Error()}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return delivery.LocalPolicy{}, &PolicyError{Reason: "unexpected data after the JSON object"}
	}
	var lp delivery.LocalPolicy
	if pf.Default != nil {
		dp, err := pf.Default.domainPolicy("default")
		if err != nil {
			return delivery.LocalPolicy{}, err
		}
		lp.Default = dp
	}
	if len(pf.Domains) > 0 {
		lp.Domains = make(map[string]delivery.DomainPolicy, len(pf.Domains))
	}
	for key, rules := range pf.Domains {
		where := fmt.Sprintf("domains[%q]", key)
		name, err := policyDomainKey(key)
		if err != nil {
			return delivery.LocalPolicy{}, &PolicyError{Where: where, Reason: err.Error()}
		}
		if _, dup := lp.Domains[name]; dup {
			return delivery.LocalPolicy{}, &PolicyError{Where: where, Reason: fmt.Sprintf("the same domain as another key (%q)", name)}
		}
		dp, err := rules.domainPolicy(where)
		if err != nil {
			return delivery.LocalPolicy{}, err
		}
		lp.Domains[name] = dp
	}
	return lp, nil
}

// domainPolicy converts the rules of one key.
func (r *domainRules) domainPolicy(where string) (delivery.DomainPolicy, error) {
	dp := delivery.DomainPolicy{
		RequireTLS:           r.RequireTLS,
		RequireAuthenticated: r.RequireAuthenticated,
		DANEOnly:             r.DANEOnly,
		NextHop:              strings.TrimSpace(r.NextHop),
	}
	if r.MTASTS != nil {
		p, err := r.MTASTS.policy()
		if err != nil {
			return dp, &PolicyError{Where: where + ".mta_sts", Reason: err.Error()}
		}
		dp.Preloaded = p
	}
	var err error
	if dp.SourceIPv4, err = sourceAddr(r.SourceIPv4, true); err != nil {
		return dp, &PolicyError{Where: where + ".source_ipv4", Reason: err.Error()}
	}
	if dp.SourceIPv6, err = sourceAddr(r.SourceIPv6, false); err != nil {
		return dp, &PolicyError{Where: where + ".source_ipv6", Reason: err.Error()}
	}
	if r.Override != nil {
		o, err := r.Override.override()
		if err != nil {
			return dp, &PolicyError{Where: where + ".override", Reason: err.Error()}
		}
		dp.Override = o
	}
	return dp, nil
}

// policy builds the preloaded policy through sts.ParsePolicy, so that the
// mx patterns are checked by the same rules (RFC 8461 §4.1) as a policy a
// domain publishes. max_age is ignored for preloaded policies.
func (p *preloaded) policy() (*sts.Policy, error) {
	mode := sts.Mode(p.Mode)
	if mode != sts.ModeEnforce && mode != sts.ModeTesting {
		return nil, fmt.Errorf(`mode %q: want "enforce" or "testing"`, p.Mode)
	}
	if len(p.MX) == 0 {
		return nil, errors.New("no mx patterns: a policy without them allows no host")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "version: STSv1\nmode: %s\nmax_age: %d\n", mode, int64(sts.MaxMaxAge/time.Second))
	for _, mx := range p.MX {
		if strings.ContainsAny(mx, "\r\n") {
			return nil, fmt.Errorf("mx %q: contains a line break", mx)
		}
		fmt.Fprintf(&b, "mx: %s\n", mx)
	}
	pol, err := sts.ParsePolicy(b.String())
	if err != nil {
		return nil, err
	}
	// ParsePolicy drops invalid patterns (a published policy must not fail
	// for one typo); an operator's own file is better told.
	if len(pol.MX) != len(p.MX) {
		for _, mx := range p.MX {
			if !containsFold(pol.MX, strings.TrimSuffix(mx, ".")) {
				return nil, fmt.Errorf("mx %q: not a host name or \"*.\" followed by a domain (RFC 8461 §4.1)", mx)
			}
		}
	}
	return pol, nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func (o *overrideRules) override() (delivery.Override, error) {
	out := delivery.Override{IgnoreDANE: o.IgnoreDANE, IgnoreMTASTS: o.IgnoreMTASTS, Reason: strings.TrimSpace(o.Reason)}
	if !o.IgnoreDANE && !o.IgnoreMTASTS {
		return out, errors.New("neither ignore_dane nor ignore_mta_sts is set: the override would do nothing")
	}
	// The library ignores an override without a reason; a file that has
	// one without a reason is a mistake worth stopping for.
	if out.Reason == "" {
		return out, errors.New("reason is required: say why the domain's policy is loosened")
	}
	if o.Until != "" {
		t, err := time.Parse(time.RFC3339, o.Until)
		if err != nil {
			return out, fmt.Errorf("until %q: want an RFC 3339 time such as 2025-07-01T00:00:00Z", o.Until)
		}
		out.Until = t
	}
	return out, nil
}

// sourceAddr parses a source address of the given family; "" is none.
func sourceAddr(s string, v4 bool) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	if a.Unmap().Is4() != v4 {
		want := "IPv6"
		if v4 {
			want = "IPv4"
		}
		return netip.Addr{}, fmt.Errorf("%s is not an %s address", a, want)
	}
	return a.Unmap(), nil
}

// policyDomainKey normalises a key of "domains": lower case, no trailing
// dot, an optional leading dot for subdomains, ASCII labels (A-labels for
// internationalised names, which delivery compares against).
func policyDomainKey(key string) (string, error) {
	name := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(key)), ".")
	if err := checkDomain(strings.TrimPrefix(name, ".")); err != nil {
		return "", err
	}
	return name, nil
}

// checkDomain accepts a domain name of ASCII letter-digit-hyphen labels
// (RFC 1035 §2.3.1, with leading digits as RFC 1123 §2.1 allows).
func checkDomain(name string) error {
	switch {
	case name == "":
		return errors.New("empty domain name")
	case len(name) > 253:
		return fmt.Errorf("domain name of %d bytes: at most 253", len(name))
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q: labels must be 1 to 63 characters", name)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q: a label may not start or end with a hyphen", name)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				if c >= 0x80 {
					return fmt.Errorf("%q: internationalised names must be written as A-labels (xn--...)", name)
				}
				return fmt.Errorf("%q: character %q is not allowed in a host name", name, c)
			}
		}
	}
	return nil
}
