package tlsrpt

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MailSigner adds a DKIM signature to a report mail. RFC 8460 §3: reports
// sent by mail MUST carry a valid DKIM signature by the reporting domain,
// and receivers MUST ignore those that do not. DKIMSigner is this
// package's implementation on go-msgauth; the queue's DKIM signer
// satisfies the interface too, so one key can sign bounces and reports.
type MailSigner interface {
	// Sign returns msg (CRLF line endings) with DKIM-Signature header
	// fields prepended.
	Sign(msg []byte) ([]byte, error)
}

// FileName returns the RFC 8460 §5.1 file name of a gzipped report:
// "submitter!policy-domain!begin-timestamp!end-timestamp!unique-id.json.gz",
// the timestamps in seconds since the epoch from the report's date-range
// and the unique-id taken from its report-id.
func FileName(submitter, policyDomain string, r *Report) string {
	return normalizeDomain(submitter) + "!" + normalizeDomain(policyDomain) + "!" +
		strconv.FormatInt(r.DateRange.Start.Unix(), 10) + "!" +
		strconv.FormatInt(r.DateRange.End.Unix(), 10) + "!" +
		uniqueID(r.ReportID) + ".json.gz"
}

// reportMail is what a report mail is made of.
type reportMail struct {
	from, to     string
	submitter    string
	policyDomain string
	report       *Report
	gz           []byte
	date         time.Time
}

// compose writes the report mail RFC 8460 §5.3 describes: a
// multipart/report with report-type "tlsrpt", a text/plain part for
// people and the gzipped report as application/tlsrpt+gzip, with the
// TLS-Report-Domain and TLS-Report-Submitter header fields and the
// Subject in the RFC's form. Lines end in CRLF.
func (m *reportMail) compose() []byte {
	boundary := "tlsrpt-" + rand.Text()
	name := FileName(m.submitter, m.policyDomain, m.report)
	var b bytes.Buffer
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", "<"+m.from+">")
	hdr("To", "<"+m.to+">")
	hdr("Date", m.date.Format(time.RFC1123Z))
	// RFC 8460 §5.3: "Report Domain: <policy domain> Submitter: <sending
	// MTA domain> Report-ID: <msg-id>", folded as in the RFC's example.
	hdr("Subject", "Report Domain: "+m.policyDomain+"\r\n Submitter: "+m.submitter+
		"\r\n Report-ID: <"+m.report.ReportID+">")
	hdr("Message-ID", "<"+strings.ToLower(rand.Text())+"@"+m.submitter+">")
	// RFC 8460 §5.3: both header fields MUST be present.
	hdr("TLS-Report-Domain", m.policyDomain)
	hdr("TLS-Report-Submitter", m.submitter)
	// RFC 8689 §5: deliver without the recipient's TLS policy, which RFC
	// 8460 §3 requires of report mail.
	hdr("TLS-Required", "No")
	// RFC 3834: no vacation replies to a machine.
	hdr("Auto-Submitted", "auto-generated")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", `multipart/report; report-type="tlsrpt";`+"\r\n\t"+`boundary="`+boundary+`"`)
	b.WriteString("\r\nThis is a multipart message in MIME format.\r\n")

	b.WriteString("\r\n--" + boundary + "\r\n")
	hdr("Content-Type", `text/plain; charset="us-ascii"`)
	hdr("Content-Transfer-Encoding", "7bit")
	b.WriteString("\r\n")
	sum := m.report.Summary()
	fmt.Fprintf(&b, "This is an aggregate TLS report (RFC 8460) from %s\r\n"+
		"for %s, covering %s to %s.\r\n\r\n"+
		"Successful TLS sessions: %d\r\nFailed TLS sessions: %d\r\n\r\n"+
		"The report is attached as %s.\r\n",
		m.submitter, m.policyDomain,
		m.report.DateRange.Start.Format(time.RFC3339), m.report.DateRange.End.Format(time.RFC3339),
		sum.TotalSuccessfulSessionCount, sum.TotalFailureSessionCount, name)

	b.WriteString("\r\n--" + boundary + "\r\n")
	hdr("Content-Type", MediaTypeGzip+`; name="`+name+`"`)
	hdr("Content-Transfer-Encoding", "base64")
	hdr("Content-Disposition", `attachment;`+"\r\n\t"+`filename="`+name+`"`)
	b.WriteString("\r\n")
	writeBase64Lines(&b, m.gz)
	b.WriteString("\r\n--" + boundary + "--\r\n")
	return b.Bytes()
}

// writeBase64Lines writes data in base64, 76 characters a line (RFC 2045
// §6.8), the last line without its CRLF.
func writeBase64Lines(b *bytes.Buffer, data []byte) {
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
}
