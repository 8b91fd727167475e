package smtpclient

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on command arguments.
const (
	// RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its angle
	// brackets.
	maxPath = 254
	// RFC 5321 §4.5.3.1.2: a domain is at most 255 octets; a label 63
	// (RFC 1035 §2.3.4).
	maxDomain = 255
	maxLabel  = 63
	// RFC 3461 §4.4: ENVID is at most 100 characters; §4.2: ORCPT at most
	// 500.
	maxEnvID = 100
	maxORcpt = 500
)

// checkHelloName checks the argument of EHLO and HELO (RFC 5321
// §4.1.1.1): a domain in ASCII (RFC 6531 §3.7.1 keeps EHLO ASCII; a U-label
// goes as its A-label) or an address literal.
func checkHelloName(name string) error {
	reason := ""
	switch {
	case name == "":
		reason = "empty; a domain or an address literal is required"
	case name[0] == '[':
		reason = checkAddressLiteral(name)
	case !isASCII(name):
		reason = "not ASCII; use the A-label form of an internationalised domain"
	default:
		reason = checkDomain(name)
	}
	if reason != "" {
		return &CommandError{Command: "EHLO", Field: "domain", Value: name, Reason: reason}
	}
	return nil
}

// CheckMailbox returns an error saying why addr cannot be sent in MAIL FROM
// or RCPT TO (see checkMailbox for the reading), or nil when it can: a
// caller checks its addresses before it opens any connection.
func CheckMailbox(addr string) error {
	if reason := checkMailbox(addr); reason != "" {
		return errors.New(reason)
	}
	return nil
}

// checkMailbox reports why addr is not a Mailbox of RFC 5321 §4.1.2, with
// the UTF-8 of RFC 6531 §3.3, or "" when it is one.
//
// The reading is strict about characters, so that nothing can break out
// of the angle brackets or the command line even at a server that parses
// commands naively: unlike RFC 5321, it refuses spaces and angle brackets
// in a quoted local part too. It is strict about the domain; it accepts
// dots at the start or end of a dot-string local part or doubled,
// which RFC 5321 forbids but some large providers hand out, because such
// dots endanger nothing.
func checkMailbox(addr string) string {
	if len(addr) > maxPath {
		return "longer than " + strconv.Itoa(maxPath) + " octets (RFC 5321 §4.5.3.1.3)"
	}
	if !utf8.ValidString(addr) {
		return "not valid UTF-8"
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "no \"@\""
	}
	local, domain := addr[:at], addr[at+1:]
	if reason := checkLocalPart(local); reason != "" {
		return reason
	}
	if strings.HasPrefix(domain, "[") {
		return checkAddressLiteral(domain)
	}
	return checkDomain(domain)
}

// checkLocalPart checks a Dot-string or a Quoted-string (RFC 5321 §4.1.2),
// where RFC 6531 §3.3 admits UTF-8 beyond ASCII in either.
func checkLocalPart(local string) string {
	if local == "" {
		return "empty local part"
	}
	if local[0] != '"' {
		for i := 0; i < len(local); i++ {
			if b := local[i]; b < 0x80 && b != '.' && !isAtext(b) {
				return "character " + strconv.QuoteRune(rune(b)) + " not allowed in an unquoted local part"
			}
		}
		return ""
	}
	if len(local) < 2 || local[len(local)-1] != '"' {
		return "unterminated quoted local part"
	}
	q := local[1 : len(local)-1]
	for i := 0; i < len(q); i++ {
		b := q[i]
		switch {
		case b == '\\':
			// quoted-pairSMTP = %d92 %d32-126
			if i+1 >= len(q) || q[i+1] < 32 || q[i+1] > 126 {
				return "bad quoted pair in local part"
			}
			if n := q[i+1]; n == ' ' || n == '<' || n == '>' {
				return "space or angle bracket in quoted local part"
			}
			i++
		case b == '"':
			return "unescaped quote inside quoted local part"
		case b == ' ' || b == '<' || b == '>':
			// RFC 5321 allows these inside quotes, but a server that
			// splits the command line naively would read them as the
			// end of the path or the start of a parameter.
			return "space or angle bracket in quoted local part"
		case b >= 0x80:
		case b < 32 || b > 126:
			// qtextSMTP = %d32-33 / %d35-91 / %d93-126
			return "control character in quoted local part"
		}
	}
	return ""
}

// isAtext reports the ASCII atext of RFC 5322 §3.2.3.
func isAtext(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", b) >= 0
}

// checkDomain checks a Domain of RFC 5321 §4.1.2: dot-separated labels of
// letters, digits and inner hyphens, where RFC 6531 §3.3 admits U-labels
// (UTF-8 beyond ASCII). No trailing dot.
func checkDomain(d string) string {
	if d == "" {
		return "empty domain"
	}
	if len(d) > maxDomain {
		return "domain longer than 255 octets"
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" {
			return "empty label in domain " + strconv.Quote(d)
		}
		if len(label) > maxLabel {
			return "domain label longer than 63 octets"
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return "domain label begins or ends with a hyphen"
		}
		for i := 0; i < len(label); i++ {
			b := label[i]
			if b < 0x80 && b != '-' && !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9') {
				return "character " + strconv.QuoteRune(rune(b)) + " not allowed in a domain"
			}
		}
	}
	return ""
}

// checkAddressLiteral checks an address literal (RFC 5321 §4.1.3):
// "[" IPv4 "]", "[IPv6:" IPv6 "]", or a general literal "[tag:dcontent]".
func checkAddressLiteral(lit string) string {
	if len(lit) < 3 || lit[0] != '[' || lit[len(lit)-1] != ']' {
		return "address literal not enclosed in brackets"
	}
	inner := lit[1 : len(lit)-1]
	if tag, v6, ok := strings.Cut(inner, ":"); ok {
		if strings.EqualFold(tag, "IPv6") {
			if a, err := netip.ParseAddr(v6); err != nil || !a.Is6() || a.Zone() != "" {
				return "bad IPv6 address literal"
			}
			return ""
		}
		if checkDomain(tag) != "" || strings.Contains(tag, ".") {
			return "bad address literal tag"
		}
		for i := 0; i < len(v6); i++ {
			// dcontent = %d33-90 / %d94-126, less the angle brackets,
			// which RFC 5321 admits here but would end the path early
			// at a server that looks for the first ">".
			if b := v6[i]; b < 33 || b > 126 || b == '[' || b == '\\' || b == ']' || b == '<' || b == '>' {
				return "bad character in address literal"
			}
		}
		return ""
	}
	if a, err := netip.ParseAddr(inner); err != nil || !a.Is4() {
		return "bad IPv4 address literal"
	}
	return ""
}

// isASCII reports whether s is all ASCII.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// xtext encodes s as RFC 3461 §4 xtext: printable ASCII but "+" and "="
// as it is, every other octet as "+" and two upper-case hex digits.
func xtext(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '!' && c <= '~' && c != '+' && c != '=' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('+')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

// utf8AddrXtext encodes an address as RFC 6533 §3 utf-8-addr-xtext:
// printable ASCII but "+", "=" and "\" as it is, every other character as
// "\x{HEXPOINT}" with at least two upper-case hex digits. The result is
// ASCII, so it may go to a server without SMTPUTF8.
func utf8AddrXtext(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '!' && r <= '~' && r != '+' && r != '=' && r != '\\' {
			b.WriteRune(r)
			continue
		}
		hex := strings.ToUpper(strconv.FormatInt(int64(r), 16))
		if len(hex) < 2 {
			hex = "0" + hex
		}
		b.WriteString(`\x{` + hex + "}")
	}
	return b.String()
}

// orcptParam returns the ORCPT parameter value for an original recipient
// (RFC 3461 §4.2): "rfc822;" and its xtext for an ASCII address, "utf-8;"
// and its utf-8-addr-xtext (RFC 6533 §3) for any other.
func orcptParam(addr string) (string, string) {
	if reason := checkMailbox(addr); reason != "" {
		return "", reason
	}
	v := "rfc822;" + xtext(addr)
	if !isASCII(addr) {
		v = "utf-8;" + utf8AddrXtext(addr)
	}
	if len(v) > maxORcpt {
		return "", "longer than 500 characters when encoded (RFC 3461 §4.2)"
	}
	return v, ""
}

// notifyParam checks and formats RCPT NOTIFY (RFC 3461 §4.1): "NEVER"
// alone, or a list of SUCCESS, FAILURE and DELAY without repeats.
func notifyParam(list []string) (string, string) {
	seen := make(map[string]bool, len(list))
	out := make([]string, 0, len(list))
	for _, v := range list {
		v = strings.ToUpper(v)
		switch v {
		case "NEVER", "SUCCESS", "FAILURE", "DELAY":
		default:
			return "", "unknown NOTIFY value " + strconv.Quote(v)
		}
		if seen[v] {
			return "", "NOTIFY value " + v + " repeated"
		}
		seen[v] = true
		out = append(out, v)
	}
	if seen["NEVER"] && len(out) > 1 {
		return "", "NEVER combined with other NOTIFY values"
	}
	return strings.Join(out, ","), ""
}

// checkEnvID checks an ENVID before encoding (RFC 3461 §4.4: printable
// US-ASCII, at most 100 characters).
func checkEnvID(id string) string {
	if len(id) > maxEnvID {
		return "longer than 100 characters (RFC 3461 §4.4)"
	}
	for i := 0; i < len(id); i++ {
		if id[i] < ' ' || id[i] > '~' {
			return "not printable US-ASCII (RFC 3461 §4.4)"
		}
	}
	return ""
}
