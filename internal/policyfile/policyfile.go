package policyfile

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/internal/dnsname"
	"github.com/sealpost/sealpost/sts"
)

// MaxSize bounds a policy file: a list of rules, not a database.
const MaxSize = 1 << 20

// file is the JSON form of a delivery.LocalPolicy. The scanner derives the
// format's shape from these structs and their json tags.
type file struct {
	Default *rules           `json:"default"`
	Domains map[string]rules `json:"domains"`
}

// rules is the JSON form of a delivery.DomainPolicy.
type rules struct {
	RequireTLS           bool       `json:"require_tls"`
	RequireAuthenticated bool       `json:"require_authenticated"`
	DANEOnly             bool       `json:"dane_only"`
	MTASTS               *preloaded `json:"mta_sts"`
	NextHop              string     `json:"next_hop"`
	SourceIPv4           string     `json:"source_ipv4"`
	SourceIPv6           string     `json:"source_ipv6"`
	Override             *override  `json:"override"`
}

// preloaded is an MTA-STS-style policy the operator preloads for a domain.
type preloaded struct {
	Mode string   `json:"mode"`
	MX   []string `json:"mx"`
}

// override is the JSON form of a delivery.Override.
type override struct {
	IgnoreDANE   bool   `json:"ignore_dane"`
	IgnoreMTASTS bool   `json:"ignore_mta_sts"`
	Reason       string `json:"reason"`
	Until        string `json:"until"`
}

// Read reads and parses the policy file at path. A file that cannot be
// read gives the *os.PathError; one that is invalid or over MaxSize an
// *Error naming path.
func Read(path string) (delivery.LocalPolicy, error) {
	f, err := os.Open(path)
	if err != nil {
		return delivery.LocalPolicy{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return delivery.LocalPolicy{}, err
	}
	if len(data) > MaxSize {
		return delivery.LocalPolicy{}, &Error{File: path, Reason: fmt.Sprintf("larger than %d bytes", MaxSize)}
	}
	lp, err := Parse(data)
	var e *Error
	if errors.As(err, &e) {
		e.File = path
	}
	return lp, err
}

// Parse parses a policy file (see the package documentation for the
// format). Every error is an *Error; the policy is the zero LocalPolicy
// then.
func Parse(data []byte) (delivery.LocalPolicy, error) {
	pos, err := scan(data)
	if err != nil {
		return delivery.LocalPolicy{}, err
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		// The scan accepted the file, so encoding/json should too.
		return delivery.LocalPolicy{}, at(data, pos, "", "not valid JSON: "+err.Error())
	}
	c := converter{data: data, pos: pos}
	lp, err := c.localPolicy(&f)
	if err != nil {
		return delivery.LocalPolicy{}, err
	}
	return lp, nil
}

// converter turns the decoded file into a delivery.LocalPolicy, locating
// each error with the scanner's positions.
type converter struct {
	data []byte
	pos  map[string]int64
}

func (c converter) errorf(path, format string, args ...any) *Error {
	return at(c.data, c.pos, path, fmt.Sprintf(format, args...))
}

func (c converter) localPolicy(f *file) (delivery.LocalPolicy, error) {
	var lp delivery.LocalPolicy
	if f.Default != nil {
		dp, err := c.domainPolicy("default", f.Default)
		if err != nil {
			return lp, err
		}
		lp.Default = dp
	}
	if len(f.Domains) > 0 {
		lp.Domains = make(map[string]delivery.DomainPolicy, len(f.Domains))
	}
	// In the file's order, so that of two faults the first is reported,
	// whatever order the map gives.
	keys := slices.SortedFunc(maps.Keys(f.Domains), func(a, b string) int {
		return cmp.Compare(c.pos[domainPath(a)], c.pos[domainPath(b)])
	})
	written := make(map[string]string, len(keys)) // normalised → as written
	for _, key := range keys {
		r := f.Domains[key]
		path := domainPath(key)
		name, err := domainKey(key)
		if err != nil {
			return lp, c.errorf(path, "%v", err)
		}
		if other, dup := written[name]; dup {
			return lp, c.errorf(path, "the same domain as %q: give each domain one key", other)
		}
		written[name] = key
		dp, err := c.domainPolicy(path, &r)
		if err != nil {
			return lp, err
		}
		lp.Domains[name] = dp
	}
	return lp, c.validate(lp, written)
}

// validate applies delivery's own check of a policy (Config.Validate, which
// NewClient runs), so that the file is refused for everything the client
// would refuse — a next hop that is no host, a requirement beside an
// address next hop that can never be met — located at the value at fault.
func (c converter) validate(lp delivery.LocalPolicy, written map[string]string) error {
	err := (&delivery.Config{Policy: lp}).Validate()
	var ce *delivery.ConfigError
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &ce):
		return c.errorf("", "%v", err)
	}
	return c.errorf(filePath(ce.Field, written), "%s", ce.Problem)
}

// filePath turns a delivery.Config field ("Policy.Domains[\"a.example\"].NextHop")
// into the path of the file's setting (`domains["A.example."].next_hop`);
// written maps a normalised domain to its key as the file writes it.
func filePath(field string, written map[string]string) string {
	field = strings.TrimPrefix(field, "Policy.")
	var out []string
	for field != "" {
		part := field
		end := -1
		if strings.HasPrefix(field, "[") {
			// A quoted map key, which may hold dots and brackets.
			if i := strings.Index(field, `"]`); i >= 0 {
				end = i + 2
			}
		} else if i := strings.IndexAny(field[1:], ".["); i >= 0 {
			end = i + 1
		}
		if end >= 0 && end < len(field) {
			part, field = field[:end], field[end:]
		} else {
			field = ""
		}
		part = strings.TrimPrefix(part, ".")
		switch {
		case part == "Domains":
			continue
		case strings.HasPrefix(part, "["):
			key, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(part, "["), "]"))
			if err != nil {
				return strings.Join(out, ".")
			}
			if w, ok := written[key]; ok {
				key = w
			}
			out = append(out, domainPath(key))
		default:
			out = append(out, fileFieldNames[part])
		}
	}
	return strings.Join(out, ".")
}

// fileFieldNames are the file's names of delivery.DomainPolicy's fields.
var fileFieldNames = map[string]string{
	"Default": "default", "RequireTLS": "require_tls", "RequireAuthenticated": "require_authenticated",
	"DANEOnly": "dane_only", "NextHop": "next_hop", "Preloaded": "mta_sts", "SourceIPv4": "source_ipv4",
	"SourceIPv6": "source_ipv6", "Override": "override", "Reason": "reason", "Until": "until",
}

func domainPath(key string) string { return fmt.Sprintf("domains[%q]", key) }

// domainPolicy converts the rules at path.
func (c converter) domainPolicy(path string, r *rules) (delivery.DomainPolicy, error) {
	dp := delivery.DomainPolicy{
		RequireTLS:           r.RequireTLS,
		RequireAuthenticated: r.RequireAuthenticated,
		DANEOnly:             r.DANEOnly,
		NextHop:              strings.TrimSpace(r.NextHop),
	}
	if r.MTASTS != nil {
		p, err := c.preloaded(path+".mta_sts", r.MTASTS)
		if err != nil {
			return dp, err
		}
		dp.Preloaded = p
	}
	var err error
	if dp.SourceIPv4, err = sourceAddr(r.SourceIPv4, true); err != nil {
		return dp, c.errorf(path+".source_ipv4", "%v", err)
	}
	if dp.SourceIPv6, err = sourceAddr(r.SourceIPv6, false); err != nil {
		return dp, c.errorf(path+".source_ipv6", "%v", err)
	}
	if r.Override != nil {
		if dp.Override, err = c.override(path+".override", r.Override); err != nil {
			return dp, err
		}
	}
	return dp, nil
}

// preloaded builds the preloaded policy through sts.ParsePolicy, so that
// the mx patterns are checked by the same rules (RFC 8461 §4.1) as a
// policy a domain publishes. max_age is ignored for preloaded policies.
func (c converter) preloaded(path string, p *preloaded) (*sts.Policy, error) {
	mode := sts.Mode(p.Mode)
	if mode != sts.ModeEnforce && mode != sts.ModeTesting {
		return nil, c.errorf(path+".mode", `%q: want "enforce" or "testing"`, p.Mode)
	}
	if len(p.MX) == 0 {
		return nil, c.errorf(path+".mx", "no mx patterns: a policy without them allows no host")
	}
	// Each pattern is checked on its own, so that the error names it:
	// ParsePolicy drops an invalid pattern (a published policy must not
	// fail for one typo), and an operator's own file is better told.
	var b strings.Builder
	fmt.Fprintf(&b, "version: STSv1\nmode: %s\nmax_age: %d\n", mode, int64(sts.MaxMaxAge/time.Second))
	for i, mx := range p.MX {
		if err := checkPattern(mx); err != nil {
			return nil, c.errorf(fmt.Sprintf("%s.mx[%d]", path, i), "%v", err)
		}
		fmt.Fprintf(&b, "mx: %s\n", mx)
	}
	pol, err := sts.ParsePolicy(b.String())
	if err != nil {
		return nil, c.errorf(path, "%v", err)
	}
	return pol, nil
}

// checkPattern checks one mx pattern by the rules of RFC 8461 §4.1, as
// sts.ParsePolicy applies them.
func checkPattern(mx string) error {
	if strings.ContainsAny(mx, "\r\n") {
		return fmt.Errorf("%q contains a line break", mx)
	}
	p, err := sts.ParsePolicy("version: STSv1\nmode: none\nmax_age: 0\nmx: " + mx + "\n")
	if err != nil || len(p.MX) != 1 {
		return fmt.Errorf(`%q is not a host name or "*." followed by a domain (RFC 8461 §4.1)`, mx)
	}
	return nil
}

// override converts the override at path.
func (c converter) override(path string, o *override) (delivery.Override, error) {
	out := delivery.Override{IgnoreDANE: o.IgnoreDANE, IgnoreMTASTS: o.IgnoreMTASTS, Reason: strings.TrimSpace(o.Reason)}
	if !o.IgnoreDANE && !o.IgnoreMTASTS {
		return out, c.errorf(path, "neither ignore_dane nor ignore_mta_sts is set: the override would do nothing")
	}
	// delivery ignores an override without a reason; a file that has one
	// is a mistake worth stopping for.
	if out.Reason == "" {
		return out, c.errorf(path+".reason", "required: say why the domain's policy is loosened")
	}
	if o.Until != "" {
		t, err := time.Parse(time.RFC3339, o.Until)
		if err != nil {
			return out, c.errorf(path+".until", "%q: want an RFC 3339 time such as 2025-07-01T00:00:00Z", o.Until)
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

// domainKey normalises a key of "domains" by dnsname's rule, as delivery
// compares it: an optional leading dot for subdomains, then a name whose
// U-labels are converted to A-labels (by IDNA's mapping, so U+212A KELVIN
// SIGN is "k" as IDNA reads it, not as strings.ToLower does), lower case,
// no trailing dot.
func domainKey(key string) (string, error) {
	key = strings.TrimSpace(key)
	sub := strings.HasPrefix(key, ".")
	name, err := dnsname.Canonical(strings.TrimPrefix(key, "."))
	if err != nil {
		return "", err
	}
	if sub {
		name = "." + name
	}
	return name, nil
}
