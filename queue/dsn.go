package queue

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The RFC 3464 §2.3.3 actions the queue reports.
const (
	actionFailed  = "failed"
	actionDelayed = "delayed"
	actionRelayed = "relayed"
)

// dsnRecipient is one recipient's part of a DSN.
type dsnRecipient struct {
	r      Recipient
	action string
	// until is the Will-Retry-Until of a delayed recipient.
	until time.Time
}

// dsnDate is the form of every date field a DSN carries: RFC 5322 §3.3's
// date-time without the optional day of the week, which mox's DSN parser
// does not accept (and no parser tried needs).
const dsnDate = "2 Jan 2006 15:04:05 -0700"

// report adds r to the DSN of this round.
func (m *active) report(r *Recipient, action string, until time.Time) {
	m.reports = append(m.reports, dsnRecipient{r: *r, action: action, until: until})
}

// notification returns the DSN of a round of attempts on m, or nil when
// there is nothing to report or no one to report it to.
func (q *Queue) notification(m *active) (*Entry, error) {
	env := m.env
	// RFC 5321 §4.5.5 and RFC 3464 §2: never a DSN to the null sender, nor
	// about a DSN, so that notifications cannot loop.
	if len(m.reports) == 0 || env.From == "" || env.Kind == KindDSN {
		return nil, nil
	}
	body, err := m.body()
	if err != nil {
		return nil, err
	}
	msg := q.writeDSN(env, m.reports, body, q.now())
	signed, err := q.sign(msg, addrDomain("@"+q.hostname()))
	if err != nil {
		return nil, err
	}
	// RFC 8689 §5: a bounce of a REQUIRETLS message holds part of it (at
	// least its header), so it travels under REQUIRETLS too.
	dsn := q.prepare(&Envelope{Recipients: []Recipient{{Addr: env.From}}, RequireTLS: env.RequireTLS}, KindDSN, signed)
	return &Entry{Envelope: dsn, Body: signed}, nil
}

// writeDSN writes a delivery status notification (RFC 3464) as a
// multipart/report (RFC 6522) with three parts: a human-readable
// explanation, the message/delivery-status, and the original message's
// header (text/rfc822-headers) or, for a failure with RET=FULL, the whole
// original message (message/rfc822), as RFC 3461 §4.3 asks.
func (q *Queue) writeDSN(env *Envelope, reports []dsnRecipient, original []byte, now time.Time) []byte {
	host := q.hostname()
	boundary := randomBoundary()
	failed, delayed := false, false
	for _, d := range reports {
		failed = failed || d.action == actionFailed
		delayed = delayed || d.action == actionDelayed
	}
	subject := "Successful Mail Delivery Report"
	switch {
	case failed:
		subject = "Undelivered Mail Returned to Sender"
	case delayed:
		subject = "Delayed Mail (still being retried)"
	}
	var b bytes.Buffer
	hdr := func(name, value string) { fmt.Fprintf(&b, "%s: %s\r\n", name, value) }
	hdr("From", "Mail Delivery System <MAILER-DAEMON@"+host+">")
	hdr("To", "<"+env.From+">")
	hdr("Subject", subject)
	hdr("Date", now.Format(dsnDate))
	hdr("Message-ID", "<"+string(q.newID(now))+".dsn@"+host+">")
	// RFC 3834 §5: a DSN is an automatic response.
	hdr("Auto-Submitted", "auto-replied")
	hdr("MIME-Version", "1.0")
	form := formOf(env)
	hdr("Content-Type", `multipart/report; report-type=`+form.report+`; boundary="`+boundary+`"`)
	b.WriteString("\r\nThis is a MIME-encapsulated delivery status notification.\r\n")

	// Part 1: for people.
	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n", boundary)
	writeHuman(&b, host, env, reports)

	part := func(typ string, eight bool) {
		fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: %s\r\n", boundary, typ)
		if eight {
			b.WriteString("Content-Transfer-Encoding: 8bit\r\n")
		}
		b.WriteString("\r\n")
	}

	// Part 2: for programs (RFC 3464 §2).
	part(form.status, form.global)
	writeStatus(&b, host, env, reports, form.global)

	// Part 3: the original. RFC 3461 §4.3: RET=FULL returns the whole
	// message, in failure DSNs only; otherwise the header is enough.
	if failed && env.Ret == RetFull {
		part(form.full, form.global || env.EightBit)
		b.Write(toCRLF(original))
	} else {
		part(form.headers, form.global)
		b.Write(bytes.TrimRight(toCRLF(headerOf(original)), "\r\n"))
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "\r\n--%s--\r\n", boundary)
	return b.Bytes()
}

func writeHuman(b *bytes.Buffer, host string, env *Envelope, reports []dsnRecipient) {
	fmt.Fprintf(b, "This is the mail system at %s.\r\n\r\n", host)
	for _, action := range []string{actionFailed, actionDelayed, actionRelayed} {
		var lines []string
		for _, d := range reports {
			if d.action == action {
				lines = append(lines, "  <"+d.r.Addr+">: "+humanReason(d))
			}
		}
		if len(lines) == 0 {
			continue
		}
		switch action {
		case actionFailed:
			b.WriteString("Your message could not be delivered to these recipients:\r\n")
		case actionDelayed:
			fmt.Fprintf(b, "Your message, received %s, has not yet been delivered to these\r\nrecipients. Delivery is still being attempted; you do not need to send it again.\r\n", env.Arrived.Format(time.RFC1123Z))
		case actionRelayed:
			b.WriteString("Your message was handed on to the mail servers of these recipients,\r\nwhich may not report its final delivery:\r\n")
		}
		b.WriteString(strings.Join(lines, "\r\n") + "\r\n\r\n")
	}
	b.WriteString("The technical details are in the delivery-status part of this message.\r\n")
}

func humanReason(d dsnRecipient) string {
	l := d.r.Last
	var s string
	switch {
	case d.action == actionRelayed:
		s = "accepted"
	case l.RemoteMTA != "":
		s = "the server " + l.RemoteMTA + " said: " + diagString(l)
	case l.Text != "":
		s = diagString(l)
	default:
		s = "no further detail"
	}
	if d.action == actionDelayed && !d.until.IsZero() {
		s += " (retrying until " + d.until.Format(time.RFC1123Z) + ")"
	}
	return field(s)
}

func writeStatus(b *bytes.Buffer, host string, env *Envelope, reports []dsnRecipient, global bool) {
	hdr := func(name, value string) { fmt.Fprintf(b, "%s: %s\r\n", name, value) }
	// RFC 3464 §2.2: the per-message fields.
	hdr("Reporting-MTA", "dns; "+statusText(host, global))
	if env.EnvID != "" {
		hdr("Original-Envelope-Id", statusText(env.EnvID, global))
	}
	hdr("Arrival-Date", env.Arrived.Format(dsnDate))
	// RFC 3464 §2.3: one group of fields per recipient, each after a
	// blank line.
	for _, d := range reports {
		r := &d.r
		b.WriteString("\r\n")
		if typ, addr, ok := strings.Cut(r.ORcpt, ";"); ok {
			hdr("Original-Recipient", typedAddress(typ, addr, global))
		}
		hdr("Final-Recipient", typedAddress("rfc822", r.Addr, global))
		hdr("Action", d.action)
		hdr("Status", enhancedString(dsnStatus(d)))
		if r.Last.RemoteMTA != "" {
			hdr("Remote-MTA", "dns; "+statusText(r.Last.RemoteMTA, global))
			// RFC 3464 §2.3.6: the remote server's own words.
			hdr("Diagnostic-Code", "smtp; "+statusText(diagString(r.Last), global))
		} else if r.Last.Text != "" {
			hdr("Diagnostic-Code", "x-sealpost; "+statusText(diagString(r.Last), global))
		}
		if !r.LastAttempt.IsZero() {
			hdr("Last-Attempt-Date", r.LastAttempt.Format(dsnDate))
		}
		if d.action == actionDelayed && !d.until.IsZero() {
			hdr("Will-Retry-Until", d.until.Format(dsnDate))
		}
	}
}

// dsnStatus is the RFC 3464 §2.3.4 Status of a recipient: the enhanced
// code of its last reply when that has the right class, else a generic
// one. For a message that expired after temporary failures it stays the
// last temporary code, as RFC 3463 (X.4.7) asks: "the code for the actual
// problem found when delivery was attempted should be returned"; 4.4.7
// when there is none.
func dsnStatus(d dsnRecipient) [3]int {
	e := d.r.Last.Enhanced
	switch d.action {
	case actionRelayed:
		return [3]int{2, 0, 0}
	case actionDelayed:
		if e[0] == 4 {
			return e
		}
		return [3]int{4, 0, 0}
	}
	switch {
	case e[0] == 5 || e[0] == 4:
		return e
	case d.r.Last.Code/100 == 5:
		return [3]int{5, 0, 0}
	}
	return [3]int{4, 4, 7}
}

func enhancedString(e [3]int) string {
	return strconv.Itoa(e[0]) + "." + strconv.Itoa(e[1]) + "." + strconv.Itoa(e[2])
}

// maxField bounds a field value written into a DSN, well inside RFC 5322's
// 998-character line limit.
const maxField = 900

// field makes untrusted text (a remote server's reply) safe as one header
// field line: control characters become spaces, invalid UTF-8 is
// replaced, and the length is capped.
func field(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxField {
		cut := maxField
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

func randomBoundary() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "sealpost-" + hex.EncodeToString(b[:])
}
