package queue

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/internal/dnsname"
)

// ID names a queued message. IDs are 20 characters of lower-case base32
// (digits and a–v): the enqueue time in nanoseconds, made strictly
// increasing within a Queue so that IDs sort by arrival, then 32 random
// bits so that the nodes of a fleet do not collide.
type ID string

var idEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// newID returns a fresh ID for a message enqueued at now, later than every
// ID this Queue made before.
func (q *Queue) newID(now time.Time) ID {
	t := max(now.UnixNano(), 0)
	for {
		last := q.lastID.Load()
		if t <= last {
			t = last + 1
		}
		if q.lastID.CompareAndSwap(last, t) {
			break
		}
	}
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t))
	_, _ = rand.Read(b[8:]) // crypto/rand.Read never fails (Go 1.24)
	return ID(idEncoding.EncodeToString(b[:]))
}

// State is where one recipient of a message stands.
type State uint8

// The states of a recipient. Only StatePending recipients are tried again;
// the others are final.
const (
	// StatePending: not yet delivered; the next attempt is at NextAttempt.
	StatePending State = iota
	// StateDelivered: a server accepted the message for this recipient.
	StateDelivered
	// StateBounced: delivery failed permanently or expired; the sender has
	// been notified, unless it asked not to be or is the null sender.
	StateBounced
)

func (s State) String() string {
	switch s {
	case StatePending:
		return "pending"
	case StateDelivered:
		return "delivered"
	case StateBounced:
		return "bounced"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Notify is the RFC 3461 §4.1 NOTIFY parameter of a recipient: the events
// its sender wants a DSN for.
type Notify uint8

// The NOTIFY keywords. NotifyNever excludes the others (RFC 3461 §4.1).
// The zero value means that the sender gave no NOTIFY parameter; the queue
// then reports failures and, when delay warnings are on, delays, as RFC
// 3461 §4.1 allows ("NOTIFY=FAILURE" or "NOTIFY=FAILURE,DELAY").
const (
	NotifyNever Notify = 1 << iota
	NotifySuccess
	NotifyFailure
	NotifyDelay
)

// ParseNotify parses the value of a NOTIFY parameter ("SUCCESS,DELAY").
func ParseNotify(s string) (Notify, error) {
	var n Notify
	for _, kw := range strings.Split(s, ",") {
		switch strings.ToUpper(strings.TrimSpace(kw)) {
		case "NEVER":
			n |= NotifyNever
		case "SUCCESS":
			n |= NotifySuccess
		case "FAILURE":
			n |= NotifyFailure
		case "DELAY":
			n |= NotifyDelay
		default:
			return 0, fmt.Errorf("queue: NOTIFY keyword %q: want NEVER, SUCCESS, FAILURE or DELAY", kw)
		}
	}
	if !n.valid() {
		return 0, fmt.Errorf("queue: NOTIFY %q: NEVER combined with other keywords", s)
	}
	return n, nil
}

// valid reports whether n is a NOTIFY value RFC 3461 §4.1 allows: NEVER
// must appear alone.
func (n Notify) valid() bool { return n&NotifyNever == 0 || n == NotifyNever }

// String returns the NOTIFY parameter value, or "" for the zero value.
func (n Notify) String() string {
	var kws []string
	for _, k := range []struct {
		bit Notify
		kw  string
	}{{NotifyNever, "NEVER"}, {NotifySuccess, "SUCCESS"}, {NotifyFailure, "FAILURE"}, {NotifyDelay, "DELAY"}} {
		if n&k.bit != 0 {
			kws = append(kws, k.kw)
		}
	}
	return strings.Join(kws, ",")
}

// wants reports whether a DSN for event is asked for. Without a NOTIFY
// parameter failures are reported, and delays when warn is set.
func (n Notify) wants(event Notify, warn bool) bool {
	if n == 0 {
		return event == NotifyFailure || event == NotifyDelay && warn
	}
	return n&event != 0
}

// Ret is the RFC 3461 §4.3 RET parameter: how much of the message a
// failure DSN returns.
type Ret uint8

// The RET values. The zero value lets the queue choose: the headers only,
// which RFC 3461 §4.3 permits and which keeps bounces small.
const (
	RetDefault Ret = iota
	RetHeaders
	RetFull
)

// Kind says what sort of message an Envelope carries, which decides how it
// is delivered and whether it may cause a DSN.
type Kind uint8

// The kinds of message.
const (
	// KindMessage is ordinary mail.
	KindMessage Kind = iota
	// KindDSN is a delivery status notification the queue wrote (null
	// sender; never itself the subject of a DSN).
	KindDSN
	// KindReport is TLS-RPT report mail (RFC 8460 §5.3): delivered without
	// enforcing the recipient domain's TLS policy, which may be exactly
	// what the report is about, and with its sessions not recorded, so
	// that reports never cause reports.
	KindReport
)

// Diagnostic is the last reply a recipient got, or our own failure written
// as one.
type Diagnostic struct {
	// Code is the SMTP reply code; 0 when there was no reply at all.
	Code int `json:",omitempty"`
	// Enhanced is the RFC 3463 enhanced status code, {0,0,0} if unknown.
	Enhanced [3]int `json:",omitempty"`
	// Text is the reply text or the description of our own failure.
	Text string `json:",omitempty"`
	// RemoteMTA is the host that gave the reply; empty for our own.
	RemoteMTA string `json:",omitempty"`
	// Session is how the outcome came about: the host the attempt ended
	// on, its address, the TLS version, how the server was authenticated
	// and which rule set the host's requirement. Zero when no host was
	// tried (a DNS failure, a null MX).
	Session SessionSummary `json:",omitzero"`
}

// SessionSummary is what the queue keeps of the delivery.Session an
// attempt ended on, so that Inspect shows over what a recipient was
// delivered, or which host was refused under which policy. The values are
// stored as the delivery package writes them (Session.TLSVersionName,
// Authentication.String, Basis.String), so that a stored queue reads the
// same after an upgrade; Observer callbacks get the typed delivery.Result.
type SessionSummary struct {
	// MXHost is the MX host name; IP the address connected to.
	MXHost string     `json:",omitempty"`
	IP     netip.Addr `json:",omitzero"`
	// TLSVersion is "TLS 1.3", "TLS 1.2", ..., or "plaintext"; empty when
	// no SMTP session was established.
	TLSVersion string `json:",omitempty"`
	// Auth says how the server was authenticated: "DANE-EE", "DANE-TA",
	// "WebPKI", "unauthenticated TLS", "plaintext", or "no session" when
	// the host was refused before or without one.
	Auth string `json:",omitempty"`
	// Basis is the rule that decided the host's requirement: "DANE",
	// "MTA-STS", "REQUIRETLS", "local policy", "no policy", ...
	Basis string `json:",omitempty"`
}

// summarize keeps the part of s that says how a message went.
func summarize(s *delivery.Session) SessionSummary {
	if s.MXHost == "" {
		return SessionSummary{}
	}
	sum := SessionSummary{MXHost: s.MXHost, IP: s.IP, Auth: s.Auth.String(), Basis: s.Requirement.Basis.String()}
	if s.Auth != delivery.NoSession {
		sum.TLSVersion = s.TLSVersionName()
	}
	return sum
}

// String writes the summary on one line, as
// "mx.example.com [192.0.2.1] TLS 1.3, DANE-EE (DANE)"; "" when s is zero.
func (s SessionSummary) String() string {
	if s == (SessionSummary{}) {
		return ""
	}
	var b strings.Builder
	b.WriteString(s.MXHost)
	if s.IP.IsValid() {
		b.WriteString(" [" + s.IP.String() + "]")
	}
	if s.TLSVersion != "" && s.TLSVersion != s.Auth {
		b.WriteString(" " + s.TLSVersion + ",")
	}
	b.WriteString(" " + s.Auth)
	if s.Basis != "" {
		b.WriteString(" (" + s.Basis + ")")
	}
	return b.String()
}

// Recipient is one recipient of a queued message with its own state.
type Recipient struct {
	// Addr is the forward-path, without angle brackets.
	Addr string
	// Notify is the RFC 3461 NOTIFY parameter; zero when not given.
	Notify Notify `json:",omitempty"`
	// ORcpt is the RFC 3461 §4.2 ORCPT parameter, "type;address" with the
	// address decoded from xtext (and, for the utf-8 type, from its RFC
	// 6533 §3 form: go-smtp's RcptOptions give it so); empty when not
	// given. Addresses of type rfc822 and utf-8 are passed on to the next
	// hop; other types only appear in our own DSNs.
	ORcpt string `json:",omitempty"`

	State State `json:",omitempty"`
	// Attempts counts the delivery attempts made for this recipient.
	Attempts int `json:",omitempty"`
	// NextAttempt is when a pending recipient is due.
	NextAttempt time.Time
	// LastAttempt is when the last attempt ended; zero before the first.
	LastAttempt time.Time `json:",omitzero"`
	// Last is the outcome of the last attempt.
	Last Diagnostic `json:",omitzero"`
	// Warned is set once a delay DSN was sent for this recipient, so that
	// at most one is sent.
	Warned bool `json:",omitempty"`
}

// Domain returns the lower-cased domain of the recipient's address.
func (r *Recipient) Domain() string { return addrDomain(r.Addr) }

// Envelope is everything the queue knows about a message apart from its
// content: the SMTP envelope with its RFC 3461 parameters and the state
// of each recipient.
type Envelope struct {
	ID ID
	// From is the reverse-path without angle brackets; "" is the null
	// sender, to which no DSN is ever sent (RFC 5321 §4.5.5).
	From string `json:",omitempty"`
	// Recipients in the order given at enqueue.
	Recipients []Recipient
	// Arrived is when the message was enqueued (the DSN's Arrival-Date).
	Arrived time.Time
	// EnvID is the RFC 3461 §4.4 ENVID, decoded from xtext.
	EnvID string `json:",omitempty"`
	// Ret is the RFC 3461 §4.3 RET parameter.
	Ret Ret `json:",omitempty"`
	// RequireTLS is the RFC 8689 REQUIRETLS MAIL parameter.
	RequireTLS bool `json:",omitempty"`
	// TLSOptional, SMTPUTF8 and EightBit describe the content, as
	// delivery.Message.Inspect found them at enqueue: a "TLS-Required: No"
	// header field (RFC 8689 §5), UTF-8 in the header (RFC 6531), 8-bit
	// bytes (RFC 6152).
	TLSOptional bool `json:",omitempty"`
	SMTPUTF8    bool `json:",omitempty"`
	EightBit    bool `json:",omitempty"`
	// Kind says whether this is ordinary mail, a DSN or a TLS-RPT report.
	Kind Kind `json:",omitempty"`
	// Held messages are not delivered until released by an operator.
	Held bool `json:",omitempty"`
	// Size is the length of the stored content in bytes.
	Size int64
}

// Due returns when the message must next be tried: the earliest
// NextAttempt of its pending recipients. ok is false when nothing is left
// to try or the message is held. Stores index messages by this time.
func (e *Envelope) Due() (t time.Time, ok bool) {
	if e.Held {
		return time.Time{}, false
	}
	for i := range e.Recipients {
		r := &e.Recipients[i]
		if r.State == StatePending && (!ok || r.NextAttempt.Before(t)) {
			t, ok = r.NextAttempt, true
		}
	}
	return t, ok
}

// Done reports whether every recipient is in a final state.
func (e *Envelope) Done() bool {
	for i := range e.Recipients {
		if e.Recipients[i].State == StatePending {
			return false
		}
	}
	return true
}

// Clone returns a deep copy of e.
func (e *Envelope) Clone() *Envelope {
	c := *e
	c.Recipients = append([]Recipient(nil), e.Recipients...)
	return &c
}

// Entry is a message to store: its envelope and its content, the bytes
// that go after DATA (with any DKIM signature already in place).
type Entry struct {
	Envelope *Envelope
	Body     []byte
}

// addrDomain returns the lower-cased part of addr after the last "@".
func addrDomain(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	return dnsname.Fold(addr[at+1:])
}
