package delivery

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/sealpost/sealpost/internal/dnsname"
)

// ConfigError is a Config that cannot work as written: a value out of
// range, or parts that contradict each other or can never apply. Field
// names the field in Go syntax, e.g. `Policy.Domains["example.com"].NextHop`.
type ConfigError struct {
	Field string
	// Problem says what is wrong and, where it helps, what would be right.
	Problem string
}

func (e *ConfigError) Error() string {
	return "delivery: Config." + e.Field + ": " + e.Problem
}

// Validate reports every problem of cfg, each a *ConfigError, joined with
// errors.Join; nil means cfg is usable. NewClient calls it: a rule the
// operator wrote must never be silently dead.
func (cfg *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	if cfg.Hostname != "" && !validHostname(cfg.Hostname) && !validAddressLiteral(cfg.Hostname) {
		bad("Hostname", "%q is neither a host name nor an address literal", cfg.Hostname)
	}
	if cfg.MaxConnsPerHost < 0 {
		bad("MaxConnsPerHost", "%d is negative (zero means 10)", cfg.MaxConnsPerHost)
	}
	if cfg.MaxMessagesPerConn < 0 {
		bad("MaxMessagesPerConn", "%d is negative (zero means 100)", cfg.MaxMessagesPerConn)
	}
	checkSource(bad, "SourceIPv4", "SourceIPv6", cfg.SourceIPv4, cfg.SourceIPv6)
	cfg.Timeouts.validate(bad)
	cfg.Policy.validate(bad)
	return errors.Join(errs...)
}

// badFunc records one problem of a field.
type badFunc func(field, format string, args ...any)

func (t Timeouts) validate(bad badFunc) {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"Connect", int64(t.Connect)}, {"Greeting", int64(t.Greeting)}, {"Mail", int64(t.Mail)},
		{"Rcpt", int64(t.Rcpt)}, {"DataInit", int64(t.DataInit)}, {"DataBlock", int64(t.DataBlock)},
		{"DataTerm", int64(t.DataTerm)}, {"Command", int64(t.Command)}, {"TLSHandshake", int64(t.TLSHandshake)},
	} {
		if f.v < 0 {
			bad("Timeouts."+f.name, "negative (zero means the RFC 5321 §4.5.3.2 value)")
		}
	}
}

func checkSource(bad badFunc, f4, f6 string, v4, v6 netip.Addr) {
	if v4.IsValid() && !v4.Unmap().Is4() {
		bad(f4, "%s is not an IPv4 address", v4)
	}
	if v6.IsValid() && (!v6.Is6() || v6.Is4In6()) {
		bad(f6, "%s is not an IPv6 address", v6)
	}
}

func (p *LocalPolicy) validate(bad badFunc) {
	p.Default.validate(bad, "Policy.Default")
	for key, dp := range p.Domains {
		field := fmt.Sprintf("Policy.Domains[%q]", key)
		name := strings.TrimPrefix(key, ".")
		if c, err := dnsname.Canonical(name); err != nil || c != name {
			bad(field, "the key must be a lower-case domain name (A-labels) without a trailing dot, optionally with a leading dot for subdomains")
		}
		dp.validate(bad, field)
	}
}

func (dp DomainPolicy) validate(bad badFunc, field string) {
	if dp.NextHop != "" {
		if nh, err := parseNextHop(dp.NextHop); err != nil {
			var de *Error
			msg := err.Error()
			if errors.As(err, &de) {
				msg = de.Message
			}
			bad(field+".NextHop", "%s", msg)
		} else {
			dp.validateBesideHop(bad, field, nh)
		}
	}
	checkSource(bad, field+".SourceIPv4", field+".SourceIPv6", dp.SourceIPv4, dp.SourceIPv6)
	o := dp.Override
	switch {
	case (o.IgnoreDANE || o.IgnoreMTASTS) && o.Reason == "":
		bad(field+".Override.Reason", "empty: an override without a reason is never applied")
	case !o.IgnoreDANE && !o.IgnoreMTASTS && (o.Reason != "" || !o.Until.IsZero()):
		bad(field+".Override", "loosens nothing: set IgnoreDANE or IgnoreMTASTS, or remove it")
	}
}

// validateBesideHop refuses the rules that can never apply beside a next
// hop: the requirements apply to the connection to it (LocalPolicy.forHop),
// so one it cannot meet would defer every message, and an override would
// loosen a published policy that is not used.
func (dp DomainPolicy) validateBesideHop(bad badFunc, field string, nh nextHop) {
	if nh.literal.IsValid() {
		for _, r := range []struct {
			on   bool
			name string
		}{{dp.RequireAuthenticated, "RequireAuthenticated"}, {dp.DANEOnly, "DANEOnly"}} {
			if r.on {
				bad(field+"."+r.name, "can never be met: the next hop %s is an address, with no name to authenticate or look TLSA records up under; name the host in brackets, e.g. \"[smtp.example]:587\"", dp.NextHop)
			}
		}
	}
	if dp.Override.IgnoreDANE || dp.Override.IgnoreMTASTS {
		bad(field+".Override", "never applies beside a NextHop: the domain's own DANE and MTA-STS policies are not used when its mail goes to a next hop; write the override under the next hop's domain")
	}
}

// validHostname reports whether s is a host name in A-labels (an optional
// trailing dot and upper case allowed), as EHLO and the DNS want it:
// dnsname.Canonical's rule, with nothing left for it to convert.
func validHostname(s string) bool {
	c, err := dnsname.Canonical(s)
	return err == nil && c == dnsname.Fold(s)
}

// validAddressLiteral reports whether s is an RFC 5321 §4.1.3 address
// literal: "[192.0.2.1]" or "[IPv6:2001:db8::1]".
func validAddressLiteral(s string) bool {
	inner, ok := strings.CutPrefix(s, "[")
	if inner, ok = strings.CutSuffix(inner, "]"); !ok {
		return false
	}
	if v6, ok := strings.CutPrefix(inner, "IPv6:"); ok {
		a, err := netip.ParseAddr(v6)
		return err == nil && a.Is6() && !a.Is4In6()
	}
	a, err := netip.ParseAddr(inner)
	return err == nil && a.Is4()
}
