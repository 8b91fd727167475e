package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/sts"
	"github.com/sealpost/sealpost/tlsrpt"
)

// TestDemo runs the demo end to end — loopback world, queue on a bbolt
// file, delivery client, TLS-RPT recorder — and checks what became of every
// recipient, the bounce, the attackers and the printed report.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout bytes.Buffer
	out, err := run(ctx, &stdout, options{ReportDomain: "sts-testing.example", Deadline: 20 * time.Second})
	if out == nil {
		t.Fatalf("run: %v\n%s", err, stdout.String())
	}
	if err != nil {
		// An outcome other than the expected one: the subtests say which.
		t.Errorf("run: %v\n%s", err, stdout.String())
	}
	text := stdout.String()
	byDomain := map[string]recipientOutcome{}
	for _, ro := range out.Recipients {
		byDomain[ro.Scenario.Domain] = ro
	}

	t.Run("every recipient ends as its scenario wants", func(t *testing.T) {
		if len(out.Recipients) != len(scenarioTable()) {
			t.Fatalf("%d recipients, want %d", len(out.Recipients), len(scenarioTable()))
		}
		for _, ro := range out.Recipients {
			if u := ro.unmet(); len(u) > 0 {
				t.Errorf("%s: %s", recipient(ro.Scenario), strings.Join(u, "; "))
			}
		}
	})

	t.Run("DANE authenticates a self-signed certificate by its TLSA record", func(t *testing.T) {
		ro := byDomain["dane.example"]
		s := ro.Result.Session
		if ro.Queue.State != queue.StateDelivered || s.Auth != delivery.DANEEE || s.Requirement.Level != delivery.Authenticated {
			t.Errorf("state %v, auth %v, level %v; want delivered, DANE-EE, authenticated", ro.Queue.State, s.Auth, s.Requirement.Level)
		}
	})

	t.Run("MTA-STS enforce delivers over WebPKI-authenticated TLS", func(t *testing.T) {
		ro := byDomain["sts-enforce.example"]
		s := ro.Result.Session
		if ro.Queue.State != queue.StateDelivered || s.Auth != delivery.WebPKI || s.TLSVersion == 0 || s.Requirement.STS == nil {
			t.Errorf("state %v, auth %v, TLS %s, policy %v; want delivered over WebPKI TLS under the policy",
				ro.Queue.State, s.Auth, s.TLSVersionName(), s.Requirement.STS)
		}
		if len(ro.Failures) > 0 {
			t.Errorf("failures recorded: %v", ro.Failures)
		}
	})

	t.Run("MTA-STS testing delivers past an expired certificate and reports it", func(t *testing.T) {
		ro := byDomain["sts-testing.example"]
		if ro.Queue.State != queue.StateDelivered || ro.Result.Session.Auth != delivery.UnauthenticatedTLS {
			t.Errorf("state %v, auth %v; want delivered over unauthenticated TLS", ro.Queue.State, ro.Result.Session.Auth)
		}
		if len(ro.Failures) != 1 || ro.Failures[0].ResultType != tlsrpt.ResultCertificateExpired {
			t.Errorf("failures recorded: %v, want one certificate-expired", ro.Failures)
		}
		// The session itself says why the check failed.
		var se *sts.Error
		if err := ro.Result.Session.CheckErr; !errors.As(err, &se) || se.ResultType() != string(tlsrpt.ResultCertificateExpired) {
			t.Errorf("Session.CheckErr = %v, want an *sts.Error of result type certificate-expired", err)
		}
		if !strings.Contains(text, "check   WebPKI check failed (certificate-expired), not enforced: ") {
			t.Error("the output does not say why the check failed")
		}
	})

	attacks := []struct {
		name, domain string
		code         [3]int
	}{
		{"stripped STARTTLS under MTA-STS enforce defers", "stripped-sts.example", [3]int{4, 7, 10}},
		{"stripped STARTTLS under DANE defers", "stripped-dane.example", [3]int{4, 7, 10}},
		{"a forged certificate under MTA-STS enforce defers", "forged-sts.example", [3]int{4, 7, 5}},
	}
	for _, tt := range attacks {
		t.Run(tt.name, func(t *testing.T) {
			ro := byDomain[tt.domain]
			if ro.Queue.State != queue.StatePending || ro.Queue.Attempts != 1 || ro.Queue.Last.Enhanced != tt.code {
				t.Errorf("state %v after %d attempts, last %+v; want pending after 1 attempt with %v",
					ro.Queue.State, ro.Queue.Attempts, ro.Queue.Last, tt.code)
			}
			if !ro.Queue.NextAttempt.After(ro.Queue.LastAttempt) {
				t.Errorf("next attempt %v is not after the last %v", ro.Queue.NextAttempt, ro.Queue.LastAttempt)
			}
			if a := ro.Attacker; a == nil || a.Connections == 0 || a.Handshakes != 0 || a.Transactions != 0 || ro.Received != 0 {
				t.Errorf("attacker %+v, host received %d; want connections, no handshake, no transaction, nothing received", a, ro.Received)
			}
		})
	}

	t.Run("the MTA-STS policies are cached in the store file", func(t *testing.T) {
		// Every domain with a policy, attacked or not: the fetch is over
		// HTTPS, out of the MX attacker's reach (RFC 8461 §10.2).
		want := []string{"forged-sts.example", "stripped-sts.example", "sts-enforce.example", "sts-testing.example"}
		if !slices.Equal(out.Cached, want) {
			t.Errorf("cached policies %v, want %v", out.Cached, want)
		}
		if !strings.Contains(text, "MTA-STS policies kept in the store file, for after a restart: forged-sts.example,") {
			t.Error("the output does not say which policies the store keeps")
		}
	})

	bounces := []struct {
		name, domain string
		code         [3]int
		status       string
	}{
		{"null MX bounces with 5.1.10 and the DSN reaches the sender", "nullmx.example", [3]int{5, 1, 10}, "5.1.10"},
		{"REQUIRETLS to a host that does not advertise it bounces with 5.7.30 (RFC 8689 §4.2.1)", "no-requiretls.example", [3]int{5, 7, 30}, "5.7.30"},
	}
	for _, tt := range bounces {
		t.Run(tt.name, func(t *testing.T) {
			ro := byDomain[tt.domain]
			if ro.Queue.State != queue.StateBounced || ro.Queue.Last.Enhanced != tt.code {
				t.Errorf("state %v, last %+v; want bounced with %v", ro.Queue.State, ro.Queue.Last, tt.code)
			}
			bo := ro.Bounce
			if bo == nil {
				t.Fatal("no bounce was queued")
			}
			if bo.Envelope.Kind != queue.KindDSN || bo.Envelope.From != "" || len(bo.Envelope.Recipients) != 1 ||
				bo.Envelope.Recipients[0].Addr != "alice@"+sender {
				t.Errorf("bounce envelope %+v, want a DSN from <> to alice@%s", bo.Envelope, sender)
			}
			if bo.Queue.State != queue.StateDelivered || bo.Status != tt.status {
				t.Errorf("bounce %v with Status %q, want delivered with %s", bo.Queue.State, bo.Status, tt.status)
			}
		})
	}

	t.Run("REQUIRETLS is per message: only its own recipient's message carries it", func(t *testing.T) {
		strict, plain := byDomain["no-requiretls.example"], byDomain["dane.example"]
		if strict.MessageID == plain.MessageID {
			t.Fatalf("both recipients in message %s", strict.MessageID)
		}
		if s := strict.Result.Session; s.Requirement.Level != delivery.Authenticated || s.MXHost != "mx.no-requiretls.example" {
			t.Errorf("REQUIRETLS session %+v, want an authenticated requirement at mx.no-requiretls.example", s)
		}
		if strict.Bounce == nil || plain.Bounce != nil || strict.Bounce == byDomain["nullmx.example"].Bounce {
			t.Errorf("bounces: REQUIRETLS %v, DANE %v; want a DSN of its own for the REQUIRETLS message", strict.Bounce, plain.Bounce)
		}
		if !strings.Contains(strings.Join(strings.Fields(text), " "), "then one with REQUIRETLS to 1 domain.") {
			t.Error("the headline does not say that a second message carries REQUIRETLS")
		}
	})

	t.Run("plaintext only when nothing demands TLS", func(t *testing.T) {
		ro := byDomain["plain.example"]
		s := ro.Result.Session
		if ro.Queue.State != queue.StateDelivered || s.Auth != delivery.Plaintext || s.Requirement.Basis != delivery.NoPolicy {
			t.Errorf("state %v, auth %v, basis %v; want delivered in plaintext under no policy", ro.Queue.State, s.Auth, s.Requirement.Basis)
		}
	})

	t.Run("the printed report is a valid RFC 8460 report with the failure", func(t *testing.T) {
		_, js, ok := strings.Cut(text, "\n  {")
		if !ok {
			t.Fatalf("no report JSON in the output:\n%s", text)
		}
		rep, err := tlsrpt.ParseReport(strings.NewReader("{" + js))
		if err != nil {
			t.Fatalf("ParseReport: %v", err)
		}
		if len(rep.Policies) != 1 {
			t.Fatalf("%d policies, want 1: %+v", len(rep.Policies), rep.Policies)
		}
		pr := rep.Policies[0]
		if pr.Policy.Type != tlsrpt.PolicyTypeSTS || pr.Policy.Domain != "sts-testing.example" ||
			!slices.Contains(pr.Policy.Strings, "mode: testing") {
			t.Errorf("policy %+v, want the sts policy of sts-testing.example in testing mode", pr.Policy)
		}
		if pr.Summary.TotalFailureSessionCount != 1 || pr.Summary.TotalSuccessfulSessionCount != 0 {
			t.Errorf("summary %+v, want 1 failed session and no successful one", pr.Summary)
		}
		if len(pr.FailureDetails) != 1 {
			t.Fatalf("failure details %+v, want one", pr.FailureDetails)
		}
		fd := pr.FailureDetails[0]
		if fd.ResultType != tlsrpt.ResultCertificateExpired || fd.ReceivingMXHostname != "mx.sts-testing.example" ||
			fd.ReceivingIP != byDomain["sts-testing.example"].Result.Session.IP.String() || fd.FailedSessionCount != 1 {
			t.Errorf("failure detail %+v, want certificate-expired at mx.sts-testing.example", fd)
		}
		if !strings.Contains(text, "mailto:tlsrpt@sts-testing.example") {
			t.Error("the output does not say where the report would go")
		}
	})

	t.Run("the table is aligned and without colour", func(t *testing.T) {
		if strings.Contains(text, "\x1b[") {
			t.Error("colour codes in output that was not asked for colour")
		}
		checkTable(t, text, len(out.Recipients))
		for _, l := range strings.Split(text, "\n") {
			if utf8.RuneCountInString(l) > 100 {
				t.Errorf("line over 100 columns: %q", l)
			}
		}
	})

	t.Run("colour changes nothing but the colour", func(t *testing.T) {
		var plain, colored bytes.Buffer
		if err := render(&plain, out, false); err != nil {
			t.Fatal(err)
		}
		if err := render(&colored, out, true); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(colored.String(), "\x1b[32m✓ delivered\x1b[0m") {
			t.Error("no green 'delivered' in coloured output")
		}
		stripped := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(colored.String(), "")
		if stripped != plain.String() {
			t.Errorf("coloured output without its colour codes differs from the plain output:\n%s\n---\n%s", stripped, plain.String())
		}
	})
}

// checkTable checks that the table's columns start at the same offsets on
// the header and on every one of its n rows.
func checkTable(t *testing.T, text string, n int) {
	t.Helper()
	lines := strings.Split(text, "\n")
	h := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "RECIPIENT ") })
	if h < 0 || h+n >= len(lines) {
		t.Fatalf("no table with %d rows in the output:\n%s", n, text)
	}
	starts := func(l string) []int {
		var s []int
		prevSpace, spaces := true, 0
		for i, r := range []rune(l) {
			if r == ' ' {
				spaces++
			} else {
				if prevSpace && (i == 0 || spaces >= 2) {
					s = append(s, i)
				}
				spaces = 0
			}
			prevSpace = r == ' '
		}
		return s
	}
	want := starts(lines[h])
	for _, l := range lines[h+1 : h+1+n] {
		got := starts(l)
		// A cell may hold single spaces ("✓ delivered"); columns are two
		// spaces apart, so every header start is a start of the row.
		for _, c := range want {
			if !slices.Contains(got, c) {
				t.Errorf("row %q has no column at %d (header columns at %v)", l, c, want)
			}
		}
		if utf8.RuneCountInString(l) > 100 {
			t.Errorf("row %q is over 100 columns", l)
		}
	}
}

func TestRunUnknownReportDomain(t *testing.T) {
	var stdout bytes.Buffer
	if _, err := run(context.Background(), &stdout, options{ReportDomain: "elsewhere.example"}); err == nil ||
		!strings.Contains(err.Error(), "elsewhere.example") {
		t.Errorf("run = %v, want an error naming the domain", err)
	}
}

func TestRunDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout bytes.Buffer
	_, err := run(ctx, &stdout, options{})
	if err == nil {
		t.Fatalf("run with a cancelled context succeeded:\n%s", stdout.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("run that failed printed:\n%s", stdout.String())
	}
}

func TestTrackerWait(t *testing.T) {
	env := &queue.Envelope{Recipients: []queue.Recipient{{Addr: "a@x.example"}, {Addr: "b@y.example"}}}
	tr := newTracker()
	tr.expect("id1", env)
	obs := tr.observer()
	obs.Delivered("id1", &queue.Recipient{Addr: "A@x.example", State: queue.StateDelivered},
		&delivery.Result{Recipient: "A@x.example", Session: delivery.Session{MXHost: "mx.x.example", Auth: delivery.DANEEE}})
	obs.Bounced("id1", &queue.Recipient{Addr: "b@y.example", State: queue.StateBounced}, nil)
	if got := tr.waiting(); !slices.Equal(got, []string{"the bounce of message id1"}) {
		t.Errorf("waiting after a bounce without DSN = %v, want the bounce", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := tr.wait(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "bounce") {
		t.Errorf("wait = %v, want a deadline error naming the bounce", err)
	}

	obs.Enqueued(&queue.Envelope{ID: "dsn1", Kind: queue.KindDSN, Recipients: []queue.Recipient{{Addr: "s@z.example"}}})
	if got := tr.waiting(); !slices.Equal(got, []string{"the bounce to s@z.example"}) {
		t.Errorf("waiting after the DSN was queued = %v, want its delivery", got)
	}
	done := make(chan error, 1)
	go func() { done <- tr.wait(context.Background()) }()
	obs.Deferred("dsn1", &queue.Recipient{Addr: "s@z.example"}, nil)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("wait = %v, want nil once the DSN was tried", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not return after the last event")
	}
	if d := tr.dsn("id1"); d == nil || d.ID != "dsn1" || tr.last("id1", "a@X.example").State != queue.StateDelivered {
		t.Errorf("dsn %+v, last(a) %+v", d, tr.last("id1", "a@x.example"))
	}
	if res := tr.result("id1", "a@x.example"); res.Session.Auth != delivery.DANEEE || res.Session.MXHost != "mx.x.example" {
		t.Errorf("result(a) %+v, want the observer's result", res)
	}

	// A second message, sent once the first is at rest, gets its own
	// bounce, though it goes to the same sender.
	tr.expect("id2", &queue.Envelope{Recipients: []queue.Recipient{{Addr: "c@w.example"}}})
	if got := tr.waiting(); !slices.Equal(got, []string{"c@w.example"}) {
		t.Errorf("waiting for the second message = %v, want its recipient", got)
	}
	obs.Bounced("id2", &queue.Recipient{Addr: "c@w.example", State: queue.StateBounced}, nil)
	obs.Enqueued(&queue.Envelope{ID: "dsn2", Kind: queue.KindDSN, Recipients: []queue.Recipient{{Addr: "s@z.example"}}})
	obs.Delivered("dsn2", &queue.Recipient{Addr: "s@z.example", State: queue.StateDelivered}, nil)
	if got := tr.waiting(); len(got) != 0 {
		t.Errorf("waiting = %v, want nothing", got)
	}
	if d1, d2 := tr.dsn("id1"), tr.dsn("id2"); d1 == nil || d1.ID != "dsn1" || d2 == nil || d2.ID != "dsn2" {
		t.Errorf("bounces %+v, %+v; want dsn1 for id1 and dsn2 for id2", d1, d2)
	}
	if tr.last("dsn1", "s@z.example").State == queue.StateDelivered {
		t.Error("the second bounce's delivery was filed under the first")
	}
}

func TestUnmet(t *testing.T) {
	sc := scenarioTable()[0] // DANE: delivered, DANE-EE
	good := recipientOutcome{Scenario: sc, Received: 1,
		Queue:  queue.Recipient{State: queue.StateDelivered, Attempts: 1},
		Result: delivery.Result{Session: delivery.Session{Auth: delivery.DANEEE}}}
	if u := good.unmet(); len(u) != 0 {
		t.Fatalf("unmet(expected outcome) = %v", u)
	}
	cases := map[string]func(*recipientOutcome){
		"no attempt":           func(r *recipientOutcome) { r.Queue.Attempts = 0 },
		"deferred":             func(r *recipientOutcome) { r.Queue.State = queue.StatePending },
		"wrong authentication": func(r *recipientOutcome) { r.Result.Session.Auth = delivery.WebPKI },
		"not received":         func(r *recipientOutcome) { r.Received = 0 },
		"attacker saw mail":    func(r *recipientOutcome) { r.Attacker = &attackerView{Connections: 1, Transactions: 1} },
		"attacker was trusted": func(r *recipientOutcome) { r.Attacker = &attackerView{Connections: 1, Handshakes: 1} },
		"wrong status code": func(r *recipientOutcome) {
			r.Scenario.Want.Code = "4.7.10"
			r.Queue.Last.Enhanced = [3]int{4, 4, 1}
		},
		"failure not recorded": func(r *recipientOutcome) { r.Scenario.Want.Failure = tlsrpt.ResultCertificateExpired },
		"no check error over unauthenticated TLS": func(r *recipientOutcome) {
			r.Scenario.Want = want{State: queue.StateDelivered, Auth: delivery.UnauthenticatedTLS, Failure: tlsrpt.ResultCertificateExpired}
			r.Result.Session.Auth = delivery.UnauthenticatedTLS
			r.Failures = []tlsrpt.Failure{{ResultType: tlsrpt.ResultCertificateExpired}}
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			ro := good
			change(&ro)
			if u := ro.unmet(); len(u) == 0 {
				t.Errorf("unmet = nil, want a complaint")
			}
		})
	}
}

func TestColorful(t *testing.T) {
	file, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	dev, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no", os.DevNull)
	}
	defer dev.Close()
	t.Setenv("TERM", "xterm")
	t.Setenv("NO_COLOR", "")
	if colorful(file) {
		t.Error("colour on a regular file")
	}
	// A character device stands in for a terminal: it is what the check
	// looks at.
	if !colorful(dev) {
		t.Error("no colour on a character device")
	}
	t.Setenv("NO_COLOR", "1")
	if colorful(dev) {
		t.Error("colour despite NO_COLOR")
	}
	t.Setenv("NO_COLOR", "")
	t.Setenv("TERM", "dumb")
	if colorful(dev) {
		t.Error("colour on a dumb terminal")
	}
}
