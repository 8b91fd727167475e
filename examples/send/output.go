package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-smtp"
	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/delivery"
)

// maxReplyWidth bounds the reply text shown: a hostile server's 4000-byte
// banner must not bury the table.
const maxReplyWidth = 160

// writeResults prints one line per recipient in aligned columns.
func writeResults(w io.Writer, results []delivery.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RECIPIENT\tSTATUS\tCODE\tHOST\tTLS\tAUTH\tPOLICY\tREPLY")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			clean(r.Recipient, 80), statusWord(r.Status), replyCode(r.Code, r.Enhanced),
			hostColumn(r.Session), tlsColumn(r.Session), authColumn(r.Session),
			policyColumn(r.Session), replyText(r))
	}
	return tw.Flush()
}

// statusWord names a status the way mail operators say it.
func statusWord(s delivery.Status) string {
	switch s {
	case delivery.Delivered:
		return "delivered"
	case delivery.TemporaryFailure:
		return "deferred"
	case delivery.PermanentFailure:
		return "failed"
	}
	return "unknown"
}

func replyCode(code int, enh smtp.EnhancedCode) string {
	if code == 0 {
		return "-"
	}
	if enh == (smtp.EnhancedCode{}) || enh == smtp.NoEnhancedCode {
		return fmt.Sprint(code)
	}
	return fmt.Sprintf("%d %d.%d.%d", code, enh[0], enh[1], enh[2])
}

func hostColumn(s delivery.Session) string {
	if s.MXHost == "" {
		return "-"
	}
	host := clean(s.MXHost, 80)
	if s.IP.IsValid() {
		host += " [" + s.IP.String() + "]"
	}
	return host
}

func tlsColumn(s delivery.Session) string {
	if s.MXHost == "" || s.Auth == delivery.NoSession {
		return "-"
	}
	return s.TLSVersionName()
}

func authColumn(s delivery.Session) string {
	switch s.Auth {
	case delivery.NoSession:
		return "-"
	case delivery.Plaintext:
		return "none"
	}
	return s.Auth.String()
}

func policyColumn(s delivery.Session) string {
	if s.MXHost == "" {
		return "-"
	}
	return s.Requirement.Basis.String()
}

// replyText is the server's reply, or our own reason, on one line.
func replyText(r delivery.Result) string {
	text := r.Text
	if text == "" && r.Err != nil {
		text = r.Err.Error()
	}
	if text == "" {
		return "-"
	}
	return clean(text, maxReplyWidth)
}

// clean makes network text safe for one table cell: control characters
// (tabs and line breaks included, which would break the columns or forge
// lines) and invalid UTF-8 become spaces, runs of spaces one, and the
// result is cut to max runes.
func clean(s string, max int) string {
	var b strings.Builder
	space := false
	n := 0
	for i := 0; i < len(s) && n < max; {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
				n++
			}
			space = true
			continue
		}
		space = false
		b.WriteRune(r)
		n++
		if n == max && i < len(s) {
			b.WriteString("…")
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// exitStatus is 1 when a recipient failed permanently, 75 when one was
// deferred, 0 when all were delivered.
func exitStatus(results []delivery.Result) int {
	code := exitOK
	for _, r := range results {
		switch r.Status {
		case delivery.PermanentFailure:
			return exitFailed
		case delivery.TemporaryFailure:
			code = exitTempFail
		}
	}
	return code
}

// writeHealth prints, as warnings, what the resolver check found wrong.
func writeHealth(w io.Writer, hr dane.HealthReport) {
	for _, p := range hr.Problems() {
		fmt.Fprintf(w, "send: warning: %s\n", p)
	}
}

// anyAnswers reports whether at least one resolver answered the probe.
// anyReached reports whether any resolver sent a response at all.
func anyReached(hr dane.HealthReport) bool {
	for _, s := range hr.Servers {
		if s.Reached {
			return true
		}
	}
	return false
}

// anyAnswers reports whether any resolver answered the probe itself.
func anyAnswers(hr dane.HealthReport) bool {
	for _, s := range hr.Servers {
		if s.Answers {
			return true
		}
	}
	return false
}

// writeExplanation prints the route decision for one domain.
func writeExplanation(w io.Writer, ex *delivery.Explanation, requireTLS bool) {
	for _, line := range strings.Split(strings.TrimRight(ex.String(), "\n"), "\n") {
		// Error texts in the explanation may quote a server or a
		// policy: keep the indentation, clean the rest.
		body := strings.TrimLeft(line, " ")
		fmt.Fprintf(w, "%s%s\n", line[:len(line)-len(body)], clean(body, 400))
	}
	usable := slices.ContainsFunc(ex.Hosts, func(h delivery.HostExplanation) bool { return h.Requirement != nil })
	if requireTLS && usable {
		// What the decision cannot know without connecting.
		fmt.Fprintln(w, "  with -requiretls, a host above is used only if its server also advertises")
		fmt.Fprintln(w, "  REQUIRETLS once connected (RFC 8689 §4.2.1); else the message fails with 5.7.30")
	}
	fmt.Fprintln(w)
}
