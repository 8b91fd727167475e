// Package queue is sealpost's durable retry queue: it accepts messages,
// keeps them on stable storage until every recipient has been delivered
// or bounced, groups recipients by domain into deliveries, retries
// temporary failures with back-off, and writes delivery status
// notifications (RFC 3464).
//
// It answers the question an MTA must answer for every message it has
// accepted: what happens to it now, and what if the process dies?
//
// # Guarantees
//
// Durable: when Enqueue returns nil, the envelope, the content and the
// due-time index entry are on stable storage — with boltstore, written
// and fsynced by a committed bbolt transaction — so the message survives
// a kill -9 and a power cut (given a disk that honours fsync). Concurrent
// Enqueue calls share transactions and fsyncs (group commit) without
// weakening this: no call returns before its own data is synced. The same
// holds for every state change the scheduler makes (a recipient delivered,
// deferred or bounced, and the DSN that goes with it, stored atomically
// together).
//
// At-least-once, not exactly-once: a recipient is marked delivered only
// after the remote server accepted the message, and that mark is a
// separate write. A crash between the two — or a lost connection after
// the server took the final dot but before its reply arrived (RFC 5321
// §6.1 lets that happen to any SMTP client) — leads to the message being
// sent again. Exactly-once would need the remote server's cooperation,
// which SMTP does not offer; losing mail is worse than a rare duplicate,
// which Message-ID lets receivers recognise. After a crash, Run ends every
// lease at start-up (Store.Recover), so interrupted deliveries are retried
// at once; the crash test in queue/boltstore demonstrates it with a real
// SIGKILL.
//
// # Scheduling
//
// Messages are indexed by the earliest next-attempt time of their pending
// recipients. Run claims due messages in batches (a B+tree seek, so the
// cost per message does not grow with the queue), leases them, and splits
// each into one delivery per recipient domain. Deliveries run under a
// global limit (Config.Workers) and a per-domain limit
// (Config.DomainWorkers, DomainLimits), domains taking turns for free
// workers; per-MX-host limits are the delivery client's
// (delivery.Config.MaxConnsPerHost), the only part that knows the hosts.
// A temporary failure is retried after an exponential back-off with
// jitter (Config.Retry; RFC 5321 §4.5.4.1); a recipient still pending
// after Config.MaxAge (5 days) bounces. Operators can Hold, Release,
// RetryNow, Delete, List and Inspect messages. Shutdown lets deliveries
// under way finish; deliveries cut short by a deadline are not counted as
// attempts, and the recipients they did not finish stay due.
//
// # Bounces
//
// After each round of attempts on a message, the recipients that failed
// permanently or expired (action "failed"), that asked for a delay
// warning (action "delayed", once per recipient, Config.DelayWarning) or
// for success notification from a next hop without DSN (action "relayed")
// are reported in one DSN to
// the envelope sender: multipart/report; report-type=delivery-status (RFC
// 6522) with a human-readable part, a message/delivery-status part (RFC
// 3464 §2.2 per-message fields Reporting-MTA, Original-Envelope-Id,
// Arrival-Date; §2.3 per-recipient fields Original-Recipient,
// Final-Recipient, Action, Status, Remote-MTA, Diagnostic-Code,
// Last-Attempt-Date, Will-Retry-Until), and the original header
// (text/rfc822-headers) or, for a failure with RET=FULL, the whole message
// (message/rfc822) (RFC 3461 §4.3). The DSN is queued like any message,
// from the null sender. No DSN is sent to the null sender nor about a DSN
// (RFC 3461 §6.2, RFC 5321 §4.5.5), so bounces cannot loop.
//
// Readings chosen:
//   - NOTIFY (RFC 3461 §4.1): without the parameter, failures are
//     reported, and delays when delay warnings are on ("NOTIFY=FAILURE" or
//     "FAILURE,DELAY" are both allowed defaults). NEVER suppresses all.
//   - SUCCESS: the queue hands mail to the recipient's MX, which is a
//     relay from the sender's point of view, so it never reports
//     "delivered". When that server supports DSN (delivery.Session.DSN),
//     it received NOTIFY with the message and reports success itself: the
//     queue sends nothing (RFC 3461 §5.2.1). When it does not, the queue
//     reports "relayed" (§5.2.2), as it does when a Deliverer does not say.
//   - Status of an expired recipient: the code of its last temporary
//     failure, as RFC 3463 asks for X.4.7 ("the code for the actual
//     problem ... should be returned rather than this code"); 4.4.7 only
//     when there was none.
//   - Internationalized DSNs (RFC 6533): a DSN about a message that needed
//     SMTPUTF8 (UTF-8 in its header or an envelope address) is
//     multipart/report; report-type=global-delivery-status, with
//     message/global-delivery-status and the original as
//     message/global-headers or message/global; UTF-8 addresses are of the
//     "utf-8" type, in the utf-8-addr-unitext form. Other DSNs stay 7-bit
//     RFC 3464 ones: a UTF-8 ORCPT is written in the utf-8-addr-xtext form
//     and non-ASCII in a server's reply becomes "?".
//   - Dates (Date, Arrival-Date, Last-Attempt-Date, Will-Retry-Until) are
//     written without the day of the week, which RFC 5322 §3.3 makes
//     optional and mox's parser refuses. DSNs were read by mox, Sisimai and
//     flufl.bounce: all three read recipient, action and status of the
//     classic DSNs; Sisimai and flufl.bounce do not recognise RFC 6533
//     global DSNs, which is why only a UTF-8 address gets one.
//   - Diagnostic-Code has type "smtp" for a remote server's reply and
//     "x-sealpost" for a failure of our own (DNS, a security requirement no
//     host met). Remote text is made safe: line breaks cannot add fields.
//
// # DKIM
//
// With Config.DKIM, a message is signed at Enqueue, once, by every signer
// for the domain of its From header field, and the signed bytes are
// stored: every retry sends the same signature. DSNs are signed for
// Config.Hostname.
//
// # TLS-RPT
//
// The queue implements tlsrpt.MailSender: report mail is queued as
// KindReport and delivered without enforcing the recipient's TLS policy,
// with its sessions not recorded (RFC 8460 §3). The reports themselves are
// the tlsrpt.Reporter's to schedule: run its Run next to Queue.Run, with
// the queue as its MailSender and Reporter.Bounced as Config.ReportBounced.
// Reporter.Run sends each day's reports at a random time early in the next
// UTC day (RFC 8460 §4.1), retries failed submissions with back-off within
// the day (§5.5) and drops old counts; the queue has no daily job of its
// own.
//
//	rep, _ := tlsrpt.NewReporter(tlsrpt.Config{
//		OrganizationName: "Example", Submitter: "example.org",
//		Store: store, MailSender: q, MailSigner: signer, // store: a *boltstore.Store
//	})
//	go rep.Run(ctx)
//	q.Run(ctx)
//
// # Observing
//
// Config.Observer's Delivered, Deferred and Bounced receive the attempt's
// delivery.Result: its Session says which MX host and address took part,
// over which TLS version, how the server was authenticated (DANE-EE,
// DANE-TA, WebPKI, ...) and under which requirement (Basis, Reason), so
// that metrics such as "delivered over DANE-EE" need nothing but the
// queue's API. A summary of that session (SessionSummary) is stored with
// the recipient as Recipient.Last.Session, so that Inspect shows how a
// recipient was delivered, or which host was refused under which policy.
//
// # Storage
//
// The queue talks to storage only through Store. MemoryStore is for tests;
// queue/boltstore keeps a node's whole state in one bbolt file (this
// queue, the MTA-STS policy cache and the TLS-RPT counts); a store on a
// database server for a fleet of senders implements the same interface
// (Claim with "FOR UPDATE SKIP LOCKED") with Config.Shared set.
// queue/storetest holds the contract tests every store must pass.
//
// # What it does not do
//
// It does not accept SMTP itself (the application's server calls
// Enqueue), convert 8-bit content to 7 bits, or expand aliases or lists.
package queue
