package testenv

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

const testBody = "From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n"

func startSink(t *testing.T, opts SMTPOptions) *SMTPServer {
	t.Helper()
	s, err := StartSMTP(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// dialSink connects a go-smtp client; with cfg it runs STARTTLS first.
func dialSink(t *testing.T, addr string, cfg *tls.Config) (*smtp.Client, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return greet(t, conn, cfg)
}

// greet says EHLO on conn, running STARTTLS with cfg first when cfg is
// set; conn is closed when the test ends.
func greet(t *testing.T, conn net.Conn, cfg *tls.Config) (*smtp.Client, error) {
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if cfg == nil {
		c := smtp.NewClient(conn)
		return c, c.Hello("client.example.org")
	}
	c, err := smtp.NewClientStartTLS(conn, cfg)
	if err != nil {
		return nil, err
	}
	return c, c.Hello("client.example.org")
}

// send runs one transaction and says at which step it failed.
func send(c *smtp.Client, mopts *smtp.MailOptions, ropts *smtp.RcptOptions, rcpts ...string) (string, error) {
	if err := c.Mail("a@example.org", mopts); err != nil {
		return "MAIL", err
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, ropts); err != nil {
			return "RCPT " + r, err
		}
	}
	w, err := c.Data()
	if err != nil {
		return "DATA", err
	}
	if _, err := w.Write([]byte(testBody)); err != nil {
		return "DATA", err
	}
	if err := w.Close(); err != nil {
		return "DATA", err
	}
	return "", nil
}

// smtpCode returns the reply code carried by a go-smtp or a textproto
// error, or 0 when err is no SMTP reply.
func smtpCode(err error) int {
	var e *smtp.SMTPError
	if errors.As(err, &e) {
		return e.Code
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

func TestSMTPPlaintext(t *testing.T) {
	s := startSink(t, SMTPOptions{Addr: "127.0.0.2:0", Hostname: "mx.example.com"})
	if !strings.HasPrefix(s.Addr(), "127.0.0.2:") {
		t.Errorf("Addr() = %q, want 127.0.0.2:port", s.Addr())
	}
	c, err := dialSink(t, s.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS advertised without a certificate")
	}
	if step, err := send(c, nil, nil, "b@example.com", "c@example.com"); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	c.Quit()
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.TLS != nil || m.Helo != "client.example.org" || m.From != "a@example.org" || m.Conn != 1 ||
		string(m.Data) != testBody || len(m.Rcpts) != 2 || m.Rcpts[1].Addr != "c@example.com" {
		t.Errorf("recorded %+v", m)
	}
}

func TestSMTPGreetingHostname(t *testing.T) {
	s := startSink(t, SMTPOptions{Hostname: "mx1.example.com"})
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	code, msg, err := textproto.NewReader(bufio.NewReader(conn)).ReadResponse(220)
	if err != nil || !strings.HasPrefix(msg, "mx1.example.com ") {
		t.Errorf("greeting %d %q, %v; want 220 mx1.example.com ...", code, msg, err)
	}
}

func TestSMTPSTARTTLS(t *testing.T) {
	ca := newCAForTest(t)
	cert := ca.MustLeaf(LeafOptions{}, "mx.example.com")
	s := startSink(t, SMTPOptions{Certificate: &cert, REQUIRETLS: true, DSN: true, SMTPUTF8: true})

	plain, err := dialSink(t, s.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := plain.Extension("STARTTLS"); !ok {
		t.Error("STARTTLS not advertised with a certificate")
	}
	if ok, _ := plain.Extension("REQUIRETLS"); ok {
		t.Error("REQUIRETLS advertised before TLS (RFC 8689 §4 forbids)")
	}

	c, err := dialSink(t, s.Addr(), &tls.Config{RootCAs: ca.Pool(), ServerName: "mx.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{"REQUIRETLS", "DSN", "SMTPUTF8"} {
		if ok, _ := c.Extension(ext); !ok {
			t.Errorf("%s not advertised over TLS", ext)
		}
	}
	mopts := &smtp.MailOptions{RequireTLS: true, Return: smtp.DSNReturnHeaders, EnvelopeID: "env-1", UTF8: true}
	ropts := &smtp.RcptOptions{Notify: []smtp.DSNNotify{smtp.DSNNotifyFailure, smtp.DSNNotifyDelayed},
		OriginalRecipientType: smtp.DSNAddressTypeRFC822, OriginalRecipient: "orig@example.com"}
	if step, err := send(c, mopts, ropts, "b@example.com"); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	m := s.Messages()[0]
	if m.TLS == nil || m.TLS.Version != tls.VersionTLS13 || m.TLS.ServerName != "mx.example.com" {
		t.Fatalf("TLS state %+v, want TLS 1.3 with SNI mx.example.com", m.TLS)
	}
	o := m.MailOptions
	if !o.RequireTLS || o.Return != smtp.DSNReturnHeaders || o.EnvelopeID != "env-1" || !o.UTF8 || o.Body != smtp.Body8BitMIME {
		t.Errorf("MAIL parameters %+v", o)
	}
	r := m.Rcpts[0].Options
	if !slices.Equal(r.Notify, ropts.Notify) || r.OriginalRecipient != "orig@example.com" {
		t.Errorf("RCPT parameters %+v", r)
	}
	if s.TLSHandshakes() != 1 || s.Connections() != 2 {
		t.Errorf("handshakes %d, connections %d; want 1, 2", s.TLSHandshakes(), s.Connections())
	}
}

func TestSMTPTLSVersions(t *testing.T) {
	ca := newCAForTest(t)
	cert := ca.MustLeaf(LeafOptions{}, "mx.example.com")
	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "mx.example.com", MinVersion: tls.VersionTLS10}
	tests := []struct {
		name     string
		min, max uint16
		client   uint16 // client MaxVersion, 0 = default
		want     uint16 // 0 = handshake fails
	}{
		{"default is TLS 1.3", 0, 0, 0, tls.VersionTLS13},
		{"max TLS 1.2", 0, tls.VersionTLS12, 0, tls.VersionTLS12},
		{"only TLS 1.1", tls.VersionTLS10, tls.VersionTLS11, 0, tls.VersionTLS11},
		{"min TLS 1.3 refuses a TLS 1.2 client", tls.VersionTLS13, 0, tls.VersionTLS12, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSink(t, SMTPOptions{Certificate: &cert, MinTLSVersion: tt.min, MaxTLSVersion: tt.max})
			cfg := client.Clone()
			cfg.MaxVersion = tt.client
			c, err := dialSink(t, s.Addr(), cfg)
			if tt.want == 0 {
				if err == nil {
					t.Fatal("handshake succeeded, want failure")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if step, err := send(c, nil, nil, "b@example.com"); err != nil {
				t.Fatalf("%s: %v", step, err)
			}
			if v := s.Messages()[0].TLS.Version; v != tt.want {
				t.Errorf("version %x, want %x", v, tt.want)
			}
		})
	}
}

func TestSMTPExtensionsOff(t *testing.T) {
	ca := newCAForTest(t)
	cert := ca.MustLeaf(LeafOptions{}, "mx.example.com")
	s := startSink(t, SMTPOptions{Certificate: &cert, MaxMessageBytes: 100})
	c, err := dialSink(t, s.Addr(), &tls.Config{RootCAs: ca.Pool(), ServerName: "mx.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{"REQUIRETLS", "DSN", "SMTPUTF8"} {
		if ok, _ := c.Extension(ext); ok {
			t.Errorf("%s advertised though off", ext)
		}
	}
	if ok, size := c.Extension("SIZE"); !ok || size != "100" {
		t.Errorf("SIZE %v %q, want SIZE 100", ok, size)
	}
	if err := c.Mail("a@example.org", &smtp.MailOptions{Size: 200}); smtpCode(err) != 552 {
		t.Errorf("MAIL SIZE=200 over the limit: %v, want 552", err)
	}
}

func TestSMTPReplies(t *testing.T) {
	rcptReply := func(to string, _ *smtp.RcptOptions) *smtp.SMTPError {
		switch to {
		case "unknown@example.com":
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		case "full@example.com":
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
		}
		return nil
	}
	tests := []struct {
		name     string
		opts     SMTPOptions
		rcpts    []string
		wantStep string
		wantCode int
		recorded int // recipients of the recorded message, -1 for none
	}{
		{"all accepted", SMTPOptions{RcptReply: rcptReply}, []string{"b@example.com"}, "", 0, 1},
		{"permanent recipient failure", SMTPOptions{RcptReply: rcptReply}, []string{"unknown@example.com"}, "RCPT unknown@example.com", 550, -1},
		{"temporary recipient failure", SMTPOptions{RcptReply: rcptReply}, []string{"full@example.com"}, "RCPT full@example.com", 452, -1},
		{"MAIL refused", SMTPOptions{MailReply: func(string, *smtp.MailOptions) *smtp.SMTPError {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted"}
		}}, []string{"b@example.com"}, "MAIL", 451, -1},
		{"DATA refused", SMTPOptions{DataReply: func(*Message) *smtp.SMTPError {
			return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "spam"}
		}}, []string{"b@example.com"}, "DATA", 554, -1},
		{"DATA reply sees the envelope", SMTPOptions{DataReply: func(m *Message) *smtp.SMTPError {
			if m.TLS == nil && m.Rcpts[0].Addr == "b@example.com" {
				return nil
			}
			return &smtp.SMTPError{Code: 550}
		}}, []string{"b@example.com"}, "", 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSink(t, tt.opts)
			c, err := dialSink(t, s.Addr(), nil)
			if err != nil {
				t.Fatal(err)
			}
			step, err := send(c, nil, nil, tt.rcpts...)
			if step != tt.wantStep || smtpCode(err) != tt.wantCode {
				t.Errorf("failed at %q with %v, want %q with %d", step, err, tt.wantStep, tt.wantCode)
			}
			msgs := s.Messages()
			if tt.recorded < 0 && len(msgs) != 0 || tt.recorded >= 0 && (len(msgs) != 1 || len(msgs[0].Rcpts) != tt.recorded) {
				t.Errorf("recorded %+v", msgs)
			}
		})
	}
}

func TestSMTPRejectedRecipientNotRecorded(t *testing.T) {
	s := startSink(t, SMTPOptions{RcptReply: func(to string, _ *smtp.RcptOptions) *smtp.SMTPError {
		if to == "bad@example.com" {
			return &smtp.SMTPError{Code: 550, Message: "no"}
		}
		return nil
	}})
	c, err := dialSink(t, s.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@example.org", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("bad@example.com", nil); smtpCode(err) != 550 {
		t.Fatalf("RCPT bad: %v, want 550", err)
	}
	if err := c.Rcpt("good@example.com", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(testBody))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if r := s.Messages()[0].Rcpts; len(r) != 1 || r[0].Addr != "good@example.com" {
		t.Errorf("recipients %+v, want only good@example.com", r)
	}
}

func TestSMTPGreetingReply(t *testing.T) {
	for _, code := range []int{421, 554} {
		s := startSink(t, SMTPOptions{GreetingReply: &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 3, 2}, Message: "go away"}})
		_, err := dialSink(t, s.Addr(), nil)
		if smtpCode(err) != code {
			t.Errorf("greeting: %v, want %d", err, code)
		}
		if s.Connections() != 1 {
			t.Errorf("connections %d, want 1", s.Connections())
		}
	}
}

func TestSMTPDrop(t *testing.T) {
	ca := newCAForTest(t)
	cert := ca.MustLeaf(LeafOptions{}, "mx.example.com")
	cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "mx.example.com"}
	tests := []struct {
		stage    Stage
		wantStep string // "connect" = the client fails before any transaction
	}{
		{StageConnect, "connect"},
		{StageEHLO, "connect"},
		{StageSTARTTLS, "connect"},
		{StageTLSEHLO, "connect"},
		{StageMAIL, "MAIL"},
		{StageRCPT, "RCPT b@example.com"},
		{StageDATA, "DATA"},
	}
	for _, tt := range tests {
		s := startSink(t, SMTPOptions{Certificate: &cert, DropAt: tt.stage})
		c, err := dialSink(t, s.Addr(), cfg)
		step := "connect"
		if err == nil {
			step, err = send(c, nil, nil, "b@example.com")
		}
		if step != tt.wantStep || err == nil || smtpCode(err) != 0 {
			t.Errorf("stage %d: failed at %q with %v, want a dropped connection at %q", tt.stage, step, err, tt.wantStep)
		}
		if n := len(s.Messages()); n != 0 {
			t.Errorf("stage %d: %d messages recorded", tt.stage, n)
		}
	}
}

func TestSMTPConnectionReuse(t *testing.T) {
	ca := newCAForTest(t)
	cert := ca.MustLeaf(LeafOptions{}, "mx.example.com")
	s := startSink(t, SMTPOptions{Certificate: &cert})
	c, err := dialSink(t, s.Addr(), &tls.Config{RootCAs: ca.Pool(), ServerName: "mx.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if step, err := send(c, nil, nil, "b@example.com"); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	c.Quit()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msgs, err := s.WaitMessages(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].Conn != msgs[1].Conn || msgs[0].TLS == nil || msgs[1].TLS == nil {
		t.Errorf("messages came over connections %d and %d", msgs[0].Conn, msgs[1].Conn)
	}
	if s.Connections() != 1 || s.TLSHandshakes() != 1 {
		t.Errorf("connections %d, handshakes %d; want 1, 1", s.Connections(), s.TLSHandshakes())
	}
}

func TestSMTPWaitMessages(t *testing.T) {
	s := startSink(t, SMTPOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if msgs, err := s.WaitMessages(ctx, 1); !errors.Is(err, context.DeadlineExceeded) || len(msgs) != 0 {
		t.Errorf("WaitMessages on an idle sink: %v, %v; want deadline exceeded", msgs, err)
	}

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := s.WaitMessages(ctx, 1)
		done <- err
	}()
	c, err := dialSink(t, s.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if step, err := send(c, nil, nil, "b@example.com"); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	if err := <-done; err != nil {
		t.Errorf("WaitMessages: %v", err)
	}
}

func TestSMTPCloseEndsOpenConnections(t *testing.T) {
	s, err := StartSMTP(SMTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := dialSink(t, s.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()
	if err := c.Noop(); err == nil {
		t.Error("connection still usable after Close")
	}
}

func newCAForTest(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA("sealpost testenv root")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestSMTPGreeting554WaitsForQUIT(t *testing.T) {
	// RFC 5321 §3.1: after a 554 greeting the server waits for QUIT.
	s := startSink(t, SMTPOptions{GreetingReply: &smtp.SMTPError{Code: 554, Message: "no service"}})
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	tc := textproto.NewConn(conn)
	if _, _, err := tc.ReadResponse(220); smtpCode(err) != 554 {
		t.Fatalf("greeting: %v, want 554", err)
	}
	for _, step := range []struct {
		cmd  string
		want int
	}{{"EHLO client.example.org", 503}, {"QUIT", 221}} {
		if err := tc.PrintfLine("%s", step.cmd); err != nil {
			t.Fatal(err)
		}
		if code, _, _ := tc.ReadResponse(0); code != step.want {
			t.Errorf("%s: %d, want %d", step.cmd, code, step.want)
		}
	}
}

// A sink standing in for the MX host 127.0.0.2, reached through a Dialer,
// records the message and the TLS session it came over.
func ExampleStartSMTP() {
	ca, err := NewCA("example root")
	if err != nil {
		panic(err)
	}
	cert := ca.MustLeaf(LeafOptions{}, "mx.example.com")
	sink, err := StartSMTP(SMTPOptions{Addr: "127.0.0.2:0", Certificate: &cert, REQUIRETLS: true})
	if err != nil {
		panic(err)
	}
	defer sink.Close()

	d := NewDialer()
	d.Route("127.0.0.2:25", sink.Addr())
	conn, err := d.DialContext(context.Background(), "tcp", "127.0.0.2:25")
	if err != nil {
		panic(err)
	}
	c, err := smtp.NewClientStartTLS(conn, &tls.Config{RootCAs: ca.Pool(), ServerName: "mx.example.com"})
	if err != nil {
		panic(err)
	}
	if err := c.SendMail("a@example.org", []string{"b@example.com"}, strings.NewReader(testBody)); err != nil {
		panic(err)
	}
	c.Quit()

	m := sink.Messages()[0]
	fmt.Println(m.From, "->", m.Rcpts[0].Addr, "over", tls.VersionName(m.TLS.Version), "SNI", m.TLS.ServerName)
	// Output: a@example.org -> b@example.com over TLS 1.3 SNI mx.example.com
}

func TestSMTPCloseRightAfterStart(t *testing.T) {
	for range 20 {
		s, err := StartSMTP(SMTPOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
}
