package main

import (
	"bytes"
	"context"
	"errors"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/sealpost/sealpost/internal/testenv"
	"github.com/sealpost/sealpost/queue/boltstore"
	"github.com/sealpost/sealpost/tlsrpt"
)

// TestRelayDelivers runs the relay end to end: a message submitted with
// go-smtp's client is queued, DKIM-signed, delivered to the world's MX
// host over DANE-authenticated TLS, and its TLS session counted for
// TLS-RPT; a cancelled context shuts the relay down cleanly.
func TestRelayDelivers(t *testing.T) {
	w := newWorld(t, testenv.SMTPOptions{})
	log := &syncBuffer{}
	cfg := config(t)
	r := start(t, cfg, w.env(log))
	day := tlsrpt.DayOf(time.Now())

	reply, err := submit(t, r.Addr().String(), "", "", "alice@relay.test", []string{"bob@dest.test"}, testMessage)
	if err != nil {
		t.Fatalf("submission: %v\n%s", err, log)
	}
	if !strings.HasPrefix(reply, "2.0.0 OK: queued as ") {
		t.Errorf("final reply %q, want the queue id", reply)
	}
	m := waitMessages(t, w.dest, 1)[0]
	if m.Helo != "relay.test" || m.From != "alice@relay.test" || len(m.Rcpts) != 1 || m.Rcpts[0].Addr != "bob@dest.test" {
		t.Errorf("envelope: EHLO %q, MAIL FROM %q, RCPT %v", m.Helo, m.From, m.Rcpts)
	}
	if m.TLS == nil {
		t.Error("delivered in plaintext to a host with TLSA records")
	}
	contains(t, "delivered message", string(m.Data),
		"DKIM-Signature:", "d=relay.test", "s=s1",
		"Received: from client.test ([127.0.0.1])\r\n\tby relay.test with ESMTP\r\n\tfor <bob@dest.test>;",
		"Hello through the relay.")

	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v, want nil after a cancelled context", err)
	}
	contains(t, "log", log.String(), "relay: message accepted", "relay: stopped")
	if _, err := smtp.Dial(r.Addr().String()); err == nil {
		t.Error("the submission port still accepts connections after shutdown")
	}

	// The store was closed (it can be opened again) and holds no mail,
	// and the session was counted for dest.test's TLS-RPT report.
	st, err := boltstore.Open(cfg.Store, &boltstore.Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("reopening the store: %v", err)
	}
	defer st.Close()
	if envs, err := st.List(context.Background(), "", 10); err != nil || len(envs) != 0 {
		t.Errorf("store holds %d messages (%v) after delivery, want none", len(envs), err)
	}
	var ok int64
	days := []tlsrpt.Day{day}
	if today := tlsrpt.DayOf(time.Now()); today != day {
		days = append(days, today) // the test ran over midnight UTC
	}
	for _, d := range days {
		counts, err := st.DayCounts(context.Background(), d, "dest.test")
		must(t, err)
		for _, c := range counts {
			if c.Policy.Type == tlsrpt.PolicyTypeTLSA {
				ok += c.Successful
			}
		}
	}
	if ok != 1 {
		t.Errorf("%d successful DANE sessions counted for dest.test, want 1", ok)
	}
}

// TestRelayAuth checks AUTH PLAIN on a loopback port without TLS.
func TestRelayAuth(t *testing.T) {
	w := newWorld(t, testenv.SMTPOptions{})
	log := &syncBuffer{}
	cfg := config(t)
	cfg.Users = map[string]string{"alice": hash(t, "secret")}
	r := start(t, cfg, w.env(log))
	addr := r.Addr().String()

	t.Run("MAIL before AUTH is refused with 530 (RFC 4954 §6)", func(t *testing.T) {
		_, err := submit(t, addr, "", "", "alice@relay.test", []string{"bob@dest.test"}, testMessage)
		wantCode(t, err, 530)
	})
	t.Run("a wrong password is refused with 535", func(t *testing.T) {
		_, err := submit(t, addr, "alice", "wrong", "alice@relay.test", []string{"bob@dest.test"}, testMessage)
		wantCode(t, err, 535)
	})
	t.Run("an unknown user is refused like a wrong password", func(t *testing.T) {
		_, err := submit(t, addr, "mallory", "secret", "alice@relay.test", []string{"bob@dest.test"}, testMessage)
		wantCode(t, err, 535)
	})
	t.Run("the right password sends", func(t *testing.T) {
		if _, err := submit(t, addr, "alice", "secret", "alice@relay.test", []string{"bob@dest.test"}, testMessage); err != nil {
			t.Fatal(err)
		}
		m := waitMessages(t, w.dest, 1)[0]
		contains(t, "delivered message", string(m.Data), "by relay.test with ESMTPA")
	})
	t.Run("the connection is closed after three failures", func(t *testing.T) {
		c, err := smtp.Dial(addr)
		must(t, err)
		defer c.Close()
		for i := 0; i < maxAuthFailures; i++ {
			wantCode(t, c.Auth(sasl.NewPlainClient("", "alice", "guess")), 535)
		}
		if err := c.Auth(sasl.NewPlainClient("", "alice", "secret")); err == nil {
			t.Error("a fourth attempt succeeded on the same connection")
		}
		if err := c.Noop(); err == nil {
			t.Error("the connection is still open")
		}
	})
}

// TestRelaySTARTTLS checks STARTTLS with a certificate from files: AUTH
// only over TLS, the TLS session in the Received field, and REQUIRETLS
// passed on to the MX host (RFC 8689).
func TestRelaySTARTTLS(t *testing.T) {
	w := newWorld(t, testenv.SMTPOptions{REQUIRETLS: true})
	log := &syncBuffer{}
	cfg := config(t)
	cfg.Users = map[string]string{"alice": hash(t, "secret")}
	cfg.TLSCert, cfg.TLSKey = w.writeCert(t)
	r := start(t, cfg, w.env(log))

	c, err := smtp.Dial(r.Addr().String())
	must(t, err)
	defer c.Close()
	must(t, c.Hello("client.test"))
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH offered before STARTTLS")
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not offered")
	}
	wantCode(t, c.Auth(sasl.NewPlainClient("", "alice", "secret")), 523)

	c2, err := smtp.DialStartTLS(r.Addr().String(), w.tlsConfig())
	must(t, err)
	defer c2.Close()
	must(t, c2.Auth(sasl.NewPlainClient("", "alice", "secret")))
	must(t, c2.Mail("alice@relay.test", &smtp.MailOptions{RequireTLS: true}))
	must(t, c2.Rcpt("bob@dest.test", nil))
	wc, err := c2.Data()
	must(t, err)
	_, err = wc.Write([]byte(testMessage))
	must(t, err)
	must(t, wc.Close())

	m := waitMessages(t, w.dest, 1)[0]
	if !m.MailOptions.RequireTLS {
		t.Error("REQUIRETLS not passed on to the MX host")
	}
	contains(t, "delivered message", string(m.Data), "with ESMTPSA\r\n\t(version=TLS 1.3 cipher=")
}

// TestRelayRefusals checks what the submission server refuses.
func TestRelayRefusals(t *testing.T) {
	w := newWorld(t, testenv.SMTPOptions{})
	log := &syncBuffer{}
	cfg := config(t)
	cfg.MaxRecipients = 2
	cfg.MaxMessageSize = 1000
	r := start(t, cfg, w.env(log))
	addr := r.Addr().String()

	t.Run("REQUIRETLS on a plaintext session is refused with 5.7.10", func(t *testing.T) {
		tc, err := textproto.Dial("tcp", addr)
		must(t, err)
		defer tc.Close()
		steps := []struct {
			cmd  string
			code int
		}{{"", 220}, {"EHLO client.test", 250}, {"MAIL FROM:<alice@relay.test> REQUIRETLS", 530}}
		for _, s := range steps {
			if s.cmd != "" {
				must(t, tc.PrintfLine("%s", s.cmd))
			}
			_, msg, err := tc.ReadResponse(s.code)
			if err != nil {
				t.Fatalf("%q: %v", s.cmd, err)
			}
			if s.code == 530 && !strings.Contains(msg, "5.7.10") {
				t.Errorf("reply %q, want 5.7.10", msg)
			}
		}
	})
	t.Run("a recipient without a domain is refused with 501 5.1.3", func(t *testing.T) {
		_, err := submit(t, addr, "", "", "alice@relay.test", []string{"bob"}, testMessage)
		wantCode(t, err, 501)
	})
	t.Run("recipients beyond max_recipients get 452", func(t *testing.T) {
		_, err := submit(t, addr, "", "", "alice@relay.test", []string{"a@dest.test", "b@dest.test", "c@dest.test"}, testMessage)
		wantCode(t, err, 452)
	})
	t.Run("a message over max_message_size gets 552", func(t *testing.T) {
		_, err := submit(t, addr, "", "", "alice@relay.test", []string{"a@dest.test"}, testMessage+strings.Repeat("x", 1000)+"\r\n")
		wantCode(t, err, 552)
	})
	if n := len(w.dest.Messages()); n != 0 {
		t.Errorf("%d refused messages were delivered", n)
	}
	t.Run("a message at the size limit is queued, Received field and all", func(t *testing.T) {
		// go-smtp v0.25.1 refuses a message of exactly MaxMessageBytes
		// (its data reader runs out before the final ".\r\n"), so the
		// largest message it takes is one byte less.
		body := testMessage + strings.Repeat("x", 999-len(testMessage)-2) + "\r\n"
		if _, err := submit(t, addr, "", "", "alice@relay.test", []string{"a@dest.test"}, body); err != nil {
			t.Fatal(err)
		}
		waitMessages(t, w.dest, 1)
	})
}

// TestRelayShutdown checks that a shutdown lets a delivery under way
// finish, and that one cut short by the shutdown timeout stays queued.
func TestRelayShutdown(t *testing.T) {
	for _, tc := range []struct {
		name       string
		timeout    time.Duration
		delivered  bool // the delivery under way finishes
		storedMsgs int  // messages left in the store
	}{
		{"a delivery under way finishes", 10 * time.Second, true, 0},
		{"a delivery cut short by the timeout stays queued", 50 * time.Millisecond, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arrived, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			w := newWorld(t, testenv.SMTPOptions{DataReply: func(*testenv.Message) *smtp.SMTPError {
				once.Do(func() { close(arrived) })
				<-release
				return nil
			}})
			var releaseOnce sync.Once
			unblock := func() { releaseOnce.Do(func() { close(release) }) }
			t.Cleanup(unblock)
			log := &syncBuffer{}
			cfg := config(t)
			cfg.ShutdownTimeout = Duration(tc.timeout)
			r := start(t, cfg, w.env(log))

			if _, err := submit(t, r.Addr().String(), "", "", "alice@relay.test", []string{"bob@dest.test"}, testMessage); err != nil {
				t.Fatal(err)
			}
			select {
			case <-arrived:
			case <-time.After(15 * time.Second):
				t.Fatalf("the delivery did not reach the MX host\n%s", log)
			}
			r.cancel()
			if tc.delivered {
				waitLog(t, log, "relay: shutting down")
				unblock()
			}
			if err := r.stop(t); err != nil {
				t.Fatalf("Run: %v", err)
			}
			unblock()
			if got := len(w.dest.Messages()) == 1; got != tc.delivered {
				t.Errorf("delivered: %v, want %v\n%s", got, tc.delivered, log)
			}
			st, err := boltstore.Open(cfg.Store, &boltstore.Options{LockTimeout: 100 * time.Millisecond})
			must(t, err)
			defer st.Close()
			envs, err := st.List(context.Background(), "", 10)
			must(t, err)
			if len(envs) != tc.storedMsgs {
				t.Errorf("%d messages stored after shutdown, want %d", len(envs), tc.storedMsgs)
			}
		})
	}
}

// TestRelayTLSRPTReport checks the daily report: yesterday's counts for
// rpt.test become a report, DKIM-signed and delivered through the queue
// to the address of rpt.test's _smtp._tls record (RFC 8460 §3, §5.3).
func TestRelayTLSRPTReport(t *testing.T) {
	w := newWorld(t, testenv.SMTPOptions{})
	log := &syncBuffer{}
	cfg := config(t)
	cfg.TLSRPT = TLSRPTConfig{Organization: "Relay Test", Submitter: "relay.test"}
	env := w.env(log)
	env.Now = reportClock(t, cfg.Store, "rpt.test")
	start(t, cfg, env)

	m := waitMessages(t, w.reports, 1)[0]
	if m.From != "postmaster@relay.test" || len(m.Rcpts) != 1 || m.Rcpts[0].Addr != "tlsrpt@reports.test" {
		t.Errorf("report envelope: from %q to %v", m.From, m.Rcpts)
	}
	contains(t, "report mail", string(m.Data), "DKIM-Signature:", "d=relay.test", "TLS-Report-Domain: rpt.test", "TLS-Required: No")
	if n := strings.Count(string(m.Data), "DKIM-Signature:"); n != 1 {
		t.Errorf("%d DKIM signatures on the report, want the reporter's one", n)
	}
	rep, err := tlsrpt.ParseReportMail(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatalf("the report mail does not parse: %v", err)
	}
	if rep.OrganizationName != "Relay Test" || len(rep.Policies) != 1 {
		t.Fatalf("report: %+v", rep)
	}
	p := rep.Policies[0]
	if p.Policy.Domain != "rpt.test" || p.Summary.TotalSuccessfulSessionCount != 41 || p.Summary.TotalFailureSessionCount != 1 {
		t.Errorf("report policy %+v, want rpt.test with 41 successful and 1 failed session", p)
	}
}

// TestRelayTLSRPTBounce checks that a report address whose server refuses
// the report for good is suppressed (RFC 8460 §3), through the queue's
// ReportBounced hook.
func TestRelayTLSRPTBounce(t *testing.T) {
	w := newWorld(t, testenv.SMTPOptions{})
	must(t, w.DNS.Zone("gone.test", testenv.Insecure, "@ 300 IN MX 10 mx.gone.test."))
	_, _, err := w.MX("mx.gone.test", testenv.SMTPOptions{RcptReply: func(string, *smtp.RcptOptions) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}})
	must(t, err)
	must(t, w.DNS.Zone("rpt2.test", testenv.Secure, `_smtp._tls 300 IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@gone.test"`))
	log := &syncBuffer{}
	cfg := config(t)
	env := w.env(log)
	env.Now = reportClock(t, cfg.Store, "rpt2.test")
	r := start(t, cfg, env)

	deadline := time.Now().Add(10 * time.Second)
	for {
		sups, err := r.store.Suppressions(context.Background())
		must(t, err)
		if len(sups) == 1 && strings.Contains(sups[0].Value, "tlsrpt@gone.test") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("suppressions %+v, want tlsrpt@gone.test\n%s", sups, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRelayTLSRPTReportHTTPS checks a report to an https: destination:
// the report host is found through the relay's resolver and dialled by
// address (review finding 2; the relay's client handed the name to the
// dialer, which a net.Dialer resolves through the machine's resolver).
func TestRelayTLSRPTReportHTTPS(t *testing.T) {
	w := newWorld(t, testenv.SMTPOptions{})
	ip := w.NextIP()
	must(t, w.DNS.Zone("rpth.test", testenv.Secure,
		`_smtp._tls 300 IN TXT "v=TLSRPTv1; rua=https://reports.rpth.test/v1/tlsrpt"`,
		"reports 300 IN A "+ip))
	w.Dialer.Route(ip+":443", w.Policies.Addr())
	log := &syncBuffer{}
	cfg := config(t)
	cfg.TLSRPT = TLSRPTConfig{Organization: "Relay Test", Submitter: "relay.test"}
	env := w.env(log)
	env.Now = reportClock(t, cfg.Store, "rpth.test")
	start(t, cfg, env)

	deadline := time.Now().Add(10 * time.Second)
	for len(w.Policies.Reports()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no report posted to reports.rpth.test; dialled %q\n%s", w.Dialer.Dialed(), log)
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := w.Policies.Reports()
	if len(got) != 1 || got[0].Host != "reports.rpth.test" || got[0].Path != "/v1/tlsrpt" {
		t.Errorf("reports posted: %+v, want one to reports.rpth.test/v1/tlsrpt", got)
	}
}

// reportClock stores yesterday's counts for domain in the store file and
// returns a clock at noon UTC tomorrow (so that certificates issued now
// are valid), well after yesterday's reports are due.
func reportClock(t *testing.T, store, domain string) func() time.Time {
	t.Helper()
	real := time.Now()
	noon := real.UTC().Truncate(24 * time.Hour).Add(36 * time.Hour)
	st, err := boltstore.Open(store, nil)
	must(t, err)
	policy := tlsrpt.NewPolicy(tlsrpt.PolicyTypeSTS, domain,
		[]string{"version: STSv1", "mode: enforce", "mx: mx." + domain, "max_age: 86400"}, []string{"mx." + domain})
	must(t, st.AddCounts(context.Background(), []tlsrpt.Counts{{Day: tlsrpt.DayOf(noon) - 1, Policy: policy, Successful: 41,
		Failures: map[tlsrpt.Failure]int64{{ResultType: tlsrpt.ResultCertificateExpired, ReceivingMXHostname: "mx." + domain}: 1}}}))
	must(t, st.Close())
	return func() time.Time { return noon.Add(time.Since(real)) }
}

// wantCode checks that err is an SMTP reply with the given code.
func wantCode(t *testing.T, err error, code int) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("error %v, want an SMTP reply %d", err, code)
	}
	if se.Code != code {
		t.Errorf("reply %d %v %q, want %d", se.Code, se.EnhancedCode, se.Message, code)
	}
}

// waitLog waits until the log holds s.
func waitLog(t *testing.T, log *syncBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q:\n%s", s, log)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
