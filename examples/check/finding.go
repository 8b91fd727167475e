package main

import (
	"encoding/json"
	"fmt"
)

// Severity says how much a finding matters to the domain's owner.
type Severity int

const (
	// OK: the set-up is as it should be; the finding says what was seen.
	OK Severity = iota
	// Warning: mail still flows securely today, but something is weaker
	// than it could be, or will break (a certificate about to expire, a
	// policy in testing mode, no TLS-RPT record to hear about failures).
	Warning
	// Error: senders that follow the standards will refuse, delay or
	// downgrade mail to the domain, or the set-up has no effect at all.
	Error
)

func (s Severity) String() string {
	switch s {
	case OK:
		return "ok"
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return fmt.Sprintf("Severity(%d)", int(s))
}

// MarshalText writes the severity as "ok", "warning" or "error".
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// The areas findings belong to, in the order the report shows them.
const (
	AreaResolver = "resolver"
	AreaMX       = "mx"
	AreaSTS      = "mta-sts"
	AreaHosts    = "mx hosts"
	AreaDANE     = "dane"
	AreaTLSRPT   = "tls-rpt"
	AreaSPF      = "spf"
)

// areaOrder is the order of the report's sections.
var areaOrder = []string{AreaResolver, AreaMX, AreaSTS, AreaHosts, AreaDANE, AreaTLSRPT, AreaSPF}

// Finding is one thing the check found out about the domain's set-up.
type Finding struct {
	// Area is the part of the set-up: one of the Area constants.
	Area string `json:"area"`
	// Subject is the DNS name, host or address the finding is about.
	Subject string `json:"subject"`
	// Severity is ok, warning or error.
	Severity Severity `json:"severity"`
	// Message says what was found, in one sentence.
	Message string `json:"message"`
	// Fix says what to change; empty when there is nothing to do. Lines
	// after the first newline are DNS records to publish, verbatim.
	Fix string `json:"fix,omitempty"`
}

// Report is the outcome of checking one domain.
type Report struct {
	Domain   string    `json:"domain"`
	Checked  string    `json:"checked"` // RFC 3339 time of the check
	Findings []Finding `json:"findings"`
}

// add appends a finding.
func (r *Report) add(area, subject string, sev Severity, msg, fix string) {
	r.Findings = append(r.Findings, Finding{Area: area, Subject: subject, Severity: sev, Message: msg, Fix: fix})
}

// Worst returns the highest severity among the findings (OK when none).
func (r *Report) Worst() Severity {
	worst := OK
	for _, f := range r.Findings {
		worst = max(worst, f.Severity)
	}
	return worst
}

// Count returns how many findings have severity s.
func (r *Report) Count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// MarshalJSON adds the counts per severity, so that a script need not
// count the findings itself.
func (r *Report) MarshalJSON() ([]byte, error) {
	type plain Report
	return json.Marshal(struct {
		*plain
		Errors   int `json:"errors"`
		Warnings int `json:"warnings"`
	}{(*plain)(r), r.Count(Error), r.Count(Warning)})
}
