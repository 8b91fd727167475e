package tlsrpt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that Sleep advances at once; it cancels the run
// when it reaches stopAt.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	stopAt time.Time
	cancel context.CancelFunc
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	if d <= 0 {
		c.mu.Unlock()
		return errors.New("fake clock: Run slept for nothing, it would spin")
	}
	c.now = c.now.Add(d)
	c.sleeps = append(c.sleeps, d)
	stop := !c.now.Before(c.stopAt)
	c.mu.Unlock()
	if stop {
		c.cancel()
	}
	return ctx.Err()
}

// sentMail is one call of SendReport.
type sentMail struct {
	at       time.Time
	from     string
	to       []string
	msg      []byte
	accepted bool
}

// fakeMailSender records report mail; fail, when set, decides the error
// for a recipient (nil: accepted).
type fakeMailSender struct {
	clock *fakeClock
	mu    sync.Mutex
	sent  []sentMail
	fail  func(to string, attempt int) error
}

func (s *fakeMailSender) SendReport(ctx context.Context, from string, to []string, msg []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	attempt := 1
	for _, m := range s.sent {
		if m.to[0] == to[0] {
			attempt++
		}
	}
	var err error
	if s.fail != nil {
		err = s.fail(to[0], attempt)
	}
	s.sent = append(s.sent, sentMail{at: s.clock.Now(), from: from, to: to, msg: msg, accepted: err == nil})
	return err
}

func (s *fakeMailSender) to(addr string) []sentMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sentMail
	for _, m := range s.sent {
		if m.to[0] == addr {
			out = append(out, m)
		}
	}
	return out
}

// quiet discards the log of the failures tests provoke.
var quiet = slog.New(slog.DiscardHandler)

// testSigner stands in for DKIM where the signature is not what a test
// looks at.
type testSigner struct{}

func (testSigner) Sign(msg []byte) ([]byte, error) {
	return append([]byte("X-Test-Signature: yes\r\n"), msg...), nil
}

// permanentErr is what a MailSender returns for a refused address.
type permanentErr struct{ msg string }

func (e permanentErr) Error() string   { return e.msg }
func (e permanentErr) Temporary() bool { return false }

// newJobEnv returns a Reporter with a fake clock, DNS and mail, and the
// Recorder it reports from.
func newJobEnv(t *testing.T, client *http.Client, start time.Time) (*Reporter, *Recorder, *fakeClock, *fakeMailSender, *fakeTXT) {
	t.Helper()
	clock := &fakeClock{now: start}
	mail := &fakeMailSender{clock: clock}
	dns := &fakeTXT{answers: map[string][]string{}}
	rec := NewRecorder(RecorderConfig{Now: clock.Now})
	rep, err := NewReporter(Config{
		OrganizationName: "Sender Inc.",
		Submitter:        "mail.sender.example",
		Recorder:         rec,
		Resolver:         dns,
		MailSender:       mail,
		MailSigner:       testSigner{},
		HTTPClient:       client,
		Now:              clock.Now,
		Sleep:            clock.Sleep,
		Rand:             rand.New(rand.NewPCG(1, 2)),
		Logger:           quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep, rec, clock, mail, dns
}

func (f *fakeTXT) publish(domain, txt string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers["_smtp._tls."+domain+"."] = []string{txt}
}

func submission(t *testing.T, rep *Reporter, day Day, domain string) Submission {
	t.Helper()
	var sub Submission
	err := rep.Store().UpdateSubmission(context.Background(), day, domain, func(s *Submission) error {
		sub = *s
		return errNotDue
	})
	if err != nil && !errors.Is(err, errNotDue) {
		t.Fatal(err)
	}
	return sub
}

func TestRunSendsYesterdaysReportsOnce(t *testing.T) {
	srv, client := reportServer(t)
	start := day0.Add(9 * time.Hour)
	rep, rec, clock, mail, dns := newJobEnv(t, client, start)
	d := DayOf(day0)

	dns.publish("example.com", "v=TLSRPTv1; rua=mailto:tlsrpt@example.com,https://reports.example.com/v1/tlsrpt")
	dns.publish("bounce.example", "v=TLSRPTv1; rua=mailto:gone@bounce.example")
	dns.publish("flaky.example", "v=TLSRPTv1; rua=mailto:tlsrpt@flaky.example")
	dns.publish("opted.example", "v=TLSRPTv1; rua=mailto:tlsrpt@opted.example")
	// nothing.example publishes no record.
	for _, dom := range []string{"example.com", "bounce.example", "flaky.example", "opted.example", "nothing.example"} {
		p := NewPolicy(PolicyTypeSTS, dom, []string{"version: STSv1", "mode: enforce"}, []string{"mx." + dom})
		rec.Record(Session{Time: day0.Add(10 * time.Hour), Policy: p})
		rec.Record(Session{Time: day0.Add(11 * time.Hour), Policy: p, Failure: &Failure{ResultType: ResultCertificateExpired}})
	}
	mail.fail = func(to string, attempt int) error {
		switch {
		case to == "gone@bounce.example":
			return permanentErr{"550 5.1.1 no such user"}
		case to == "tlsrpt@flaky.example" && attempt <= 2:
			return errors.New("451 4.3.0 try later")
		}
		return nil
	}
	if err := rep.OptOut(context.Background(), "Opted.Example", "asked us to stop"); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock.cancel, clock.stopAt = cancel, day0.Add(3*24*time.Hour)
	if err := rep.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}

	// The report of example.com went once by mail and once by HTTPS, in
	// the first hours after the day ended.
	got := mail.to("tlsrpt@example.com")
	if len(got) != 1 {
		t.Fatalf("%d mails to tlsrpt@example.com, want 1", len(got))
	}
	earliest, latest := (d + 1).Start().Add(15*time.Minute), (d + 1).Start().Add(4*time.Hour+15*time.Minute)
	if got[0].at.Before(earliest) || !got[0].at.Before(latest) {
		t.Fatalf("sent at %v, want between %v and %v", got[0].at, earliest, latest)
	}
	if got[0].from != "postmaster@mail.sender.example" || !bytes.HasPrefix(got[0].msg, []byte("X-Test-Signature: yes\r\n")) ||
		!bytes.Contains(got[0].msg, []byte("TLS-Report-Domain: example.com\r\n")) {
		t.Fatalf("mail from %q:\n%.300s", got[0].from, got[0].msg)
	}
	posted := srv.Reports()
	if len(posted) != 1 || posted[0].Host != "reports.example.com" {
		t.Fatalf("%d POSTs, want 1: %+v", len(posted), posted)
	}
	sub := submission(t, rep, d, "example.com")
	if sub.Outcome != OutcomeSent || sub.Attempts != 1 || len(sub.Destinations) != 2 {
		t.Fatalf("example.com: %s", sub.describe())
	}
	if !strings.Contains(string(got[0].msg), "Report-ID: <"+sub.ReportID+">") {
		t.Fatal("the mail does not carry the submission's report ID")
	}

	// A permanent refusal settles the submission and suppresses the rua.
	if n := len(mail.to("gone@bounce.example")); n != 1 {
		t.Fatalf("%d attempts at a refused address, want 1", n)
	}
	if sub := submission(t, rep, d, "bounce.example"); sub.Outcome != OutcomeFailed || !sub.Destinations[0].Permanent {
		t.Fatalf("bounce.example: %s", sub.describe())
	}
	sups, _ := rep.Store().Suppressions(context.Background())
	var suppressedRUA bool
	for _, s := range sups {
		if s.Kind == SuppressRUA && s.Value == "mailto:gone@bounce.example" && s.Active(clock.Now()) {
			suppressedRUA = true
		}
	}
	if !suppressedRUA {
		t.Fatalf("refused address not suppressed: %+v", sups)
	}

	// Temporary failures are retried with backoff until accepted.
	flaky := mail.to("tlsrpt@flaky.example")
	if len(flaky) != 3 || !flaky[2].accepted {
		t.Fatalf("%d attempts at flaky.example, want 3 ending accepted", len(flaky))
	}
	if gap1, gap2 := flaky[1].at.Sub(flaky[0].at), flaky[2].at.Sub(flaky[1].at); gap1 < 10*time.Minute || gap2 < 2*gap1 {
		t.Fatalf("retries after %v and %v, want at least 10 minutes, then twice that", gap1, gap2)
	}
	if sub := submission(t, rep, d, "flaky.example"); sub.Outcome != OutcomeSent || sub.Attempts != 3 {
		t.Fatalf("flaky.example: %s", sub.describe())
	}

	// Opted out: nothing sent. No record: nothing sent.
	if n := len(mail.to("tlsrpt@opted.example")); n != 0 {
		t.Fatalf("%d mails to an opted-out domain", n)
	}
	if sub := submission(t, rep, d, "opted.example"); sub.Outcome != OutcomeSuppressed {
		t.Fatalf("opted.example: %s", sub.describe())
	}
	if sub := submission(t, rep, d, "nothing.example"); sub.Outcome != OutcomeNoRecord {
		t.Fatalf("nothing.example: %s", sub.describe())
	}

	// Sending the day again sends nothing.
	before := len(mail.sent)
	if err := rep.SendDay(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if len(mail.sent) != before || len(srv.Reports()) != 1 {
		t.Fatal("a report was sent twice")
	}
	// The run woke up rarely: no busy loop.
	if n := len(clock.sleeps); n > 60 {
		t.Fatalf("Run slept %d times in three days", n)
	}
}

func TestRetriesStopAfterRetryPeriod(t *testing.T) {
	rep, rec, clock, mail, dns := newJobEnv(t, nil, day0.Add(time.Hour))
	d := DayOf(day0)
	dns.publish("example.com", "v=TLSRPTv1; rua=mailto:tlsrpt@example.com")
	rec.Record(Session{Time: day0.Add(time.Hour), Policy: stsPolicy})
	mail.fail = func(string, int) error { return errors.New("451 try later") }

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock.cancel, clock.stopAt = cancel, day0.Add(4*24*time.Hour)
	rep.Run(ctx)

	sent := mail.to("tlsrpt@example.com")
	if len(sent) < 4 {
		t.Fatalf("%d attempts, want several", len(sent))
	}
	// RFC 8460 §5.5: redelivery for up to 24 hours after the first attempt.
	if span := sent[len(sent)-1].at.Sub(sent[0].at); span > 24*time.Hour {
		t.Fatalf("attempts over %v", span)
	}
	if sub := submission(t, rep, d, "example.com"); sub.Outcome != OutcomeFailed {
		t.Fatalf("%s", sub.describe())
	}
}

func TestTemporaryDNSFailureIsRetried(t *testing.T) {
	rep, rec, clock, mail, dns := newJobEnv(t, nil, day0.Add(25*time.Hour))
	d := DayOf(day0)
	rec.Record(Session{Time: day0.Add(time.Hour), Policy: stsPolicy})
	dns.err = notFoundError{false} // SERVFAIL
	ctx := context.Background()
	if err := rep.SendDay(ctx, d); err != nil {
		t.Fatal(err)
	}
	if sub := submission(t, rep, d, "example.com"); sub.Outcome != "" || sub.Next.Sub(clock.Now()) != 10*time.Minute {
		t.Fatalf("after SERVFAIL: %s, next in %v", sub.describe(), sub.Next.Sub(clock.Now()))
	}
	dns.err = nil
	dns.publish("example.com", "v=TLSRPTv1; rua=mailto:tlsrpt@example.com")
	rep.SendDay(ctx, d) // not due yet
	if len(mail.sent) != 0 {
		t.Fatal("retried before its time")
	}
	clock.now = clock.now.Add(10 * time.Minute)
	rep.SendDay(ctx, d)
	if len(mail.sent) != 1 {
		t.Fatalf("%d mails after the retry", len(mail.sent))
	}
}

func TestBouncedAddressIsSuppressed(t *testing.T) {
	rep, rec, clock, mail, dns := newJobEnv(t, nil, day0.Add(25*time.Hour))
	ctx := context.Background()
	d := DayOf(day0)
	dns.publish("example.com", "v=TLSRPTv1; rua=mailto:TLSRPT@example.com,mailto:other@example.com")
	rec.Record(Session{Time: day0.Add(time.Hour), Policy: stsPolicy})
	// The queue learns of an earlier report's bounce.
	if err := rep.Bounced(ctx, "tlsrpt@EXAMPLE.com", "550 5.1.1 user unknown"); err != nil {
		t.Fatal(err)
	}
	rep.SendDay(ctx, d)
	if len(mail.to("TLSRPT@example.com")) != 0 || len(mail.to("other@example.com")) != 1 {
		t.Fatalf("sent %d mails: %+v", len(mail.sent), mail.sent)
	}
	sub := submission(t, rep, d, "example.com")
	if sub.Outcome != OutcomeSent || !strings.HasPrefix(sub.Destinations[0].Error, suppressedPrefix) {
		t.Fatalf("%s", sub.describe())
	}
	// The suppression ends after SuppressFor (7 days).
	clock.now = clock.now.Add(7*24*time.Hour + time.Second)
	rec.Record(Session{Policy: stsPolicy})
	rep.SendDay(ctx, DayOf(clock.now))
	if len(mail.to("TLSRPT@example.com")) != 1 {
		t.Fatal("the address is still suppressed after SuppressFor")
	}
}

func TestTwoReportersSharingAStoreSendOnce(t *testing.T) {
	store := NewMemoryStore()
	clock := &fakeClock{now: day0.Add(26 * time.Hour)}
	var mu sync.Mutex
	sends := 0
	sender := mailFunc(func(context.Context, string, []string, []byte) error {
		mu.Lock()
		sends++
		mu.Unlock()
		time.Sleep(5 * time.Millisecond) // let the other reporter try meanwhile
		return nil
	})
	dns := &fakeTXT{answers: map[string][]string{}}
	var reporters []*Reporter
	for range 2 {
		r, err := NewReporter(Config{OrganizationName: "o", Submitter: "s.example", Store: store, Resolver: dns,
			MailSender: sender, MailSigner: testSigner{}, Now: clock.Now, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		reporters = append(reporters, r)
	}
	const domains = 20
	var batch []Counts
	for i := range domains {
		dom := fmt.Sprintf("d%d.example", i)
		dns.publish(dom, "v=TLSRPTv1; rua=mailto:r@"+dom)
		batch = append(batch, Counts{Day: DayOf(day0), Policy: NewPolicy(PolicyTypeNoPolicyFound, dom, nil, nil), Successful: 1})
	}
	store.AddCounts(context.Background(), batch)
	var wg sync.WaitGroup
	for _, r := range reporters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.SendDay(context.Background(), DayOf(day0)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if sends != domains {
		t.Fatalf("%d reports sent for %d domains", sends, domains)
	}
}

type mailFunc func(ctx context.Context, from string, to []string, msg []byte) error

func (f mailFunc) SendReport(ctx context.Context, from string, to []string, msg []byte) error {
	return f(ctx, from, to, msg)
}

func TestNewReporterRequiresASignerForMail(t *testing.T) {
	_, err := NewReporter(Config{OrganizationName: "o", Submitter: "s.example", MailSender: mailFunc(nil)})
	if err == nil || !strings.Contains(err.Error(), "DKIM") {
		t.Fatalf("error %v", err)
	}
	if _, err := NewReporter(Config{Submitter: "s.example"}); err == nil {
		t.Fatal("no error without OrganizationName")
	}
}

func TestMailDestinationWithoutMailSender(t *testing.T) {
	clock := &fakeClock{now: day0.Add(26 * time.Hour)}
	dns := &fakeTXT{answers: map[string][]string{}}
	dns.publish("example.com", "v=TLSRPTv1; rua=mailto:tlsrpt@example.com")
	r, err := NewReporter(Config{OrganizationName: "o", Submitter: "s.example", Resolver: dns, Now: clock.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r.Store().AddCounts(context.Background(), []Counts{{Day: DayOf(day0), Policy: stsPolicy, Successful: 1}})
	r.SendDay(context.Background(), DayOf(day0))
	sub := submission(t, r, DayOf(day0), "example.com")
	if sub.Outcome != OutcomeFailed || !strings.Contains(sub.Destinations[0].Error, "no MailSender") {
		t.Fatalf("%s", sub.describe())
	}
	if sups, _ := r.Store().Suppressions(context.Background()); len(sups) != 0 {
		t.Fatalf("our own configuration suppressed a destination: %+v", sups)
	}
}

// describe says in a few words what happened to a submission, for test
// failures.
func (s *Submission) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: attempt %d, outcome %q", s.Day, s.Domain, s.Attempts, s.Outcome)
	for _, d := range s.Destinations {
		fmt.Fprintf(&b, "; %s delivered=%v permanent=%v %s", d.URI, !d.Delivered.IsZero(), d.Permanent, d.Error)
	}
	return b.String()
}
