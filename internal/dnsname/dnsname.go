package dnsname

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Limits of RFC 1035 §2.3.4, for the name written without its trailing
// dot: a label is at most 63 octets, a name at most 255 octets on the wire,
// which is 253 in text.
const (
	MaxLabelLen = 63
	MaxNameLen  = 253
)

// Fold returns s with ASCII letters lower-cased and one trailing dot
// removed when it follows a label. It allocates only when it changes s.
func Fold(s string) string {
	if n := len(s); n >= 2 && s[n-1] == '.' && s[n-2] != '.' {
		s = s[:n-1]
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return lowerASCII(s)
		}
	}
	return s
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Error says why a name is not a domain name.
type Error struct {
	Name    string // the name as given
	Problem string // what is wrong, e.g. "an empty label"
}

func (e *Error) Error() string { return fmt.Sprintf("domain name %q: %s", e.Name, e.Problem) }

// ErrInvalid is matched by every *Error with errors.Is.
var ErrInvalid = errors.New("dnsname: not a domain name")

// Is makes errors.Is(err, ErrInvalid) hold.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// lookup is UTS #46 non-transitional processing with the lookup mapping,
// the Bidi rule and label validation, but without STD3's and the hyphen
// rules, which Canonical applies itself to ASCII and converted labels alike
// (underscores and edge hyphens are tolerated; see the package doc).
var lookup = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.StrictDomainName(false),
	idna.CheckHyphens(false),
)

// Canonical returns name as lower-case A-labels without a trailing dot, or
// an *Error saying why it is not a domain name (see the package doc for the
// rule).
func Canonical(name string) (string, error) {
	s := Fold(name)
	if !isASCII(s) {
		// An encoded label is never shorter than its characters, so a
		// longer input is refused before the conversion sees it.
		if len(s) > 4*MaxNameLen {
			return "", &Error{name, fmt.Sprintf("over %d octets", MaxNameLen)}
		}
		if !utf8.ValidString(s) {
			return "", &Error{name, "invalid UTF-8"}
		}
		if strings.HasSuffix(s, ".") {
			// Fold kept a second trailing dot, or the name is "."; the
			// mapping must not turn an ideographic full stop into a
			// root label here either.
			return "", &Error{name, "an empty label"}
		}
		a, err := lookup.ToASCII(s)
		if err != nil {
			return "", &Error{name, "not a valid internationalised name (" + idnaProblem(err) + ")"}
		}
		s = a
	}
	if err := check(s); err != "" {
		return "", &Error{name, err}
	}
	return s, nil
}

// idnaProblem shortens x/net/idna's messages, which repeat the name.
func idnaProblem(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return strings.TrimPrefix(msg, "idna: ")
}

// check applies the ASCII rules of the package doc to a folded name.
func check(s string) string {
	if s == "" {
		return "empty"
	}
	if len(s) > MaxNameLen {
		return fmt.Sprintf("%d octets, over %d", len(s), MaxNameLen)
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			if c := s[i]; !isLDH(c) && c != '_' {
				return fmt.Sprintf("character %q", c)
			}
			continue
		}
		switch n := i - start; {
		case n == 0:
			return "an empty label"
		case n > MaxLabelLen:
			return fmt.Sprintf("a label of %d octets, over %d", n, MaxLabelLen)
		}
		start = i + 1
	}
	// RFC 1123 §2.1: a host name never has the dotted-decimal form of an
	// IPv4 address; "192.0.2.1." is an address written as a name, which
	// mail writes only as a literal, "[192.0.2.1]".
	if _, err := netip.ParseAddr(s); err == nil {
		return "an IPv4 address, not a name (write an address literal in brackets)"
	}
	return ""
}

func isLDH(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-'
}

// isASCII reports whether s has no octet above 0x7f.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
