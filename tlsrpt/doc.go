// Package tlsrpt implements SMTP TLS Reporting (RFC 8460) for a sending
// MTA, and the reading of reports for the domain owners who receive them.
//
// It answers three questions. Where does a domain want its reports
// (LookupRecord, the _smtp._tls TXT record)? What happened to the TLS
// sessions we opened to its MX hosts (Recorder, which the delivery engine
// calls once per session, and Store, where the counts are kept per UTC
// day)? And how does that reach the domain (Reporter, which builds each
// day's Report and submits it by mail or HTTPS)? ParseReport,
// ParseReportMail and Summarize read the reports others send.
//
// # What it implements
//
//   - RFC 8460 §3: the _smtp._tls record (ParseRecord, LookupRecord).
//   - §4.1–§4.3: per-day aggregation of successful and failed sessions,
//     the result types (ResultType).
//   - §4.4, §4.5: the JSON report (Report), built deterministically.
//   - §5.1–§5.3: gzip, the file name (FileName), the report mail
//     (multipart/report; report-type="tlsrpt", TLS-Report-Domain,
//     TLS-Report-Submitter, the Subject), DKIM-signed (DKIMSigner).
//   - §5.4: HTTPS POST of application/tlsrpt+gzip.
//   - §5.5: retries with exponential backoff for 24 hours.
//
// # Readings chosen
//
//   - Record: "v=TLSRPTv1" must come first, case-sensitive. White space
//     around "=" and empty fields (";;") are tolerated; the rua field may
//     repeat, as the ABNF allows, and the URIs of all rua fields are the
//     destinations, each once; extensions follow the ABNF that MTA-STS's
//     record shares (internal/txtfield). An unencoded "!" in a URI (DMARC's size suffix; §3 says it MUST be
//     encoded), white space inside a URI, more than ten URIs or a record
//     over 4096 bytes make the record invalid. URIs of schemes other than
//     mailto and https are skipped. Every TXT record starting with the
//     version counts towards "several records mean none", valid or not.
//   - Aggregation: the policy domain is the recipient domain; sessions are
//     grouped per Policy (type, policy strings, mx hosts) by a content
//     hash (PolicyID), and failures per every field of Failure. At most
//     MaxFailureDetails distinct failures are kept per policy and day;
//     further ones are counted under their result type alone, so totals
//     stay exact. A result type the RFC does not define is recorded as
//     validation-failure with the name as failure-reason-code (§4.3.3).
//   - Report: the date-range is 00:00:00Z to 23:59:59Z of the day, as in
//     the RFC's example and in Google's reports; the file name's
//     timestamps are those two instants. The report-id
//     ("2020-04-18.example.com.<random>@<submitter>") is chosen at the
//     first attempt and kept by retries, and serves as the Subject's
//     Report-ID and (its random part) as the file name's unique-id.
//     Optional fields (receiving-mx-helo, additional-information,
//     failure-reason-code) and unknown ones (an empty sending-mta-ip) are
//     left out rather than written empty.
//   - Submission: the report goes to every rua. It counts as sent once one
//     destination accepted it (§3); the others are retried, each at most
//     until accepted. HTTP 2xx is success; 4xx other than 408 and 429, and
//     a mail address the MailSender refuses or that bounces (Bounced), are
//     permanent and put the destination on the suppression list for
//     SuppressFor (7 days). A report whose host's certificate does not
//     verify is posted again without verification (§3: submitters MAY
//     ignore certificate errors, and MUST deliver despite TLS failures)
//     unless Config.StrictHTTPS; only redirects that keep the POST (307,
//     308) are followed. Report mail carries "TLS-Required: No" (RFC 8689)
//     so that the MTA delivers it without the recipient's TLS policy, and
//     "Auto-Submitted: auto-generated" (RFC 3834).
//   - DKIM (DKIMSigner, on go-msgauth): one signature per configured key,
//     so an RSA and an Ed25519 key give two; relaxed/relaxed, SHA-256,
//     never "l=" (§3), the TLS-RPT header fields signed (§5.3 SHOULD).
//     Publish the key without s=: §3 asks for the tlsrpt service type, but
//     "s=email:tlsrpt" fails in dkimpy 1.1.4 and "s=tlsrpt" in go-msgauth,
//     while no s= (every type) verifies everywhere (see DKIMKey).
//   - Timing: a day's reports leave at a random time between 00:15 and
//     04:15 UTC the next day (§4.1 asks for a delay). A crash loses at most
//     the counts of one flush interval (a minute), and a crash between
//     sending and recording the send may send a report twice, under the
//     same report-id, which is what receivers de-duplicate on (§5.3).
//   - Parsing received reports: strict on what §4.4 requires
//     (organization-name, report-id, date-range as RFC 3339 date-times,
//     policies each with one of the three policy types and a summary of two
//     counts, failure details each with a result-type and a count); tolerant
//     of missing sending-mta-ip, receiving-mx-hostname, contact-info,
//     policy-string and policy-domain (taken from the TLS-Report-Domain
//     header field when the report came by mail), of mx-host as a single
//     string, of an end-datetime at the next midnight, of date-times
//     without a zone offset (Microsoft's in 2023; read as UTC), of unknown
//     result types and of extra fields. Summarize sums per policy domain
//     and policy type: a sender may report the same sessions under a
//     domain's sts and tlsa policies, as Microsoft does. Reports over MaxReportSize (before or
//     after inflation) and mails over MaxMailSize are refused.
//
// # What it does not do
//
// It does not decide result types: the delivery engine does, and hands
// each session over. It does not send reports about DANE failures to the
// MX host's own domain, only to the recipient domain. It does not convert
// internationalised domain names: names must be A-labels (§4.4). It does
// not deliver mail: a MailSender (the queue) does, and must neither
// enforce the recipient's TLS policy on report mail nor record its
// sessions (§3), so that a broken policy cannot feed a report loop.
//
// # Use
//
//	rec := tlsrpt.NewRecorder(tlsrpt.RecorderConfig{Store: store})
//	go rec.Run(ctx) // writes the counts to the store every minute
//	rep, err := tlsrpt.NewReporter(tlsrpt.Config{
//		OrganizationName: "Example Mail", Submitter: "mail.example.net",
//		Recorder: rec, Resolver: resolver,
//		MailSender: queue, MailSigner: signer, // tlsrpt.NewDKIMSigner(keys...)
//	})
//	go rep.Run(ctx) // sends yesterday's reports every night
//	// and the delivery engine, after each TLS session:
//	rec.Record(tlsrpt.Session{Policy: policy, Failure: failure})
package tlsrpt
