package tlsrpt

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"time"
)

// Limits on received reports. RFC 8460 §5.2 mentions ten megabytes as a
// commonly observed receiver limit; a gzipped report that inflates past
// MaxReportSize is a gzip bomb, not a report.
const (
	// MaxReportSize bounds a report's JSON, after decompression.
	MaxReportSize = 16 << 20
	// MaxMailSize bounds a report mail.
	MaxMailSize = 32 << 20

	maxMIMEParts = 64 // parts looked at in one mail, all levels together
	maxMIMEDepth = 4  // nesting of multiparts and message/rfc822
)

// Errors of report parsing, matched with errors.Is.
var (
	// ErrInvalidReport: the report is not RFC 8460 JSON, or lacks what
	// the RFC requires. A *ReportError says which field.
	ErrInvalidReport = errors.New("tlsrpt: invalid report")
	// ErrTooLarge: the report or the mail exceeds MaxReportSize or
	// MaxMailSize.
	ErrTooLarge = errors.New("tlsrpt: report too large")
	// ErrNoReport: the mail has no part holding a report.
	ErrNoReport = errors.New("tlsrpt: no report in the mail")
)

// ReportError says what is wrong in a received report.
type ReportError struct {
	// Field is the JSON path of the faulty field, such as
	// "policies[0].summary.total-failure-session-count".
	Field string
	// Reason says what was expected and what was found.
	Reason string
	// Err is the error reading the report met, if any.
	Err error
}

func (e *ReportError) Error() string {
	if e.Field == "" {
		return "tlsrpt: invalid report: " + e.Reason
	}
	return "tlsrpt: invalid report: " + e.Field + ": " + e.Reason
}

// Unwrap returns ErrInvalidReport and Err.
func (e *ReportError) Unwrap() []error { return []error{ErrInvalidReport, e.Err} }

// The wire form of a report: pointers tell a missing field from a zero
// one, so that what RFC 8460 §4.4 requires can be required and the rest
// tolerated.
type (
	wireReport struct {
		OrganizationName *string              `json:"organization-name"`
		DateRange        *wireDateRange       `json:"date-range"`
		ContactInfo      *string              `json:"contact-info"`
		ReportID         *string              `json:"report-id"`
		Policies         *[]*wirePolicyResult `json:"policies"`
	}
	wireDateRange struct {
		Start *string `json:"start-datetime"`
		End   *string `json:"end-datetime"`
	}
	wirePolicyResult struct {
		Policy         *wirePolicy    `json:"policy"`
		Summary        *wireSummary   `json:"summary"`
		FailureDetails []*wireFailure `json:"failure-details"`
	}
	wirePolicy struct {
		Type    *string      `json:"policy-type"`
		Strings stringOrList `json:"policy-string"`
		Domain  *string      `json:"policy-domain"`
		MXHosts stringOrList `json:"mx-host"`
	}
	wireSummary struct {
		Successful *int64 `json:"total-successful-session-count"`
		Failed     *int64 `json:"total-failure-session-count"`
	}
	wireFailure struct {
		ResultType            *string `json:"result-type"`
		SendingMTAIP          *string `json:"sending-mta-ip"`
		ReceivingMXHostname   *string `json:"receiving-mx-hostname"`
		ReceivingMXHelo       *string `json:"receiving-mx-helo"`
		ReceivingIP           *string `json:"receiving-ip"`
		FailedSessionCount    *int64  `json:"failed-session-count"`
		AdditionalInformation *string `json:"additional-information"`
		FailureReasonCode     *string `json:"failure-reason-code"`
	}
)

// stringOrList accepts a JSON array of strings, a single string (which
// some senders write for mx-host), or null.
type stringOrList []string

func (l *stringOrList) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*l = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*l = []string{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("expected a string or an array of strings")
	}
	*l = list
	return nil
}

// ParseReport parses a received report: RFC 8460 §4.4 JSON, or the same
// gzipped (recognised by its magic number, whatever the media type said).
//
// It is strict on what the RFC requires (organization-name, date-range
// with two RFC 3339 date-times, report-id, policies each with a
// policy-type and a summary of two non-negative integer counts, failure
// details each with a result-type and a count) and tolerant of what big
// senders are seen to emit: failure details without sending-mta-ip or
// receiving-mx-hostname or with them empty, contact-info null or missing,
// policy-string or policy-domain missing, mx-host as a single string, an
// end-datetime at the next midnight, date-times without a zone offset
// (read as UTC), unknown result types and extra fields.
func ParseReport(r io.Reader) (*Report, error) {
	return parseReport(r, MaxReportSize)
}

// parseReport is ParseReport with the size limit as a parameter, so that
// tests need not inflate 16 MiB.
func parseReport(r io.Reader, limit int) (*Report, error) {
	data, err := readReport(r, limit)
	if err != nil {
		return nil, err
	}
	var w wireReport
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&w); err != nil {
		return nil, &ReportError{Reason: "expected RFC 8460 JSON: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &ReportError{Reason: "expected one JSON object, found more after it"}
	}
	return w.report()
}

// readReport reads a report, inflating it when gzipped, within limit.
func readReport(r io.Reader, limit int) ([]byte, error) {
	br := bufio.NewReader(io.LimitReader(r, int64(limit)+1))
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, &ReportError{Reason: "expected gzip data: " + err.Error(), Err: err}
		}
		zr.Multistream(false)
		data, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
		if err != nil {
			return nil, &ReportError{Reason: "expected gzip data: " + err.Error(), Err: err}
		}
		if len(data) > limit {
			return nil, fmt.Errorf("%w: inflates past %d bytes", ErrTooLarge, limit)
		}
		return data, nil
	}
	data, err := io.ReadAll(br)
	if err != nil {
		return nil, &ReportError{Reason: "reading the report: " + err.Error(), Err: err}
	}
	if len(data) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), nil
}

func (w *wireReport) report() (*Report, error) {
	r := &Report{}
	var err error
	if r.OrganizationName, err = requireString("organization-name", w.OrganizationName); err != nil {
		return nil, err
	}
	if r.ReportID, err = requireString("report-id", w.ReportID); err != nil {
		return nil, err
	}
	if w.ContactInfo != nil {
		r.ContactInfo = *w.ContactInfo
	}
	if w.DateRange == nil {
		return nil, &ReportError{Field: "date-range", Reason: "expected an object, found none"}
	}
	if r.DateRange.Start, err = parseDateTime("date-range.start-datetime", w.DateRange.Start); err != nil {
		return nil, err
	}
	if r.DateRange.End, err = parseDateTime("date-range.end-datetime", w.DateRange.End); err != nil {
		return nil, err
	}
	if r.DateRange.End.Before(r.DateRange.Start) {
		return nil, &ReportError{Field: "date-range", Reason: "expected the end after the start, found it before"}
	}
	if w.Policies == nil {
		return nil, &ReportError{Field: "policies", Reason: "expected an array, found none"}
	}
	r.Policies = make([]PolicyResult, 0, len(*w.Policies))
	for i, wp := range *w.Policies {
		pr, err := wp.result(fmt.Sprintf("policies[%d]", i))
		if err != nil {
			return nil, err
		}
		r.Policies = append(r.Policies, pr)
	}
	return r, nil
}

func (wp *wirePolicyResult) result(path string) (PolicyResult, error) {
	var pr PolicyResult
	if wp == nil || wp.Policy == nil {
		return pr, &ReportError{Field: path + ".policy", Reason: "expected an object, found none"}
	}
	typ, err := requireString(path+".policy.policy-type", wp.Policy.Type)
	if err != nil {
		return pr, err
	}
	// RFC 8460 §4.4: "the only three valid choices".
	if !PolicyType(typ).Known() {
		return pr, &ReportError{Field: path + ".policy.policy-type", Reason: fmt.Sprintf("expected sts, tlsa or no-policy-found, found %q", typ)}
	}
	pr.Policy = Policy{Type: PolicyType(typ), Strings: wp.Policy.Strings, MXHosts: wp.Policy.MXHosts}
	if wp.Policy.Domain != nil {
		pr.Policy.Domain = normalizeDomain(*wp.Policy.Domain)
	}
	if wp.Summary == nil {
		return pr, &ReportError{Field: path + ".summary", Reason: "expected an object, found none"}
	}
	if pr.Summary.TotalSuccessfulSessionCount, err = requireCount(path+".summary.total-successful-session-count", wp.Summary.Successful); err != nil {
		return pr, err
	}
	if pr.Summary.TotalFailureSessionCount, err = requireCount(path+".summary.total-failure-session-count", wp.Summary.Failed); err != nil {
		return pr, err
	}
	for i, wf := range wp.FailureDetails {
		fpath := fmt.Sprintf("%s.failure-details[%d]", path, i)
		if wf == nil {
			return pr, &ReportError{Field: fpath, Reason: "expected an object, found null"}
		}
		fd := FailureDetail{
			SendingMTAIP:          optional(wf.SendingMTAIP),
			ReceivingMXHostname:   optional(wf.ReceivingMXHostname),
			ReceivingMXHelo:       optional(wf.ReceivingMXHelo),
			ReceivingIP:           optional(wf.ReceivingIP),
			AdditionalInformation: optional(wf.AdditionalInformation),
			FailureReasonCode:     optional(wf.FailureReasonCode),
		}
		rt, err := requireString(fpath+".result-type", wf.ResultType)
		if err != nil {
			return pr, err
		}
		fd.ResultType = ResultType(rt)
		if fd.FailedSessionCount, err = requireCount(fpath+".failed-session-count", wf.FailedSessionCount); err != nil {
			return pr, err
		}
		pr.FailureDetails = append(pr.FailureDetails, fd)
	}
	return pr, nil
}

func requireString(field string, s *string) (string, error) {
	if s == nil || *s == "" {
		return "", &ReportError{Field: field, Reason: "expected a non-empty string, found none"}
	}
	return *s, nil
}

func requireCount(field string, n *int64) (int64, error) {
	if n == nil {
		return 0, &ReportError{Field: field, Reason: "expected an integer, found none"}
	}
	if *n < 0 {
		return 0, &ReportError{Field: field, Reason: fmt.Sprintf("expected a count of at least 0, found %d", *n)}
	}
	return *n, nil
}

func optional(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// parseDateTime parses an RFC 3339 §5.6 date-time (RFC 8460 §4.4). A
// date-time without a zone offset ("2023-01-10T00:00:00", which
// Microsoft's reports carried in 2023) is read as UTC, the zone RFC 8460
// §4.1 has reports use: refusing it would throw the whole report away.
func parseDateTime(field string, s *string) (time.Time, error) {
	if s == nil {
		return time.Time{}, &ReportError{Field: field, Reason: "expected an RFC 3339 date-time, found none"}
	}
	t, err := time.Parse(time.RFC3339, *s)
	if err != nil {
		var err2 error
		if t, err2 = time.ParseInLocation("2006-01-02T15:04:05.999999999", *s, time.UTC); err2 != nil {
			return time.Time{}, &ReportError{Field: field, Reason: fmt.Sprintf("expected an RFC 3339 date-time, found %q", truncate(*s, 64))}
		}
	}
	return t, nil
}

// ParseReportMail finds the report in a report mail (RFC 8460 §5.3): the
// first MIME part of type application/tlsrpt+gzip or application/tlsrpt+json
// (or a generic gzip, JSON or octet-stream part whose file name ends in
// .json.gz or .json), in any multipart and in a forwarded message/rfc822,
// and parses it. A policy-domain missing from the report is taken from
// the TLS-Report-Domain header field.
func ParseReportMail(r io.Reader) (*Report, error) {
	lr := &io.LimitedReader{R: r, N: MaxMailSize + 1}
	msg, err := mail.ReadMessage(lr)
	if err != nil {
		return nil, fmt.Errorf("%w: reading the mail: %v", ErrNoReport, err)
	}
	w := &mimeWalk{}
	rep, err := w.find(textproto.MIMEHeader(msg.Header), msg.Body, 0)
	if lr.N <= 0 {
		return nil, fmt.Errorf("%w: the mail exceeds %d bytes", ErrTooLarge, MaxMailSize)
	}
	if err != nil {
		return nil, err
	}
	if rep == nil {
		return nil, ErrNoReport
	}
	if domain := normalizeDomain(strings.TrimSpace(msg.Header.Get("TLS-Report-Domain"))); domain != "" {
		for i := range rep.Policies {
			if rep.Policies[i].Policy.Domain == "" {
				rep.Policies[i].Policy.Domain = domain
			}
		}
	}
	return rep, nil
}

// mimeWalk searches a mail's MIME tree for the report part, bounding the
// parts it looks at.
type mimeWalk struct {
	parts int
}

func (w *mimeWalk) find(h textproto.MIMEHeader, body io.Reader, depth int) (*Report, error) {
	w.parts++
	if w.parts > maxMIMEParts || depth > maxMIMEDepth {
		return nil, fmt.Errorf("%w: expected at most %d MIME parts nested %d deep", ErrNoReport, maxMIMEParts, maxMIMEDepth)
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, nil // an unreadable part is not the report; look further
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		if params["boundary"] == "" {
			return nil, nil
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil, nil
			}
			if err != nil {
				return nil, fmt.Errorf("%w: reading a MIME part: %v", ErrNoReport, err)
			}
			rep, err := w.find(p.Header, p, depth+1)
			if rep != nil || err != nil {
				return rep, err
			}
		}
	case mt == "message/rfc822":
		inner, err := mail.ReadMessage(body)
		if err != nil {
			return nil, nil
		}
		return w.find(textproto.MIMEHeader(inner.Header), inner.Body, depth+1)
	case isReportPart(mt, h):
		return ParseReport(decodeTransfer(h.Get("Content-Transfer-Encoding"), body))
	}
	return nil, nil
}

// isReportPart reports whether a leaf part holds a report: by media type
// (RFC 8460 §6.4, §6.5), or by file name for senders that label the part
// generically.
func isReportPart(mt string, h textproto.MIMEHeader) bool {
	switch mt {
	case MediaTypeGzip, MediaTypeJSON:
		return true
	case "application/gzip", "application/x-gzip", "application/json", "application/octet-stream":
		name := ""
		if _, p, err := mime.ParseMediaType(h.Get("Content-Disposition")); err == nil {
			name = p["filename"]
		}
		if _, p, err := mime.ParseMediaType(h.Get("Content-Type")); err == nil && name == "" {
			name = p["name"]
		}
		name = strings.ToLower(name)
		return strings.HasSuffix(name, ".json.gz") || strings.HasSuffix(name, ".json")
	}
	return false
}

func decodeTransfer(cte string, body io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		// The decoder skips CR and LF; other white space is stripped too.
		return base64.NewDecoder(base64.StdEncoding, &stripSpace{r: body})
	case "quoted-printable":
		return quotedprintable.NewReader(body)
	}
	return body
}

// stripSpace drops spaces and tabs, which some senders leave in base64.
type stripSpace struct{ r io.Reader }

func (s *stripSpace) Read(p []byte) (int, error) {
	for {
		n, err := s.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if c != ' ' && c != '\t' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// DomainSummary sums up the reports received about one policy of one
// policy domain.
type DomainSummary struct {
	Domain string
	// PolicyType is the type of the policy summed up: a domain with both
	// MTA-STS and DANE has one summary of each, since senders report the
	// same sessions under both (Microsoft's reports do) and adding them
	// would count each session twice.
	PolicyType PolicyType
	// Reports is the number of reports that mention the domain's policy
	// of this type.
	Reports int
	// Organizations lists the senders of those reports, sorted.
	Organizations []string
	// Start and End span the date-ranges of the reports.
	Start, End time.Time
	// Successful and Failed sum the summaries.
	Successful, Failed int64
	// Failures sums the failed sessions per result type, from the failure
	// details.
	Failures map[ResultType]int64
}

// Summarize sums up a batch of reports per policy domain and policy type
// (a policy without a domain counts under ""), sorted by domain, then
// type.
func Summarize(reports []*Report) []DomainSummary {
	type key struct {
		domain string
		typ    PolicyType
	}
	sums := make(map[key]*DomainSummary)
	orgs := make(map[key]map[string]bool)
	for _, r := range reports {
		seen := make(map[key]bool)
		for _, p := range r.Policies {
			k := key{normalizeDomain(p.Policy.Domain), p.Policy.Type}
			s := sums[k]
			if s == nil {
				s = &DomainSummary{Domain: k.domain, PolicyType: k.typ, Failures: make(map[ResultType]int64),
					Start: r.DateRange.Start, End: r.DateRange.End}
				sums[k] = s
				orgs[k] = make(map[string]bool)
			}
			if !seen[k] {
				seen[k] = true
				s.Reports++
				orgs[k][r.OrganizationName] = true
				if r.DateRange.Start.Before(s.Start) {
					s.Start = r.DateRange.Start
				}
				if r.DateRange.End.After(s.End) {
					s.End = r.DateRange.End
				}
			}
			s.Successful += p.Summary.TotalSuccessfulSessionCount
			s.Failed += p.Summary.TotalFailureSessionCount
			for _, fd := range p.FailureDetails {
				s.Failures[fd.ResultType] += fd.FailedSessionCount
			}
		}
	}
	keys := slices.SortedFunc(maps.Keys(sums), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.domain, b.domain), cmp.Compare(a.typ, b.typ))
	})
	out := make([]DomainSummary, 0, len(keys))
	for _, k := range keys {
		s := sums[k]
		s.Organizations = slices.Sorted(maps.Keys(orgs[k]))
		out = append(out, *s)
	}
	return out
}
