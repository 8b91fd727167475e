package tlsrpt

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Report is an aggregate report, the JSON object of RFC 8460 §4.4.
type Report struct {
	// OrganizationName is the organization responsible for the report.
	OrganizationName string `json:"organization-name"`
	// DateRange is the period the report covers.
	DateRange DateRange `json:"date-range"`
	// ContactInfo is the address of the party responsible for the report
	// (RFC 5322 addr-spec).
	ContactInfo string `json:"contact-info"`
	// ReportID identifies the report uniquely.
	ReportID string `json:"report-id"`
	// Policies holds one entry per policy sessions were held to.
	Policies []PolicyResult `json:"policies"`
}

// DateRange is the "date-range" of a report: RFC 3339 date-times.
type DateRange struct {
	Start time.Time `json:"start-datetime"`
	End   time.Time `json:"end-datetime"`
}

// PolicyResult is one entry of "policies": a policy and what happened
// under it.
type PolicyResult struct {
	Policy         Policy          `json:"policy"`
	Summary        Summary         `json:"summary"`
	FailureDetails []FailureDetail `json:"failure-details,omitempty"`
}

// Summary is the "summary" of a policy entry (RFC 8460 §4.2).
type Summary struct {
	TotalSuccessfulSessionCount int64 `json:"total-successful-session-count"`
	TotalFailureSessionCount    int64 `json:"total-failure-session-count"`
}

// FailureDetail is one entry of "failure-details": the failed sessions
// that share a result type, addresses, host names and reason.
type FailureDetail struct {
	ResultType ResultType `json:"result-type"`
	// SendingMTAIP, ReceivingIP: IPv4 dotted-decimal or IPv6 text.
	SendingMTAIP        string `json:"sending-mta-ip,omitempty"`
	ReceivingMXHostname string `json:"receiving-mx-hostname,omitempty"`
	// ReceivingMXHelo is optional in RFC 8460 §4.4.
	ReceivingMXHelo    string `json:"receiving-mx-helo,omitempty"`
	ReceivingIP        string `json:"receiving-ip,omitempty"`
	FailedSessionCount int64  `json:"failed-session-count"`
	// AdditionalInformation is a URI; optional in RFC 8460 §4.4.
	AdditionalInformation string `json:"additional-information,omitempty"`
	FailureReasonCode     string `json:"failure-reason-code,omitempty"`
}

// ReportHeader is what a report says about who sent it.
type ReportHeader struct {
	// OrganizationName is the "organization-name".
	OrganizationName string
	// ContactInfo is the "contact-info" address. Its domain is the
	// submitter named in the report's mail and file name (RFC 8460 §5.3).
	ContactInfo string
	// ReportID is the "report-id"; see NewReportID.
	ReportID string
}

// NewReport builds the report of one UTC day from the counts of one
// policy domain (as Store.DayCounts returns them). The date-range is the
// whole day, 00:00:00Z to 23:59:59Z (RFC 8460 §4.1). Entries of the same
// policy are summed and policies without sessions left out. The same
// arguments give the same report: policies and failure details are sorted.
func NewReport(h ReportHeader, day Day, counts []Counts) *Report {
	byPolicy := make(map[PolicyID]*Counts)
	var order []PolicyID
	for i := range counts {
		c := &counts[i]
		id := c.Policy.ID()
		m := byPolicy[id]
		if m == nil {
			m = &Counts{Day: day, Policy: c.Policy, Failures: make(map[Failure]int64)}
			byPolicy[id] = m
			order = append(order, id)
		}
		m.Successful += c.Successful
		for f, n := range c.Failures {
			m.Failures[f] += n
		}
	}
	r := &Report{
		OrganizationName: h.OrganizationName,
		DateRange:        DateRange{Start: day.Start(), End: day.End()},
		ContactInfo:      h.ContactInfo,
		ReportID:         h.ReportID,
		Policies:         []PolicyResult{},
	}
	for _, id := range order {
		if pr, ok := policyResult(byPolicy[id]); ok {
			r.Policies = append(r.Policies, pr)
		}
	}
	slices.SortFunc(r.Policies, func(a, b PolicyResult) int { return comparePolicy(&a.Policy, &b.Policy) })
	return r
}

// policyResult turns the counts of one policy into its report entry; ok
// is false when there were no sessions.
func policyResult(c *Counts) (pr PolicyResult, ok bool) {
	p := c.Policy.clone()
	pr.Policy = Policy{Type: p.Type, Strings: p.Strings, Domain: p.Domain, MXHosts: p.MXHosts}
	pr.Summary.TotalSuccessfulSessionCount = c.Successful
	for f, n := range c.Failures {
		if n <= 0 {
			continue
		}
		pr.Summary.TotalFailureSessionCount += n
		pr.FailureDetails = append(pr.FailureDetails, FailureDetail{
			ResultType:            f.ResultType,
			SendingMTAIP:          addrString(f.SendingMTAIP.Unmap()),
			ReceivingMXHostname:   f.ReceivingMXHostname,
			ReceivingMXHelo:       f.ReceivingMXHelo,
			ReceivingIP:           addrString(f.ReceivingIP.Unmap()),
			FailedSessionCount:    n,
			AdditionalInformation: f.AdditionalInformation,
			FailureReasonCode:     f.FailureReasonCode,
		})
	}
	slices.SortFunc(pr.FailureDetails, compareFailureDetail)
	total := pr.Summary.TotalSuccessfulSessionCount + pr.Summary.TotalFailureSessionCount
	return pr, total > 0
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func comparePolicy(a, b *Policy) int {
	return cmp.Or(
		cmp.Compare(a.Domain, b.Domain),
		cmp.Compare(a.Type, b.Type),
		slices.Compare(a.Strings, b.Strings),
		slices.Compare(a.MXHosts, b.MXHosts),
	)
}

func compareFailureDetail(a, b FailureDetail) int {
	return cmp.Or(
		cmp.Compare(a.ResultType, b.ResultType),
		cmp.Compare(a.ReceivingMXHostname, b.ReceivingMXHostname),
		cmp.Compare(a.ReceivingIP, b.ReceivingIP),
		cmp.Compare(a.SendingMTAIP, b.SendingMTAIP),
		cmp.Compare(a.ReceivingMXHelo, b.ReceivingMXHelo),
		cmp.Compare(a.FailureReasonCode, b.FailureReasonCode),
		cmp.Compare(a.AdditionalInformation, b.AdditionalInformation),
		cmp.Compare(a.FailedSessionCount, b.FailedSessionCount),
	)
}

// Summary returns the sums of the report's policy summaries.
func (r *Report) Summary() Summary {
	var s Summary
	for _, p := range r.Policies {
		s.TotalSuccessfulSessionCount += p.Summary.TotalSuccessfulSessionCount
		s.TotalFailureSessionCount += p.Summary.TotalFailureSessionCount
	}
	return s
}

// JSON returns the report as compact JSON.
func (r *Report) JSON() ([]byte, error) { return json.Marshal(r) }

// NewReportID returns a new report ID of the form
// "2020-04-18.example.net.<random>@<submitter>": unique (128 random bits),
// and usable as is in the Report-ID of the mail's Subject, which RFC 8460
// §5.3 wants in msg-id form, and as the file name's unique-id (the random
// part, letters and digits only).
func NewReportID(day Day, policyDomain, submitter string) string {
	return day.String() + "." + normalizeDomain(policyDomain) + "." +
		strings.ToLower(rand.Text()) + "@" + normalizeDomain(submitter)
}

// uniqueID returns the random part of a report ID made by NewReportID, or
// a hex digest of any other ID: the unique-id of the RFC 8460 §5.1 file
// name, 1*(ALPHA / DIGIT).
func uniqueID(reportID string) string {
	left, _, hasAt := strings.Cut(reportID, "@")
	if i := strings.LastIndexByte(left, '.'); hasAt && i >= 0 {
		if u := left[i+1:]; len(u) >= 16 && len(u) <= 64 && isAlnumString(u) {
			return u
		}
	}
	sum := sha256.Sum256([]byte(reportID))
	return hex.EncodeToString(sum[:16])
}

func isAlnumString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
