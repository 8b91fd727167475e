// Package dnsname is the one rule by which sealpost compares, stores and
// checks domain names, so that every package reads a name the same way and
// a name written one way is never a different domain somewhere else.
//
// The rule, in two functions:
//
//   - [Fold] is for keys: it lower-cases ASCII letters and drops one
//     trailing dot (the root label), and nothing else. It never fails and is
//     idempotent: Fold(Fold(s)) == Fold(s). A name that ends in two dots is
//     left as it is ("a.." stays "a..") rather than made to look like a
//     valid one, so that what is written out of a key reads back as the same
//     key.
//   - [Canonical] is for names that enter from outside (addresses,
//     configuration, DNS answers that are then looked up): it folds, then
//     checks that the result is a DNS host name as mail uses it and returns
//     it as lower-case A-labels. Labels that are not ASCII are converted
//     with the IDNA2008 lookup mapping of UTS #46 (non-transitional, as
//     browsers and mail software do): upper case is folded, and so are
//     compatibility characters such as U+212A KELVIN SIGN, which maps to
//     "k" — by IDNA's mapping, never by [strings.ToLower], whose result can
//     pass an ASCII check without having been converted.
//
// Chosen strictness (RFC 1035 §2.3.4, RFC 5321 §4.1.2): no empty label, no
// label over 63 octets, no name over 253 octets once converted (255 on the
// wire), and ASCII labels of letters, digits, "-" and "_" only. Chosen
// tolerance: underscores (seen in real MX host names and needed for
// _mta-sts and _smtp._tls names), labels that begin or end with a hyphen,
// and "xn--" labels that are not valid Punycode are accepted in ASCII input:
// they name a DNS node, and refusing them would lose a domain's protection
// over a cosmetic flaw. Address literals ("[192.0.2.1]") are not names;
// callers handle them before calling here, and a name of the
// dotted-decimal form of an IPv4 address ("192.0.2.1.") is refused (RFC
// 1123 §2.1).
package dnsname
