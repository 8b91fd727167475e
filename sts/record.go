package sts

import (
	"fmt"
	"strings"

	"github.com/sealpost/sealpost/internal/txtfield"
)

// recordVersion starts every MTA-STS TXT record (RFC 8461 §3.1).
const recordVersion = "v=STSv1"

// Record is a domain's _mta-sts TXT record (RFC 8461 §3.1).
type Record struct {
	// ID identifies the policy instance: 1 to 32 letters and digits. A
	// changed id tells senders to fetch the policy again.
	ID string
}

// ParseRecord parses one _mta-sts TXT record, its character-strings already
// concatenated (RFC 8461 §3.1: "as if those strings are concatenated
// together without adding spaces").
//
// The record must start with "v=STSv1" and carry an id field of 1 to 32
// letters and digits. Fields are separated by ";" with optional spaces or
// tabs around it; a trailing ";" and trailing white space are allowed.
// Other fields are ignored whatever their syntax, provided they have the
// form name=value; an empty field (";;") is skipped. Field names are
// case-sensitive, as the ABNF's %s says. When a field is repeated, the
// first one counts (RFC 8461 §3.2, last paragraph).
func ParseRecord(txt string) (Record, error) {
	fail := func(format string, args ...any) (Record, error) {
		return Record{}, &RecordError{Record: txt, Reason: fmt.Sprintf(format, args...)}
	}
	rest, ok := strings.CutPrefix(txt, recordVersion)
	if !ok {
		return fail("does not start with %s", recordVersion)
	}
	// RFC 8461 §3.1: sts-version 1*(*WSP %x3B *WSP sts-field) [%x3B]
	head, rest, found := strings.Cut(rest, ";")
	if txtfield.TrimWSP(head) != "" {
		return fail("%s is followed by %s, not by \";\"", recordVersion, quote(head))
	}
	var id string
	haveID := false
	for found {
		var field string
		field, rest, found = strings.Cut(rest, ";")
		field = txtfield.TrimWSP(field)
		if field == "" {
			continue
		}
		name, value, hasValue := strings.Cut(field, "=")
		if !hasValue || name == "" {
			return fail("field %s is not name=value", quote(field))
		}
		if name != "id" || haveID {
			// RFC 8461 §3.1's sts-extension, with the grammar TLS-RPT's
			// record shares (txtfield): a field that is neither an id
			// nor an extension makes the record invalid.
			if !txtfield.ValidExtName(name) || !txtfield.ValidExtValue(value) {
				return fail("field %s is neither the id nor an extension (a name of letters, digits, _ - . and a value of printable ASCII without = ; or space)", quote(field))
			}
			continue
		}
		if !validID(value) {
			return fail("id %s is not 1 to 32 letters and digits", quote(value))
		}
		id, haveID = value, true
	}
	if !haveID {
		return fail("no id field")
	}
	return Record{ID: id}, nil
}

// isRecordCandidate reports whether a TXT record is meant as an MTA-STS
// record. RFC 8461 §3.1 discards records that do not begin with "v=STSv1;";
// a space or tab before the ";" (allowed by the ABNF) and a record that is
// only "v=STSv1" (invalid: it has no id) count as candidates too, so that
// they are reported as invalid rather than silently ignored, while
// "v=STSv10" or "v=STSv2" do not.
func isRecordCandidate(txt string) bool {
	rest, ok := strings.CutPrefix(txt, recordVersion)
	return ok && (rest == "" || rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t')
}

// selectRecord applies RFC 8461 §3.1 to all TXT records of _mta-sts.<domain>:
// records that are not MTA-STS records are discarded, and exactly one must
// remain and be valid. It returns how many remained and, when exactly one
// did, the record parsed.
func selectRecord(txts []string) (Record, int, error) {
	n, which := 0, 0
	for i, t := range txts {
		if isRecordCandidate(t) {
			n++
			which = i
		}
	}
	if n != 1 {
		return Record{}, n, nil
	}
	rec, err := ParseRecord(txts[which])
	return rec, 1, err
}

// validID reports whether id is 1*32(ALPHA / DIGIT) (RFC 8461 §3.1).
func validID(id string) bool {
	if len(id) == 0 || len(id) > 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !isAlnum(id[i]) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
