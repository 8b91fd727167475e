package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/sealpost/sealpost/internal/testenv"
	"github.com/sealpost/sealpost/tlsrpt"
)

func TestDeliverOpportunisticTLS(t *testing.T) {
	tw := newTestWorld(t, "insecure:plain.example.")
	sink, ip := tw.mx("plain.example", 10, "mx.plain.example", testenv.SMTPOptions{Certificate: tw.cert("other.invalid")})
	c := tw.client(nil)
	res := deliver(t, c, msg("bob@plain.example"))
	want(t, res[0], Delivered, "")
	s := res[0].Session
	if s.MXHost != "mx.plain.example" || s.IP.String() != ip || s.TLSVersion != tls.VersionTLS13 || s.Auth != UnauthenticatedTLS {
		t.Errorf("session = %+v", s)
	}
	if s.HELO == "" || !s.LocalIP.IsValid() || s.CipherSuite == 0 {
		t.Errorf("session = %+v", s)
	}
	if !res[0].Remote || res[0].Code != 250 || res[0].Err != nil {
		t.Errorf("result = %+v", res[0])
	}
	msgs := sink.Messages()
	if len(msgs) != 1 || msgs[0].TLS == nil || msgs[0].Helo != "sender.example" || msgs[0].Rcpts[0].Addr != "bob@plain.example" {
		t.Fatalf("sink got %+v", msgs)
	}
	recs := tw.rec.all()
	if len(recs) != 1 || recs[0].Policy.Type != tlsrpt.PolicyTypeNoPolicyFound || recs[0].Failure != nil || recs[0].Policy.Domain != "plain.example" {
		t.Errorf("TLS-RPT sessions = %+v", recs)
	}
}

func TestDeliverPlaintextWhenSTARTTLSNotOffered(t *testing.T) {
	tw := newTestWorld(t, "insecure:plain.example.")
	tw.mx("plain.example", 10, "mx.plain.example", testenv.SMTPOptions{})
	c := tw.client(nil)
	res := deliver(t, c, msg("bob@plain.example"))
	want(t, res[0], Delivered, "")
	if res[0].Session.Auth != Plaintext || res[0].Session.TLSVersion != 0 {
		t.Errorf("session = %+v", res[0].Session)
	}
	recs := tw.rec.all()
	if len(recs) != 1 || recs[0].Failure == nil || recs[0].Failure.ResultType != tlsrpt.ResultSTARTTLSNotSupported {
		t.Fatalf("TLS-RPT sessions = %+v", recs)
	}
	if f := recs[0].Failure; f.ReceivingMXHostname != "mx.plain.example" || !f.ReceivingIP.IsValid() || !f.SendingMTAIP.IsValid() {
		t.Errorf("failure details = %+v", f)
	}
}

func TestDeliverMovesOnToTheNextHost(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(tw *testWorld, ip string)
		opts   testenv.SMTPOptions
	}{
		{"connection refused", func(tw *testWorld, ip string) { tw.w.Dialer.Refuse(ip + ":25") }, testenv.SMTPOptions{}},
		{"421 greeting", nil, testenv.SMTPOptions{GreetingReply: &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "busy"}}},
		{"554 greeting", nil, testenv.SMTPOptions{GreetingReply: &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 3, 2}, Message: "no service"}}},
		{"dropped at EHLO", nil, testenv.SMTPOptions{DropAt: testenv.StageEHLO}},
		{"dropped at MAIL", nil, testenv.SMTPOptions{DropAt: testenv.StageMAIL}},
		{"dropped at RCPT", nil, testenv.SMTPOptions{DropAt: testenv.StageRCPT}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tw := newTestWorld(t, "insecure:two.example.")
			bad, badIP := tw.mx("two.example", 10, "mx1.two.example", tc.opts)
			good, goodIP := tw.mx("two.example", 20, "mx2.two.example", testenv.SMTPOptions{})
			if tc.break_ != nil {
				tc.break_(tw, badIP)
			}
			c := tw.client(nil)
			res := deliver(t, c, msg("bob@two.example"))
			want(t, res[0], Delivered, "")
			if res[0].Session.MXHost != "mx2.two.example" || len(good.Messages()) != 1 || len(bad.Messages()) != 0 {
				t.Errorf("delivered through %s", res[0].Session.MXHost)
			}
			if d := tw.w.Dialer.Dialed(); !slices.Equal(d, []string{badIP + ":25", goodIP + ":25"}) {
				t.Errorf("dialed %v", d)
			}
		})
	}
}

func TestEveryAddressBeforeTheNextHost(t *testing.T) {
	tw := newTestWorld(t, "insecure:multi.example.")
	_, ip1 := tw.mx("multi.example", 10, "mx1.multi.example", testenv.SMTPOptions{})
	tw.w.Dialer.Refuse(ip1 + ":25")
	// mx1 gets a second IPv4 address and an IPv6 one, both refused too.
	ip1b := tw.w.NextIP()
	tw.w.Dialer.Refuse(ip1b + ":25")
	tw.w.Dialer.Refuse("[::1]:25")
	if err := tw.w.DNS.Add("mx1.multi.example. 300 IN A "+ip1b, "mx1.multi.example. 300 IN AAAA ::1"); err != nil {
		t.Fatal(err)
	}
	_, ip2 := tw.mx("multi.example", 20, "mx2.multi.example", testenv.SMTPOptions{})
	c := tw.client(nil)
	res := deliver(t, c, msg("bob@multi.example"))
	want(t, res[0], Delivered, "")
	// IPv6 first, then interleaved; all of mx1 before mx2.
	wantOrder := []string{"[::1]:25", ip1 + ":25", ip1b + ":25", ip2 + ":25"}
	if d := tw.w.Dialer.Dialed(); !slices.Equal(d, wantOrder) {
		t.Errorf("dialed %v, want %v", d, wantOrder)
	}
}

func TestAllHostsDownIsTemporary(t *testing.T) {
	tw := newTestWorld(t, "insecure:down.example.")
	_, ip1 := tw.mx("down.example", 10, "mx1.down.example", testenv.SMTPOptions{})
	_, ip2 := tw.mx("down.example", 20, "mx2.down.example", testenv.SMTPOptions{})
	tw.w.Dialer.Refuse(ip1 + ":25")
	tw.w.Dialer.Refuse(ip2 + ":25")
	c := tw.client(nil)
	res := deliver(t, c, msg("bob@down.example"))
	want(t, res[0], TemporaryFailure, "4.4.1")
	if res[0].Remote || res[0].Err == nil {
		t.Errorf("result = %+v", res[0])
	}
}

// When a single host failed, the recipient's error is that host's failure,
// said once: not wrapped in a summary that repeats it.
func TestOneHostFailedSaysItOnce(t *testing.T) {
	tw := newTestWorld(t, "insecure:local.example.")
	tw.mx("local.example", 10, "mx.local.example", testenv.SMTPOptions{})
	c := tw.client(func(cfg *Config) { cfg.Policy.Default.RequireTLS = true })
	res := deliver(t, c, msg("bob@local.example"))
	want(t, res[0], TemporaryFailure, "4.7.10")
	text := res[0].Err.Error()
	if n := strings.Count(text, "did not offer STARTTLS"); n != 1 {
		t.Errorf("error says it %d times: %q", n, text)
	}
	var de *Error
	if !errors.As(res[0].Err, &de) || de.Message != res[0].Text || !de.Temporary {
		t.Errorf("error %#v, text %q", res[0].Err, res[0].Text)
	}
}

func TestPerRecipientReplies(t *testing.T) {
	tw := newTestWorld(t, "insecure:rcpt.example.")
	sink, _ := tw.mx("rcpt.example", 10, "mx.rcpt.example", testenv.SMTPOptions{
		RcptReply: func(to string, _ *smtp.RcptOptions) *smtp.SMTPError {
			switch {
			case strings.HasPrefix(to, "gone"):
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			case strings.HasPrefix(to, "full"):
				return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
			}
			return nil
		},
	})
	c := tw.client(nil)
	res := deliver(t, c, msg("bob@rcpt.example", "gone@rcpt.example", "full@rcpt.example", "nodomain"))
	want(t, res[0], Delivered, "")
	want(t, res[1], PermanentFailure, "5.1.1")
	want(t, res[2], TemporaryFailure, "4.2.2")
	want(t, res[3], PermanentFailure, "5.1.3")
	if !res[1].Remote || res[1].Text != "no such user" || res[1].Session.MXHost != "mx.rcpt.example" {
		t.Errorf("refused recipient: %+v", res[1])
	}
	if m := sink.Messages(); len(m) != 1 || len(m[0].Rcpts) != 1 {
		t.Errorf("sink got %+v", m)
	}
}

func TestDataFailureAppliesToEveryAcceptedRecipient(t *testing.T) {
	for _, code := range []int{451, 554} {
		t.Run(itoa(code), func(t *testing.T) {
			tw := newTestWorld(t, "insecure:data.example.")
			tw.mx("data.example", 10, "mx.data.example", testenv.SMTPOptions{
				RcptReply: func(to string, _ *smtp.RcptOptions) *smtp.SMTPError {
					if strings.HasPrefix(to, "gone") {
						return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
					}
					return nil
				},
				DataReply: func(*testenv.Message) *smtp.SMTPError {
					return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 7, 1}, Message: "content refused"}
				},
			})
			c := tw.client(nil)
			res := deliver(t, c, msg("a@data.example", "b@data.example", "gone@data.example"))
			st := TemporaryFailure
			if code >= 500 {
				st = PermanentFailure
			}
			want(t, res[0], st, itoa(code/100)+".7.1")
			want(t, res[1], st, itoa(code/100)+".7.1")
			want(t, res[2], PermanentFailure, "5.1.1")
		})
	}
}

func TestConnectionLostAfterDataIsTemporary(t *testing.T) {
	tw := newTestWorld(t, "insecure:lost.example.")
	tw.mx("lost.example", 10, "mx1.lost.example", testenv.SMTPOptions{DropAt: testenv.StageDATA})
	second, _ := tw.mx("lost.example", 20, "mx2.lost.example", testenv.SMTPOptions{})
	c := tw.client(nil)
	res := deliver(t, c, msg("bob@lost.example"))
	want(t, res[0], TemporaryFailure, "4.4.2")
	if len(second.Messages()) != 0 {
		t.Error("the message went to the next host after the first may have taken it")
	}
}

func TestCapabilitiesTheMessageNeeds(t *testing.T) {
	tests := []struct {
		name     string
		opts     testenv.SMTPOptions
		edit     func(*Message)
		enhanced string
	}{
		{"message over SIZE", testenv.SMTPOptions{MaxMessageBytes: 10}, nil, "5.3.4"},
		{"UTF-8 address without SMTPUTF8", testenv.SMTPOptions{}, func(m *Message) { m.Recipients[0].Address = "j\u00f6rg@cap.example" }, "5.6.7"},
		{"UTF-8 header without SMTPUTF8", testenv.SMTPOptions{}, func(m *Message) { m.SMTPUTF8 = true }, "5.6.7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tw := newTestWorld(t, "insecure:cap.example.")
			sink, _ := tw.mx("cap.example", 10, "mx.cap.example", tc.opts)
			c := tw.client(nil)
			m := msg("bob@cap.example")
			if tc.edit != nil {
				tc.edit(m)
			}
			res := deliver(t, c, m)
			want(t, res[0], PermanentFailure, tc.enhanced)
			if len(sink.Messages()) != 0 {
				t.Error("the sink got the message")
			}
		})
	}
	t.Run("UTF-8 address with SMTPUTF8", func(t *testing.T) {
		tw := newTestWorld(t, "insecure:cap.example.")
		sink, _ := tw.mx("cap.example", 10, "mx.cap.example", testenv.SMTPOptions{SMTPUTF8: true})
		c := tw.client(nil)
		res := deliver(t, c, msg("j\u00f6rg@cap.example"))
		want(t, res[0], Delivered, "")
		if m := sink.Messages(); len(m) != 1 || !m[0].MailOptions.UTF8 {
			t.Errorf("sink got %+v", m)
		}
	})
}

func TestDSNParameters(t *testing.T) {
	tw := newTestWorld(t, "insecure:dsn.example.")
	sink, _ := tw.mx("dsn.example", 10, "mx.dsn.example", testenv.SMTPOptions{DSN: true})
	c := tw.client(nil)
	m := msg("bob@dsn.example")
	m.Return, m.EnvID = smtp.DSNReturnHeaders, "q123"
	m.Recipients[0].Notify = []smtp.DSNNotify{smtp.DSNNotifyFailure, smtp.DSNNotifyDelayed}
	m.Recipients[0].ORcpt = "bob@dsn.example"
	res := deliver(t, c, m)
	want(t, res[0], Delivered, "")
	got := sink.Messages()[0]
	if got.MailOptions.Return != smtp.DSNReturnHeaders || got.MailOptions.EnvelopeID != "q123" {
		t.Errorf("MAIL options = %+v", got.MailOptions)
	}
	ro := got.Rcpts[0].Options
	if len(ro.Notify) != 2 || ro.OriginalRecipient != "bob@dsn.example" {
		t.Errorf("RCPT options = %+v", ro)
	}
	if !res[0].Session.DSN {
		t.Error("Session.DSN = false for a server that took the DSN request")
	}
	t.Run("server without DSN", func(t *testing.T) {
		// RFC 3461 §5.2.2: the request stops here; the session says so,
		// for the sender to issue a "relayed" DSN itself.
		tw := newTestWorld(t, "insecure:nodsn.example.")
		sink, _ := tw.mx("nodsn.example", 10, "mx.nodsn.example", testenv.SMTPOptions{})
		m := msg("bob@nodsn.example")
		m.Recipients[0].Notify = []smtp.DSNNotify{smtp.DSNNotifySuccess}
		res := deliver(t, tw.client(nil), m)
		want(t, res[0], Delivered, "")
		if res[0].Session.DSN {
			t.Error("Session.DSN = true for a server without DSN")
		}
		if ro := sink.Messages()[0].Rcpts[0].Options; len(ro.Notify) != 0 {
			t.Errorf("NOTIFY passed to a server without DSN: %+v", ro)
		}
	})
}

func TestConnectionReuse(t *testing.T) {
	tw := newTestWorld(t, "insecure:reuse.example.")
	sink, _ := tw.mx("reuse.example", 10, "mx.reuse.example", testenv.SMTPOptions{Certificate: tw.cert("mx.reuse.example")})
	c := tw.client(nil)
	for i := 0; i < 5; i++ {
		res := deliver(t, c, msg("bob@reuse.example"))
		want(t, res[0], Delivered, "")
		if res[0].Session.Reused != (i > 0) {
			t.Errorf("message %d: Reused = %v", i, res[0].Session.Reused)
		}
	}
	msgs := sink.Messages()
	for _, m := range msgs {
		if m.Conn != msgs[0].Conn {
			t.Fatalf("messages came over connections %d and %d", msgs[0].Conn, m.Conn)
		}
	}
	if n := sink.TLSHandshakes(); n != 1 {
		t.Errorf("%d TLS handshakes, want 1", n)
	}
	if n := len(tw.rec.all()); n != 1 {
		t.Errorf("%d TLS-RPT sessions recorded, want 1", n)
	}
}

func TestReuseSurvivesAServerThatClosedTheIdleSession(t *testing.T) {
	tw := newTestWorld(t, "insecure:reuse.example.")
	sink, _ := tw.mx("reuse.example", 10, "mx.reuse.example", testenv.SMTPOptions{})
	c := tw.client(nil)
	want(t, deliver(t, c, msg("bob@reuse.example"))[0], Delivered, "")
	// The server closes every connection it has, the idle one included.
	c.pool.mu.Lock()
	for _, h := range c.pool.hosts {
		for _, list := range h.idle {
			for _, s := range list {
				s.conn.Close()
			}
		}
	}
	c.pool.mu.Unlock()
	res := deliver(t, c, msg("bob@reuse.example"))
	want(t, res[0], Delivered, "")
	if res[0].Session.Reused {
		t.Error("the dead session was reused")
	}
	if n := len(sink.Messages()); n != 2 {
		t.Errorf("sink got %d messages", n)
	}
}

func TestPerHostLimit(t *testing.T) {
	tw := newTestWorld(t, "insecure:limit.example.")
	sink, _ := tw.mx("limit.example", 10, "mx.limit.example", testenv.SMTPOptions{})
	c := tw.client(func(cfg *Config) { cfg.MaxConnsPerHost = 2 })
	errs := make(chan error, 10)
	for i := 0; i < 10; i++ {
		go func() {
			res, err := c.Deliver(context.Background(), msg("bob@limit.example"))
			if err == nil && res[0].Status != Delivered {
				err = res[0].Err
			}
			errs <- err
		}()
	}
	for i := 0; i < 10; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := sink.Connections(); n > 2 {
		t.Errorf("%d connections, limit 2", n)
	}
}

func TestNullMXAndMissingDomain(t *testing.T) {
	tw := newTestWorld(t, "nullmx.example.")
	if err := tw.w.DNS.Add("nullmx.example. 300 IN MX 0 ."); err != nil {
		t.Fatal(err)
	}
	c := tw.client(nil)
	res := deliver(t, c, msg("bob@nullmx.example", "bob@nowhere.nullmx.example"))
	want(t, res[0], PermanentFailure, "5.1.10")
	want(t, res[1], PermanentFailure, "5.1.2")
	if len(tw.w.Dialer.Dialed()) != 0 {
		t.Error("something was dialed")
	}
}

func TestDomainsAreDeliveredSeparately(t *testing.T) {
	tw := newTestWorld(t, "insecure:one.example.", "insecure:two.example.")
	s1, _ := tw.mx("one.example", 10, "mx.one.example", testenv.SMTPOptions{})
	s2, _ := tw.mx("two.example", 10, "mx.two.example", testenv.SMTPOptions{})
	c := tw.client(nil)
	res := deliver(t, c, msg("a@one.example", "b@two.example", "c@ONE.example"))
	for _, r := range res {
		want(t, r, Delivered, "")
	}
	if m := s1.Messages(); len(m) != 1 || len(m[0].Rcpts) != 2 {
		t.Errorf("one.example got %+v", m)
	}
	if m := s2.Messages(); len(m) != 1 || len(m[0].Rcpts) != 1 {
		t.Errorf("two.example got %+v", m)
	}
}

func TestNextHop(t *testing.T) {
	tw := newTestWorld(t, "insecure:relay.example.")
	relay, ip := tw.mx("", 0, "smtp.relay.example", testenv.SMTPOptions{})
	c := tw.client(func(cfg *Config) {
		cfg.Policy.Domains = map[string]DomainPolicy{"far.example": {NextHop: "[smtp.relay.example]"}}
	})
	res := deliver(t, c, msg("bob@far.example"))
	want(t, res[0], Delivered, "")
	if res[0].Session.MXHost != "smtp.relay.example" || res[0].Session.IP != netip.MustParseAddr(ip) || len(relay.Messages()) != 1 {
		t.Errorf("session = %+v", res[0].Session)
	}
	// Per message, with a port.
	to, _ := tw.w.Dialer.Target(ip + ":25")
	tw.w.Dialer.Route(ip+":2525", to)
	m := msg("bob@elsewhere.example")
	m.NextHop = "[smtp.relay.example]:2525"
	want(t, deliver(t, c, m)[0], Delivered, "")
	if res := deliver(t, c, &Message{Recipients: []Recipient{{Address: "x@y.example"}}, NextHop: "[bad"}); res[0].Status != TemporaryFailure {
		t.Errorf("bad next hop: %+v", res[0])
	}
}

func TestDeliverRefusesUnusableMessages(t *testing.T) {
	c, err := NewClient(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, m := range []*Message{{}, {Recipients: []Recipient{{Address: "a@b"}}, Size: -1}, {Recipients: []Recipient{{Address: "a@b"}}, Size: 3}} {
		if _, err := c.Deliver(context.Background(), m); err == nil {
			t.Errorf("Deliver(%+v) succeeded", m)
		}
	}
	var de *Error
	if !errors.As(asError(errors.New("x")), &de) || !de.Temporary {
		t.Error("asError of a plain error is not a temporary *Error")
	}
}

func TestPoolIdleTimeoutAndLimits(t *testing.T) {
	idle := func(c *Client) int {
		c.pool.mu.Lock()
		defer c.pool.mu.Unlock()
		n := 0
		for _, h := range c.pool.hosts {
			for _, list := range h.idle {
				n += len(list)
			}
		}
		return n
	}
	t.Run("idle sessions are closed after the timeout", func(t *testing.T) {
		tw := newTestWorld(t, "insecure:pool.example.")
		tw.mx("pool.example", 10, "mx.pool.example", testenv.SMTPOptions{})
		c := tw.client(func(cfg *Config) { cfg.IdleTimeout = 20 * time.Millisecond })
		want(t, deliver(t, c, msg("bob@pool.example"))[0], Delivered, "")
		deadline := time.Now().Add(5 * time.Second)
		for idle(c) != 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if n := idle(c); n != 0 {
			t.Fatalf("%d idle sessions left", n)
		}
		res := deliver(t, c, msg("bob@pool.example"))
		want(t, res[0], Delivered, "")
		if res[0].Session.Reused {
			t.Error("an expired session was reused")
		}
	})
	t.Run("MaxMessagesPerConn", func(t *testing.T) {
		tw := newTestWorld(t, "insecure:pool.example.")
		sink, _ := tw.mx("pool.example", 10, "mx.pool.example", testenv.SMTPOptions{})
		c := tw.client(func(cfg *Config) { cfg.MaxMessagesPerConn = 2 })
		for i := 0; i < 5; i++ {
			want(t, deliver(t, c, msg("bob@pool.example"))[0], Delivered, "")
		}
		if n := sink.Connections(); n != 3 {
			t.Errorf("%d connections for 5 messages at 2 per connection", n)
		}
	})
	t.Run("negative IdleTimeout disables reuse, Close ends idle sessions", func(t *testing.T) {
		tw := newTestWorld(t, "insecure:pool.example.")
		sink, _ := tw.mx("pool.example", 10, "mx.pool.example", testenv.SMTPOptions{})
		c := tw.client(func(cfg *Config) { cfg.IdleTimeout = -1 })
		want(t, deliver(t, c, msg("bob@pool.example"))[0], Delivered, "")
		want(t, deliver(t, c, msg("bob@pool.example"))[0], Delivered, "")
		if n := sink.Connections(); n != 2 {
			t.Errorf("%d connections without reuse, want 2", n)
		}
		c2 := tw.client(nil)
		want(t, deliver(t, c2, msg("bob@pool.example"))[0], Delivered, "")
		if idle(c2) != 1 {
			t.Fatal("no idle session kept")
		}
		c2.Close()
		if idle(c2) != 0 {
			t.Error("Close left idle sessions")
		}
		res := deliver(t, c2, msg("bob@pool.example"))
		want(t, res[0], Delivered, "")
		if idle(c2) != 0 {
			t.Error("a closed Client kept a session")
		}
	})
}

func TestObserver(t *testing.T) {
	tw := newTestWorld(t, "insecure:obs.example.")
	_, dead := tw.mx("obs.example", 10, "mx1.obs.example", testenv.SMTPOptions{})
	tw.w.Dialer.Refuse(dead + ":25")
	tw.mx("obs.example", 20, "mx2.obs.example", testenv.SMTPOptions{})
	var mu sync.Mutex
	var skipped, started, failedStarts, txResults int
	c := tw.client(func(cfg *Config) {
		cfg.Observer = Observer{
			HostSkipped: func(domain, host string, err error) {
				mu.Lock()
				defer mu.Unlock()
				if domain == "obs.example" && host == "mx1.obs.example" && err != nil {
					skipped++
				}
			},
			SessionStarted: func(s Session, d time.Duration, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failedStarts++
				} else if s.MXHost == "mx2.obs.example" {
					started++
				}
			},
			Transaction: func(s Session, results []Result, d time.Duration) {
				mu.Lock()
				defer mu.Unlock()
				txResults += len(results)
			},
		}
	})
	want(t, deliver(t, c, msg("a@obs.example", "b@obs.example"))[0], Delivered, "")
	mu.Lock()
	defer mu.Unlock()
	if skipped != 1 || started != 1 || failedStarts != 1 || txResults != 2 {
		t.Errorf("skipped %d, started %d, failed starts %d, transaction results %d", skipped, started, failedStarts, txResults)
	}
}

func TestInternationalisedDomainAndAddressLiteral(t *testing.T) {
	tw := newTestWorld(t, "insecure:xn--bcher-kva.example.")
	idn, _ := tw.mx("xn--bcher-kva.example", 10, "mx.xn--bcher-kva.example", testenv.SMTPOptions{SMTPUTF8: true})
	lit, ip := tw.mx("", 0, "literal.xn--bcher-kva.example", testenv.SMTPOptions{})
	c := tw.client(func(cfg *Config) { cfg.AllowAddressLiterals = true })
	res := deliver(t, c, msg("bob@b\u00fccher.example", "bob@["+ip+"]", "bob@bad..\u00fc.example"))
	want(t, res[0], Delivered, "")
	want(t, res[1], Delivered, "")
	want(t, res[2], PermanentFailure, "5.1.3")
	if m := idn.Messages(); len(m) != 1 || m[0].Rcpts[0].Addr != "bob@b\u00fccher.example" || !m[0].MailOptions.UTF8 {
		t.Errorf("IDN sink got %+v", m)
	}
	if len(lit.Messages()) != 1 || res[1].Session.Requirement.Basis != NoPolicy {
		t.Errorf("literal: %+v", res[1].Session)
	}
}

func TestDroppedTransactionMovesToTheNextAddressOfTheSameHost(t *testing.T) {
	tw := newTestWorld(t, "insecure:addr.example.")
	dropper, _ := tw.mx("addr.example", 10, "mx1.addr.example", testenv.SMTPOptions{DropAt: testenv.StageMAIL})
	good, err := testenv.StartSMTP(testenv.SMTPOptions{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(good.Close)
	ip2 := tw.w.NextIP()
	tw.w.Dialer.Route(ip2+":25", good.Addr())
	if err := tw.w.DNS.Add("mx1.addr.example. 300 IN A " + ip2); err != nil {
		t.Fatal(err)
	}
	backup, _ := tw.mx("addr.example", 20, "mx2.addr.example", testenv.SMTPOptions{})
	c := tw.client(nil)
	res := deliver(t, c, msg("bob@addr.example"))
	want(t, res[0], Delivered, "")
	if res[0].Session.MXHost != "mx1.addr.example" || res[0].Session.IP.String() != ip2 {
		t.Errorf("delivered over %s [%s]", res[0].Session.MXHost, res[0].Session.IP)
	}
	if dropper.Connections() != 1 || len(good.Messages()) != 1 || backup.Connections() != 0 {
		t.Errorf("connections: dropper %d, good %d messages, backup %d", dropper.Connections(), len(good.Messages()), backup.Connections())
	}
}
