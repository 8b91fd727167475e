package sts

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sealpost/sealpost/internal/txtfield"
)

// MaxPolicySize is the largest policy accepted, in bytes. RFC 8461 §3.2
// leaves the limit to senders; 64 KiB is far above any real policy.
const MaxPolicySize = 64 << 10

// MaxMaxAge is the largest max_age a policy may have (RFC 8461 §3.2:
// "MUST be less than or equal to 31557600", about one year).
const MaxMaxAge = 31557600 * time.Second

// Mode is a policy's mode (RFC 8461 §5).
type Mode string

// The three modes of RFC 8461 §3.2.
const (
	// ModeEnforce: an MX host that fails the policy must not be used.
	ModeEnforce Mode = "enforce"
	// ModeTesting: failures are reported (TLS-RPT) but not enforced.
	ModeTesting Mode = "testing"
	// ModeNone: the domain has no active policy; senders apply none.
	ModeNone Mode = "none"
)

// Policy is a parsed MTA-STS policy (RFC 8461 §3.2). A Policy returned by
// this package is shared and must not be modified.
type Policy struct {
	// Mode is enforce, testing or none.
	Mode Mode
	// MX holds the valid mx patterns in order, lower-case, without a
	// trailing dot: host names, or "*." and a domain. Values that are
	// not such patterns are left out (and never match anything).
	MX []string
	// MaxAge is how long the policy may be cached after it was fetched.
	MaxAge time.Duration
	// PolicyString holds the policy's lines, without their CRLF or LF
	// line ends, as RFC 8460 §4.3 wants them in a report's policy-string.
	PolicyString []string
	// Deviations says, line by line, what the policy writes outside RFC
	// 8461 §3.2 that ParsePolicy read anyway because its intent is clear
	// (a comment line, text after an mx pattern), so that a checker can
	// tell the domain's owner. Empty for a policy that follows the RFC.
	Deviations []string
}

// ParsePolicy parses the text of an MTA-STS policy (RFC 8461 §3.2).
//
// Lines end in LF or CRLF; each is "key: value", with optional spaces or
// tabs around the key, the colon and the value; blank lines are ignored.
// version (STSv1), mode (enforce, testing, none) and max_age (at most
// 31557600 seconds) are required; when one is repeated, the first counts
// (RFC 8461 §3.2, last paragraph). Keys are case-sensitive. mx may appear
// any number of times; a value that is not a valid pattern is ignored, and
// a policy in enforce or testing mode without any valid mx pattern is
// invalid. Unknown keys are ignored, but every line must still be a
// well-formed "key: value" line of printable UTF-8.
//
// Chosen tolerances, where rejecting the policy would lose the domain's
// protection over a cosmetic flaw whose intent is clear (each is named in
// Deviations): a line whose first character other than white space is
// "#" is a comment and is ignored; an mx value that is a valid pattern
// followed by white space and more text ("mx: mx1.example.com # primary")
// is that pattern. A value that does not begin with a valid pattern is
// still ignored, as RFC 8461 §3.2 has invalid mx values ignored.
//
// The error is a *PolicyError that says which line is at fault and why.
func ParsePolicy(text string) (*Policy, error) {
	if len(text) > MaxPolicySize {
		return nil, &PolicyError{Reason: fmt.Sprintf("%d bytes, larger than the %d allowed", len(text), MaxPolicySize)}
	}
	var (
		p         = &Policy{PolicyString: splitLines(text)}
		seen      = map[string]bool{}
		droppedMX []string
		nearMiss  []string
	)
	for i, line := range p.PolicyString {
		n := i + 1
		if err := checkLineChars(line); err != "" {
			return nil, &PolicyError{Line: n, Reason: err}
		}
		if t := txtfield.TrimWSP(line); t == "" {
			continue
		} else if t[0] == '#' {
			p.Deviations = append(p.Deviations, fmt.Sprintf("line %d: a comment, which RFC 8461 §3.2 does not define: ignored", n))
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, &PolicyError{Line: n, Reason: fmt.Sprintf("%s is not \"key: value\"", quote(line))}
		}
		key, value := txtfield.TrimWSP(k), txtfield.TrimWSP(v)
		if !validFieldName(key) {
			return nil, &PolicyError{Line: n, Reason: fmt.Sprintf("field name %s is not a letter or digit followed by up to 31 letters, digits, \"_\", \"-\" or \".\"", quote(key))}
		}
		if key == "mx" {
			pat, ok := parseMXPattern(value)
			if i := strings.IndexAny(value, " \t"); !ok && i > 0 {
				if pat, ok = parseMXPattern(value[:i]); ok {
					p.Deviations = append(p.Deviations, fmt.Sprintf("line %d: text %s after the mx pattern %s: read as the pattern alone", n, quote(txtfield.TrimWSP(value[i:])), pat))
				}
			}
			if ok {
				p.MX = append(p.MX, pat)
			} else {
				droppedMX = append(droppedMX, value)
			}
			continue
		}
		if seen[key] {
			continue // RFC 8461 §3.2: all but the first entry are ignored
		}
		seen[key] = true
		var reason string
		switch key {
		case "version":
			if value != "STSv1" {
				reason = fmt.Sprintf("version is %s, want STSv1", quote(value))
			}
		case "mode":
			p.Mode = Mode(value)
			if p.Mode != ModeEnforce && p.Mode != ModeTesting && p.Mode != ModeNone {
				reason = fmt.Sprintf("mode is %s, want enforce, testing or none", quote(value))
			}
		case "max_age":
			p.MaxAge, reason = parseMaxAge(value)
		default:
			// RFC 8461 §3.2: unknown fields are ignored.
			if isKnownField(strings.ToLower(key)) {
				nearMiss = append(nearMiss, key)
			}
		}
		if reason != "" {
			return nil, &PolicyError{Line: n, Reason: reason}
		}
	}
	for _, key := range [...]string{"version", "mode", "max_age"} {
		if !seen[key] {
			return nil, &PolicyError{Reason: "no " + key + " field" + hint(nearMiss)}
		}
	}
	// RFC 8461 §3.2: mx is required "except when mode is none".
	if p.Mode != ModeNone && len(p.MX) == 0 {
		reason := fmt.Sprintf("mode %s needs at least one valid mx pattern, found none", p.Mode)
		if len(droppedMX) > 0 {
			reason += fmt.Sprintf(" (invalid: %s)", quote(strings.Join(droppedMX, ", ")))
		}
		return nil, &PolicyError{Reason: reason + hint(nearMiss)}
	}
	return p, nil
}

// hint tells the author of a policy about keys that differ from a known one
// only in case ("Mode:"), since keys are case-sensitive.
func hint(nearMiss []string) string {
	if len(nearMiss) == 0 {
		return ""
	}
	return fmt.Sprintf(" (keys are case-sensitive: %s ignored)", quote(strings.Join(nearMiss, ", ")))
}

func isKnownField(key string) bool {
	return key == "version" || key == "mode" || key == "max_age" || key == "mx"
}

// splitLines splits a policy into lines at LF, removing a CR before it
// (RFC 8461 §3.2: sts-policy-term = LF / CRLF). The last line needs no line
// end; an empty piece after the final line end is not a line.
func splitLines(text string) []string {
	if text == "" {
		return nil
	}
	lines := make([]string, 0, strings.Count(text, "\n")+1)
	for text != "" {
		line, rest, _ := strings.Cut(text, "\n")
		lines = append(lines, strings.TrimSuffix(line, "\r"))
		text = rest
	}
	return lines
}

// checkLineChars rejects what cannot be part of a policy line: invalid
// UTF-8 and control characters other than tab (a CR not followed by LF
// ends up here too). RFC 8461 §3.2 allows VCHAR, WSP and UTF-8.
func checkLineChars(line string) string {
	for i, r := range line {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(line[i:], "\uFFFD"):
			return fmt.Sprintf("invalid UTF-8 at byte %d", i+1)
		case r < 0x20 && r != '\t', r == 0x7f:
			return fmt.Sprintf("control character %U at byte %d", r, i+1)
		}
	}
	return ""
}

// validFieldName reports whether name matches sts-policy-ext-name, which
// the registered names satisfy as well (RFC 8461 §3.2):
// (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".").
func validFieldName(name string) bool {
	if len(name) == 0 || len(name) > 32 || !isAlnum(name[0]) {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// parseMaxAge parses sts-policy-max-age-value, 1*10(DIGIT), at most
// MaxMaxAge seconds (RFC 8461 §3.2).
func parseMaxAge(v string) (time.Duration, string) {
	if len(v) == 0 || len(v) > 10 {
		return 0, fmt.Sprintf("max_age %s is not 1 to 10 digits", quote(v))
	}
	var secs int64
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, fmt.Sprintf("max_age %s is not 1 to 10 digits", quote(v))
		}
		secs = secs*10 + int64(v[i]-'0')
	}
	if d := time.Duration(secs) * time.Second; d <= MaxMaxAge {
		return d, ""
	}
	return 0, fmt.Sprintf("max_age %d is more than %d seconds", secs, int64(MaxMaxAge/time.Second))
}

// parseMXPattern validates an mx value, ["*."] Domain (RFC 8461 §3.2, the
// Domain of RFC 5321 §4.1.2), and returns it lower-case. A trailing dot is
// tolerated and removed. A wildcard is allowed only as the whole leftmost
// label.
func parseMXPattern(v string) (string, bool) {
	v = strings.TrimSuffix(v, ".")
	if !validDomain(strings.TrimPrefix(v, "*.")) {
		return "", false
	}
	// An IPv4 address passes as a Domain of the ABNF, but an mx value
	// names a host: an address never matches (RFC 8461 §4.1 compares host
	// names), so it is no valid pattern, and a policy left with nothing
	// else is invalid rather than one that refuses every MX host.
	if _, err := netip.ParseAddr(v); err == nil {
		return "", false
	}
	return toLowerASCII(v), true
}

// validDomain reports whether d is an RFC 5321 Domain: dot-separated labels
// of letters, digits and hyphens, not starting or ending with a hyphen, of
// at most 63 octets each and 253 in all.
func validDomain(d string) bool {
	if len(d) == 0 || len(d) > 253 {
		return false
	}
	for d != "" {
		label, rest, found := strings.Cut(d, ".")
		if found && rest == "" {
			return false // an empty last label: "a..", or a trailing dot
		}
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if !isAlnum(label[i]) && label[i] != '-' {
				return false
			}
		}
		d = rest
	}
	return true
}

// toLowerASCII lower-cases ASCII letters only; it returns s itself when s
// has no upper-case letter.
func toLowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
