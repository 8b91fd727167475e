package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/internal/testenv"
	"github.com/sealpost/sealpost/internal/textwrap"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/tlsrpt"
)

// ANSI SGR codes of the colours the demo uses.
const (
	bold   = "1"
	dim    = "2"
	red    = "31"
	green  = "32"
	yellow = "33"
)

// colorful reports whether f is a terminal that wants colour: a character
// device, with no NO_COLOR (https://no-color.org) and a TERM other than
// "dumb".
func colorful(f *os.File) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// painter writes ANSI colours when on, plain text otherwise.
type painter bool

func (p painter) paint(code, s string) string {
	if !p || code == "" || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// cell is one table cell: plain text and the colour to write it in.
type cell struct{ text, color string }

// render prints the outcome: a table of the recipients, then why each
// ended as it did, then the TLS-RPT report.
func render(w io.Writer, out *outcome, color bool) error {
	p := painter(color)
	var b strings.Builder
	for _, l := range textwrap.Lines(headline(out), 72) {
		fmt.Fprintf(&b, "%s\n", p.paint(bold, l))
	}
	fmt.Fprintf(&b, "%s\n\n", p.paint(dim, "(bbolt store in a temporary directory; DNS, MTA-STS policy server and MX hosts on 127.0.0.0/8)"))

	rows := [][]cell{{{"RECIPIENT", bold}, {"OUTCOME", bold}, {"POLICY", bold}, {"TLS", bold}}}
	for _, ro := range out.Recipients {
		rows = append(rows, []cell{{text: recipient(ro.Scenario)}, outcomeCell(ro), {text: policyName(ro.Result)}, tlsCell(ro.Result)})
	}
	writeTable(&b, p, rows)
	fmt.Fprintf(&b, "\n%s\n", p.paint(dim, fmt.Sprintf("The queue came to rest %s after the first Enqueue; %s stay queued for a retry.",
		out.Took.Round(time.Millisecond), plural(pending(out), "recipient"))))
	if len(out.Cached) > 0 {
		line := "MTA-STS policies kept in the store file, for after a restart: " + strings.Join(out.Cached, ", ") + "."
		for _, l := range textwrap.Lines(line, detailWidth+8) {
			fmt.Fprintf(&b, "%s\n", p.paint(dim, l))
		}
	}

	for _, ro := range out.Recipients {
		fmt.Fprintf(&b, "\n%s\n", p.paint(bold, recipient(ro.Scenario)))
		for _, d := range explain(ro, out) {
			label := p.paint(dim, fmt.Sprintf("%-7s", d[0]))
			if d[0] == "WRONG" {
				label = p.paint(red+";"+bold, fmt.Sprintf("%-7s", d[0]))
			}
			fmt.Fprintf(&b, "  %s %s\n", label, strings.Join(textwrap.Lines(d[1], detailWidth), "\n"+strings.Repeat(" ", 10)))
		}
	}

	if out.Report != nil {
		if err := writeReport(&b, p, out); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// headline says what the demo sent.
func headline(out *outcome) string {
	plain, strict := 0, 0
	for _, ro := range out.Recipients {
		if ro.Scenario.RequireTLS {
			strict++
		} else {
			plain++
		}
	}
	line := fmt.Sprintf("alice@%s sends a message to %s through the queue", sender, plural(plain, "domain"))
	if strict > 0 {
		line += fmt.Sprintf(", then one with REQUIRETLS to %s", plural(strict, "domain"))
	}
	return line + "."
}

// writeTable writes rows in aligned columns, two spaces apart.
func writeTable(b *strings.Builder, p painter, rows [][]cell) {
	var width []int
	for _, r := range rows {
		for i, c := range r {
			if i == len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c.text))
		}
	}
	for _, r := range rows {
		for i, c := range r {
			b.WriteString(p.paint(c.color, c.text))
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(c.text)+2))
			}
		}
		b.WriteString("\n")
	}
}

// outcomeCell says where the recipient stands in the queue.
func outcomeCell(ro recipientOutcome) cell {
	switch ro.Queue.State {
	case queue.StateDelivered:
		return cell{"✓ delivered", green}
	case queue.StateBounced:
		return cell{"✗ bounced", red}
	}
	return cell{"↻ deferred", yellow}
}

// policyName names the policy the MX host was held to.
func policyName(res delivery.Result) string {
	req := res.Session.Requirement
	switch {
	case res.Session.MXHost == "":
		return "—"
	case req.Basis == delivery.BasisMTASTS && req.STS != nil:
		return "MTA-STS " + string(req.STS.Mode)
	case req.Basis == delivery.BasisDANE && req.DANE != nil:
		return "DANE (" + plural(len(req.DANE.Records), "TLSA record") + ")"
	}
	return req.Basis.String()
}

// tlsCell says how the message travelled: the TLS version and how the
// server was authenticated.
func tlsCell(res delivery.Result) cell {
	s := res.Session
	switch {
	case res.Status != delivery.Delivered:
		return cell{"—", ""}
	case s.Auth == delivery.Plaintext:
		return cell{"plaintext", red}
	case s.Auth.Authenticated():
		return cell{s.TLSVersionName() + ", " + s.Auth.String(), green}
	}
	return cell{s.TLSVersionName() + ", not authenticated", yellow}
}

// explain gives the detail lines of a recipient: the requirement and why,
// the reply, and what TLS-RPT recorded.
func explain(ro recipientOutcome, out *outcome) [][2]string {
	d := [][2]string{{"set-up", ro.Scenario.setup()}}
	res := ro.Result
	if s := res.Session; s.MXHost != "" {
		why := s.Requirement.Reason
		if why == "" && s.Requirement.Basis == delivery.NoPolicy {
			why = "no DANE TLSA records, no MTA-STS policy: opportunistic STARTTLS (RFC 7435)"
		}
		d = append(d, [2]string{"policy", why})
	}
	reply := replyString(ro.Queue.Last)
	// A reply of our own means we refused to send; a remote one that the
	// server refused the message.
	verdict := "not sent: "
	if h := ro.Queue.Last.RemoteMTA; h != "" {
		verdict = "refused by " + h + ": "
	}
	switch ro.Queue.State {
	case queue.StateDelivered:
		d = append(d, [2]string{"result", fmt.Sprintf("accepted by %s [%s]: %s", res.Session.MXHost, res.Session.IP, reply)})
		// A check that failed without stopping the message: the session
		// says why it failed, the requirement why that was allowed.
		if err := res.Session.CheckErr; err != nil {
			d = append(d, [2]string{"check", fmt.Sprintf("%s check failed (%s), not enforced: %v",
				res.Session.Requirement.Check, resultType(err), err)})
		}
	case queue.StateBounced:
		d = append(d, [2]string{"result", verdict + reply})
		if bo := ro.Bounce; bo != nil {
			d = append(d, [2]string{"bounce", bounceLine(recipient(ro.Scenario), bo)})
		}
	default:
		wait := ro.Queue.NextAttempt.Sub(ro.Queue.LastAttempt).Round(time.Second)
		d = append(d, [2]string{"result", fmt.Sprintf("%s%s; retry in %s", verdict, reply, wait)})
	}
	if a := ro.Attacker; a != nil {
		what := "the attacker stripped STARTTLS on " + plural(a.Connections, "connection")
		if ro.Scenario.Attack == testenv.InterceptTLS {
			what = fmt.Sprintf("the attacker answered STARTTLS on %s, %s completed with it",
				plural(a.Connections, "connection"), plural(a.Handshakes, "TLS handshake"))
		}
		d = append(d, [2]string{"attack", fmt.Sprintf("%s; %s went through it, %s reached the host",
			what, plural(a.Transactions, "mail transaction"), plural(ro.Received, "message"))})
	}
	if f := ro.Failures; len(f) > 0 {
		var types []string
		for _, x := range f {
			types = append(types, string(x.ResultType))
		}
		d = append(d, [2]string{"tls-rpt", "failure counted for the daily report: " + strings.Join(unique(types), ", ")})
	}
	for _, u := range ro.unmet() {
		d = append(d, [2]string{"WRONG", u})
	}
	return d
}

// resultType returns the RFC 8460 result type of a certificate check's
// error (*sts.Error, *dane.VerifyError), or "" for another error.
func resultType(err error) tlsrpt.ResultType {
	var rt interface{ ResultType() string }
	if errors.As(err, &rt) {
		return tlsrpt.ResultType(rt.ResultType())
	}
	return ""
}

// bounceLine says what the bounce reported about rcpt and how it reached
// the sender.
func bounceLine(rcpt string, bo *bounceOutcome) string {
	status := "no DSN received yet"
	if bo.Status != "" {
		status = "Status " + bo.Status + " for " + rcpt
	}
	line := fmt.Sprintf("DSN %s from <> to %s (%s)", bo.Envelope.ID, bo.Envelope.Recipients[0].Addr, status)
	if bo.Queue.State != queue.StateDelivered {
		return line + ", not delivered yet: " + replyString(bo.Queue.Last)
	}
	s := bo.Result.Session
	return fmt.Sprintf("%s, delivered to %s over %s, %s", line, s.MXHost, s.TLSVersionName(), s.Auth)
}

// writeReport writes the TLS-RPT report as tlsrpt builds it, indented.
func writeReport(b *strings.Builder, p painter, out *outcome) error {
	js, err := out.Report.JSON()
	if err != nil {
		return err
	}
	var ind bytes.Buffer
	if err := json.Indent(&ind, js, "  ", "  "); err != nil {
		return err
	}
	to := "it publishes no _smtp._tls record, so none would be sent"
	if len(out.RUA) > 0 {
		to = "to be sent tomorrow to " + strings.Join(out.RUA, ", ")
	}
	sum := out.Report.Summary()
	fmt.Fprintf(b, "\n%s\n%s\n", p.paint(bold, "TLS-RPT report for "+out.ReportDomain+" (RFC 8460 §4.4)"),
		p.paint(dim, fmt.Sprintf("(%d successful, %d failed sessions today; %s)",
			sum.TotalSuccessfulSessionCount, sum.TotalFailureSessionCount, to)))
	fmt.Fprintf(b, "  %s\n", ind.String())
	return nil
}

// replyString writes a reply as a server would: "451 4.7.10 text".
func replyString(d queue.Diagnostic) string {
	s := d.Text
	if d.Enhanced != [3]int{} {
		s = enhanced(d.Enhanced) + " " + s
	}
	if d.Code != 0 {
		s = fmt.Sprint(d.Code) + " " + s
	}
	return s
}

// enhanced writes an RFC 3463 code.
func enhanced(c [3]int) string { return fmt.Sprintf("%d.%d.%d", c[0], c[1], c[2]) }

// pending counts the recipients still queued.
func pending(out *outcome) int {
	n := 0
	for _, ro := range out.Recipients {
		if ro.Queue.State == queue.StatePending {
			n++
		}
	}
	return n
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// unique returns ss without repeats, in order.
func unique(ss []string) []string {
	var u []string
	for _, s := range ss {
		if !slices.Contains(u, s) {
			u = append(u, s)
		}
	}
	return u
}

// detailWidth is where detail lines are wrapped, so that they stay under
// 100 columns with their indentation.
const detailWidth = 90
