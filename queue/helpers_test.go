package queue_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/queue"
)

// clock is a settable clock for tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// sent is one delivery the fake deliverer saw.
type sent struct {
	From   string
	Rcpts  []delivery.Recipient
	Body   []byte
	Report bool
	// RequireTLS is the message's REQUIRETLS flag.
	RequireTLS bool
	Return     smtp.DSNReturn
	EnvID      string
}

// scripted is a Deliverer whose replies are set per recipient: each
// attempt takes the next status from the recipient's script; when the
// script is used up, or for recipients without one, it delivers.
type scripted struct {
	mu      sync.Mutex
	script  map[string][]delivery.Status
	sent    []sent
	delay   time.Duration
	running map[string]int // per domain, now
	peak    map[string]int // per domain, highest seen
	// edit, when set, changes each result before it is returned.
	edit func(*delivery.Result)
}

func newScripted() *scripted {
	return &scripted{script: map[string][]delivery.Status{}, running: map[string]int{}, peak: map[string]int{}}
}

func (s *scripted) set(addr string, st ...delivery.Status) {
	s.mu.Lock()
	s.script[addr] = st
	s.mu.Unlock()
}

func (s *scripted) Deliver(ctx context.Context, m *delivery.Message) ([]delivery.Result, error) {
	body, err := io.ReadAll(io.NewSectionReader(m.Body, 0, m.Size))
	if err != nil {
		return nil, err
	}
	domain := m.Recipients[0].Address[strings.LastIndexByte(m.Recipients[0].Address, '@')+1:]
	s.mu.Lock()
	s.running[domain]++
	s.peak[domain] = max(s.peak[domain], s.running[domain])
	delay := s.delay
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running[domain]--
		s.mu.Unlock()
	}()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var results []delivery.Result
	var accepted []delivery.Recipient
	for _, r := range m.Recipients {
		st := delivery.Delivered
		if sc := s.script[r.Address]; len(sc) > 0 {
			st, s.script[r.Address] = sc[0], sc[1:]
		}
		res := delivery.Result{Recipient: r.Address, Status: st, Remote: true, Session: delivery.Session{MXHost: "mx." + domain}}
		switch st {
		case delivery.Delivered:
			res.Code, res.Enhanced, res.Text = 250, smtp.EnhancedCode{2, 0, 0}, "OK queued as 123"
			accepted = append(accepted, r)
		case delivery.TemporaryFailure:
			res.Code, res.Enhanced, res.Text = 451, smtp.EnhancedCode{4, 7, 1}, "greylisted, try again"
			res.Err = &delivery.Error{Temporary: true, Code: 451, Enhanced: res.Enhanced, Message: res.Text}
		case delivery.PermanentFailure:
			res.Code, res.Enhanced, res.Text = 550, smtp.EnhancedCode{5, 1, 1}, "no such user\r\nInjected: header"
			res.Err = &delivery.Error{Code: 550, Enhanced: res.Enhanced, Message: res.Text}
		}
		if s.edit != nil {
			s.edit(&res)
		}
		results = append(results, res)
	}
	if len(accepted) > 0 {
		s.sent = append(s.sent, sent{From: m.From, Rcpts: accepted, Body: body, Report: m.TLSReport, RequireTLS: m.RequireTLS, Return: m.Return, EnvID: m.EnvID})
	}
	return results, nil
}

// onResult sets edit.
func (s *scripted) onResult(edit func(*delivery.Result)) {
	s.mu.Lock()
	s.edit = edit
	s.mu.Unlock()
}

// delivered returns the deliveries made so far.
func (s *scripted) delivered() []sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sent(nil), s.sent...)
}

// to returns the deliveries to addr.
func (s *scripted) to(addr string) []sent {
	var out []sent
	for _, m := range s.delivered() {
		for _, r := range m.Rcpts {
			if r.Address == addr {
				out = append(out, m)
			}
		}
	}
	return out
}

// harness is a running queue on a MemoryStore with a scripted deliverer.
type harness struct {
	q     *queue.Queue
	store queue.Store
	d     *scripted
	clock *clock
	stop  func()
}

func start(t *testing.T, store queue.Store, d queue.Deliverer, clk *clock, edit func(*queue.Config)) *queue.Queue {
	t.Helper()
	cfg := queue.Config{
		Store: store, Deliverer: d, Hostname: "mta.sealpost.test", Now: clk.Now,
		PollInterval: 5 * time.Millisecond,
		Retry:        queue.Backoff{Initial: time.Minute, Max: time.Hour, Jitter: -1},
	}
	if edit != nil {
		edit(&cfg)
	}
	q, err := queue.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
	return q
}

func newHarness(t *testing.T, edit func(*queue.Config)) *harness {
	h := &harness{store: &queue.MemoryStore{}, d: newScripted(), clock: newClock()}
	h.q = start(t, h.store, h.d, h.clock, edit)
	return h
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// attempts returns the attempts of a message's recipient, -1 once the
// message is gone.
func attempts(t *testing.T, q *queue.Queue, id queue.ID, rcpt int) int {
	env, err := q.Inspect(context.Background(), id)
	if errors.Is(err, queue.ErrNotFound) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	return env.Recipients[rcpt].Attempts
}

func gone(q *queue.Queue, id queue.ID) func() bool {
	return func() bool {
		_, err := q.Inspect(context.Background(), id)
		return errors.Is(err, queue.ErrNotFound)
	}
}

const testMessage = "From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: test\r\nMessage-ID: <1@example.org>\r\n\r\nHello.\r\n"

func enqueue(t *testing.T, q *queue.Queue, env *queue.Envelope) queue.ID {
	t.Helper()
	id, err := q.Enqueue(context.Background(), env, []byte(testMessage))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func rcpts(addrs ...string) []queue.Recipient {
	var out []queue.Recipient
	for _, a := range addrs {
		out = append(out, queue.Recipient{Addr: a})
	}
	return out
}

// dsn is a parsed delivery status notification.
type dsn struct {
	// Global says it is the RFC 6533 internationalized form.
	Global     bool
	Header     mail.Header
	Human      string
	PerMessage textproto.MIMEHeader
	Recipients []textproto.MIMEHeader
	// ReturnedType is the media type of the third part; Returned its
	// content.
	ReturnedType string
	Returned     []byte
}

// parseDSN parses msg as RFC 3464 says a DSN is made, failing on any
// deviation.
func parseDSN(t *testing.T, msg []byte) *dsn {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("DSN is not a message: %v", err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	report := params["report-type"]
	if err != nil || mt != "multipart/report" || report != "delivery-status" && report != "global-delivery-status" {
		t.Fatalf("DSN Content-Type = %q (%v), want multipart/report; report-type=delivery-status or global-delivery-status", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var parts []*multipart.Part
	var bodies [][]byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("DSN part: %v", err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
		bodies = append(bodies, b)
	}
	if len(parts) != 3 {
		t.Fatalf("DSN has %d parts, want 3", len(parts))
	}
	types := make([]string, 3)
	for i, p := range parts {
		types[i], _, _ = mime.ParseMediaType(p.Header.Get("Content-Type"))
	}
	if types[0] != "text/plain" || types[1] != "message/"+report {
		t.Fatalf("DSN part types = %v, want text/plain, message/%s, ...", types, report)
	}
	d := &dsn{Global: report == "global-delivery-status", Header: m.Header, Human: string(bodies[0]), ReturnedType: types[2], Returned: bodies[2]}
	// RFC 3464: the 7-bit form is ASCII; 8-bit parts of the global form
	// (RFC 6533) say so.
	for i, p := range parts[1:] {
		if !isASCII(bodies[i+1]) && p.Header.Get("Content-Transfer-Encoding") != "8bit" {
			t.Errorf("DSN part %s has 8-bit content without Content-Transfer-Encoding: 8bit", types[i+1])
		}
	}
	if !d.Global && !isASCII(bodies[1]) {
		t.Errorf("message/delivery-status has non-ASCII content:\n%s", bodies[1])
	}
	groups := bytes.Split(bytes.ReplaceAll(bodies[1], []byte("\r\n"), []byte("\n")), []byte("\n\n"))
	for i, g := range groups {
		g = bytes.TrimSpace(g)
		if len(g) == 0 {
			continue
		}
		h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(g, "\n\n"...)))).ReadMIMEHeader()
		if err != nil {
			t.Fatalf("delivery-status group %d: %v\n%s", i, err, g)
		}
		if i == 0 {
			d.PerMessage = h
		} else {
			d.Recipients = append(d.Recipients, h)
		}
	}
	return d
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// recipient returns the group of fields about addr, or whose
// Final-Recipient is addr when it has a type ("utf-8; ...").
func (d *dsn) recipient(t *testing.T, addr string) textproto.MIMEHeader {
	t.Helper()
	want := addr
	if !strings.Contains(addr, ";") {
		want = "rfc822; " + addr
	}
	for _, r := range d.Recipients {
		if r.Get("Final-Recipient") == want {
			return r
		}
	}
	t.Fatalf("DSN has no recipient %s: %v", addr, d.Recipients)
	return nil
}

func checkFields(t *testing.T, what string, h textproto.MIMEHeader, want map[string]string) {
	t.Helper()
	for k, v := range want {
		got := h.Get(k)
		switch {
		case v == "*" && got == "":
			t.Errorf("%s: %s missing", what, k)
		case v == "-" && got != "":
			t.Errorf("%s: %s = %q, want none", what, k, got)
		case v != "*" && v != "-" && got != v:
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
}

func dateField(t *testing.T, what, v string) time.Time {
	t.Helper()
	noWeekday(t, what, v)
	tm, err := mail.ParseDate(v)
	if err != nil {
		t.Errorf("%s %q is not an RFC 5322 date: %v", what, v, err)
	}
	return tm
}

var _ = fmt.Sprint

// noWeekday fails the test when a DSN date field starts with a day of the
// week, which mox's DSN parser refuses (see queue/doc.go).
func noWeekday(t *testing.T, what, v string) {
	t.Helper()
	if i := strings.IndexByte(v, ','); i >= 0 {
		t.Errorf("%s %q has a day of the week", what, v)
	}
}
