package queue

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// A DSN about a message sent with SMTPUTF8 (RFC 6531) is an internationalized
// one (RFC 6533): multipart/report; report-type=global-delivery-status, with
// message/global-delivery-status (whose fields may carry UTF-8) and the
// original as message/global-headers or message/global. Otherwise it is the
// 7-bit RFC 3464 form, in which a UTF-8 address can still be written in the
// "utf-8" address type, escaped to ASCII.

// dsnForm is the form of a DSN: its report-type and the media types of its
// second and third parts.
type dsnForm struct {
	global                        bool
	report, status, full, headers string
}

// formOf returns the form of the DSN about env.
func formOf(env *Envelope) dsnForm {
	if globalDSN(env) {
		// RFC 6533 §6.3 (message/global-headers), §6.4
		// (message/global-delivery-status), RFC 6532 §3.7 (message/global).
		return dsnForm{true, "global-delivery-status", "message/global-delivery-status", "message/global", "message/global-headers"}
	}
	return dsnForm{false, "delivery-status", "message/delivery-status", "message/rfc822", "text/rfc822-headers"}
}

// globalDSN reports whether the DSN about env must be internationalized:
// when the message needed SMTPUTF8 — UTF-8 in its header or in an envelope
// address. Its sender then handles SMTPUTF8 mail, and the returned header
// cannot go in text/rfc822-headers.
func globalDSN(env *Envelope) bool {
	if env.SMTPUTF8 || !isASCII(env.From) {
		return true
	}
	for i := range env.Recipients {
		if !isASCII(env.Recipients[i].Addr) {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// typedAddress writes the value of a Final-Recipient or Original-Recipient
// field (RFC 3464 §2.3.1, §2.3.2): "rfc822; addr" for an ASCII address of
// type rfc822; "utf-8; ..." for a UTF-8 address, in the utf-8-addr-unitext
// form in a global DSN and the utf-8-addr-xtext form, all ASCII, in a 7-bit
// one (RFC 6533 §3); any other type as given, made safe.
func typedAddress(typ, addr string, global bool) string {
	typ = strings.ToLower(strings.TrimSpace(typ))
	addr = strings.TrimSpace(addr)
	switch {
	case typ == "rfc822" && isASCII(addr):
		return "rfc822; " + field(addr)
	case typ == "rfc822" || typ == "utf-8":
		// RFC 6533 §3: the utf-8 type holds any address the rfc822 type
		// holds, and the UTF-8 ones it cannot.
		return "utf-8; " + utf8Addr(addr, global)
	}
	return statusText(typ+"; "+addr, global)
}

// utf8Addr encodes addr, which must be valid UTF-8 (invalid bytes become
// U+FFFD), as RFC 6533 §3 utf-8-addr-unitext (global) or utf-8-addr-xtext:
// every character that is not a QCHAR — controls, space, "\", "+", "=",
// and in the xtext form every non-ASCII one — as "\x{HEX}", HEX being the
// code point in upper-case hexadecimal, two digits at least. The result is
// cut after maxField bytes (an address is at most 320 bytes, but each
// character can grow to ten), always between two characters.
func utf8Addr(addr string, global bool) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(addr, "\uFFFD") {
		var piece string
		switch {
		case r > ' ' && r < 0x7f && r != '\\' && r != '+' && r != '=', global && r >= utf8.RuneSelf:
			piece = string(r)
		default:
			piece = fmt.Sprintf(`\x{%02X}`, r)
		}
		if b.Len()+len(piece) > maxField {
			b.WriteString("...")
			break
		}
		b.WriteString(piece)
	}
	return b.String()
}

// statusText makes untrusted text safe as a delivery-status field value,
// as field does; in the 7-bit message/delivery-status every non-ASCII
// character becomes "?" (RFC 3464 §2: fields as in an RFC 822 header, and
// a 7-bit media type; RFC 6533 lets message/global-delivery-status carry
// UTF-8, in Diagnostic-Code too).
func statusText(s string, global bool) string {
	s = field(s)
	if global || isASCII(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r >= utf8.RuneSelf {
			return '?'
		}
		return r
	}, s)
}
