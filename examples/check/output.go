package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/sealpost/sealpost/internal/textwrap"
)

// lineWidth is the width the text report wraps at.
const lineWidth = 100

// maxSubjectWidth caps the subject column; a longer subject pushes its
// line's message to the right rather than every line's.
const maxSubjectWidth = 32

// areaTitles are the section headings of the text report.
var areaTitles = map[string]string{
	AreaResolver: "Resolver",
	AreaMX:       "MX records",
	AreaSTS:      "MTA-STS (RFC 8461)",
	AreaHosts:    "MX hosts: STARTTLS and certificates",
	AreaDANE:     "DANE (RFC 7672)",
	AreaTLSRPT:   "TLS-RPT (RFC 8460)",
	AreaSPF:      "SPF on the MTA-STS policy host",
}

// ANSI colours, used only when writing to a terminal.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
)

// writeText writes the report for a person: one section per area, one
// finding per line in aligned columns (severity, subject, message), the
// fix on the line below under the message.
func writeText(w io.Writer, rep *Report, colour bool) error {
	paint := func(code, s string) string {
		if !colour {
			return s
		}
		return code + s + ansiReset
	}
	subjectWidth := 0
	for _, f := range rep.Findings {
		subjectWidth = max(subjectWidth, min(utf8.RuneCountInString(f.Subject), maxSubjectWidth))
	}
	const sevWidth = len("warning")
	indent := 2 + sevWidth + 2 + subjectWidth + 2
	textWidth := max(lineWidth-indent, 40)

	var b strings.Builder
	fmt.Fprintf(&b, "%s   checked %s\n", paint(ansiBold, rep.Domain), rep.Checked)
	area := ""
	for _, f := range rep.Findings {
		if f.Area != area {
			area = f.Area
			fmt.Fprintf(&b, "\n%s\n", paint(ansiBold, areaTitles[area]))
		}
		sev := fmt.Sprintf("%-*s", sevWidth, f.Severity)
		switch f.Severity {
		case OK:
			sev = paint(ansiGreen, sev)
		case Warning:
			sev = paint(ansiYellow, sev)
		case Error:
			sev = paint(ansiRed, sev)
		}
		lines := textwrap.Lines(f.Message, textWidth)
		subject := fmt.Sprintf("%-*s", subjectWidth, f.Subject)
		if utf8.RuneCountInString(f.Subject) > subjectWidth {
			// Too long for the column: the subject gets a line of its own.
			fmt.Fprintf(&b, "  %s  %s\n", sev, f.Subject)
			sev, subject = strings.Repeat(" ", sevWidth), strings.Repeat(" ", subjectWidth)
		}
		fmt.Fprintf(&b, "  %s  %s  %s\n", sev, subject, lines[0])
		pad := strings.Repeat(" ", indent)
		for _, l := range lines[1:] {
			fmt.Fprintf(&b, "%s%s\n", pad, l)
		}
		if f.Fix != "" {
			// The fix's first paragraph is prose, wrapped; the lines after
			// a newline are records to paste, written unbroken.
			prose, literal, _ := strings.Cut(f.Fix, "\n")
			for i, l := range textwrap.Lines("fix: "+prose, textWidth) {
				if i > 0 {
					l = "     " + l // under the text after "fix: "
				}
				fmt.Fprintf(&b, "%s%s\n", pad, l)
			}
			for _, l := range strings.Split(literal, "\n") {
				if l != "" {
					fmt.Fprintf(&b, "%s     %s\n", pad, l)
				}
			}
		}
	}
	errs, warns := rep.Count(Error), rep.Count(Warning)
	summary := fmt.Sprintf("%s, %s, %d ok", plural(errs, "error"), plural(warns, "warning"), rep.Count(OK))
	switch {
	case errs > 0:
		summary = paint(ansiRed, summary)
	case warns > 0:
		summary = paint(ansiYellow, summary)
	default:
		summary = paint(ansiGreen, summary)
	}
	fmt.Fprintf(&b, "\n%s\n", summary)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeJSON writes the report as one JSON object.
func writeJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// isTerminal reports whether w is a character device, such as a terminal:
// colour is for people, not for files and pipes.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
