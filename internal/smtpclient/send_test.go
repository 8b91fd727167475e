package smtpclient

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/sealpost/sealpost/internal/testenv"
)

const body = "From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n"

func env(rcpts ...string) Envelope {
	e := Envelope{From: "a@example.org"}
	for _, r := range rcpts {
		e.Rcpts = append(e.Rcpts, Rcpt{Addr: r})
	}
	return e
}

func TestSendToSink(t *testing.T) {
	ctx := context.Background()
	s := startSink(t, testenv.SMTPOptions{})
	c := dialSink(t, s, Options{}, nil)
	in := "Subject: dots\n\n.leading dot\n..two\r\n.\nbare CR\rend"
	res, err := c.Send(ctx, env("b@example.net", "c@example.net"), strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if res.Mail.Code != 250 || res.Rcpts[0].Code != 250 || res.Rcpts[1].Code != 250 || res.Data.Code != 250 {
		t.Errorf("replies %+v", res)
	}
	if !res.Accepted(0) || !res.Accepted(1) {
		t.Error("Accepted false for accepted recipients")
	}
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("sink has %d messages", len(msgs))
	}
	want := "Subject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nbare CR\r\nend\r\n"
	if got := string(msgs[0].Data); got != want {
		t.Errorf("sink got %q, want %q", got, want)
	}
	if msgs[0].From != "a@example.org" || len(msgs[0].Rcpts) != 2 || msgs[0].Rcpts[1].Addr != "c@example.net" {
		t.Errorf("envelope %+v", msgs[0])
	}
}

func TestSendReusesTheConnection(t *testing.T) {
	ctx := context.Background()
	s := startSink(t, testenv.SMTPOptions{})
	c := dialSink(t, s, Options{}, nil)
	for i := range 3 {
		if i == 1 {
			if err := c.Reset(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Send(ctx, env("b@example.net"), strings.NewReader(body)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	msgs := s.Messages()
	if len(msgs) != 3 || msgs[0].Conn != msgs[2].Conn || s.Connections() != 1 {
		t.Fatalf("%d messages over %d connections", len(msgs), s.Connections())
	}
}

func TestSendParametersReachTheSink(t *testing.T) {
	ctx := context.Background()
	k := testPKI(t)
	s := startSink(t, testenv.SMTPOptions{Certificate: &k.cert, DSN: true, SMTPUTF8: true, REQUIRETLS: true, MaxMessageBytes: 1 << 20})
	c := dialSink(t, s, Options{}, k.clientTLS())
	e := Envelope{
		From: "bounce+x=y@example.org", Size: int64(len(body)), Body8BitMIME: true, SMTPUTF8: true, RequireTLS: true,
		Ret: "HDRS", EnvID: "QQ314159 +=",
		Rcpts: []Rcpt{
			{Addr: "b@example.net", Notify: []string{"SUCCESS", "FAILURE"}, ORcpt: "orig+1@example.net"},
			{Addr: "josé@example.net", Notify: []string{"NEVER"}, ORcpt: "josé@example.net"},
		},
	}
	if _, err := c.Send(ctx, e, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	m := s.Messages()[0]
	mo := m.MailOptions
	if mo.Size != int64(len(body)) || mo.Body != smtp.Body8BitMIME || !mo.UTF8 || !mo.RequireTLS || mo.Return != smtp.DSNReturnHeaders || mo.EnvelopeID != "QQ314159 +=" {
		t.Errorf("MAIL parameters %+v", mo)
	}
	r0, r1 := m.Rcpts[0].Options, m.Rcpts[1].Options
	if len(r0.Notify) != 2 || r0.Notify[0] != smtp.DSNNotifySuccess || r0.OriginalRecipient != "orig+1@example.net" || r0.OriginalRecipientType != smtp.DSNAddressTypeRFC822 {
		t.Errorf("RCPT 0 parameters %+v", r0)
	}
	if len(r1.Notify) != 1 || r1.Notify[0] != smtp.DSNNotifyNever || r1.OriginalRecipient != "josé@example.net" || r1.OriginalRecipientType != smtp.DSNAddressTypeUTF8 {
		t.Errorf("RCPT 1 parameters %+v", r1)
	}
}

func TestSendWithoutDSNDropsDSNParameters(t *testing.T) {
	// The sink answers 504 to DSN parameters it does not advertise.
	s := startSink(t, testenv.SMTPOptions{})
	c := dialSink(t, s, Options{}, nil)
	e := Envelope{From: "a@example.org", Ret: "FULL", EnvID: "x", Rcpts: []Rcpt{{Addr: "b@example.net", Notify: []string{"DELAY"}, ORcpt: "b@example.net"}}}
	if _, err := c.Send(context.Background(), e, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
}

// refusingSink is a sink that refuses the sender while refuseMail is set,
// recipients "unknown..." (550) and "full..." (452), and content holding
// "spam" (554) or "later" (451).
func refusingSink(t *testing.T, refuseMail *atomic.Bool) *testenv.SMTPServer {
	t.Helper()
	return startSink(t, testenv.SMTPOptions{
		MailReply: func(from string, _ *smtp.MailOptions) *smtp.SMTPError {
			if refuseMail.Load() {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "sender refused"}
			}
			return nil
		},
		RcptReply: func(to string, _ *smtp.RcptOptions) *smtp.SMTPError {
			if strings.HasPrefix(to, "unknown") {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			}
			if strings.HasPrefix(to, "full") {
				return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
			}
			return nil
		},
		DataReply: func(m *testenv.Message) *smtp.SMTPError {
			if strings.Contains(string(m.Data), "spam") {
				return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "spam"}
			}
			if strings.Contains(string(m.Data), "later") {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
			}
			return nil
		},
	})
}

func TestSendRefusals(t *testing.T) {
	ctx := context.Background()
	var refuseMail atomic.Bool
	s := refusingSink(t, &refuseMail)
	c := dialSink(t, s, Options{}, nil)

	t.Run("refused recipients get their own replies", func(t *testing.T) {
		res, err := c.Send(ctx, env("b@example.net", "unknown@example.net", "full@example.net"), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if r := res.Rcpts[1]; r.Code != 550 || r.Enhanced != [3]int{5, 1, 1} || r.Text != "no such user" {
			t.Errorf("RCPT 1 reply %+v", r)
		}
		if !res.Rcpts[2].Temporary() {
			t.Errorf("RCPT 2 reply %+v, want temporary", res.Rcpts[2])
		}
		if !res.Accepted(0) || res.Accepted(1) || res.Accepted(2) {
			t.Error("Accepted does not follow the RCPT replies")
		}
		if m := s.Messages(); len(m) != 1 || len(m[0].Rcpts) != 1 {
			t.Errorf("sink has %+v", m)
		}
	})
	t.Run("every recipient refused", func(t *testing.T) {
		res, err := c.Send(ctx, env("unknown@example.net", "unknown2@example.net"), strings.NewReader(body))
		if !errors.Is(err, ErrNoRecipients) {
			t.Fatalf("Send = %v, want ErrNoRecipients", err)
		}
		if res.Rcpts[0].Code != 550 || res.Rcpts[1].Code != 550 {
			t.Errorf("replies %+v", res.Rcpts)
		}
	})
	t.Run("the connection carries on after a refused transaction", func(t *testing.T) {
		if _, err := c.Send(ctx, env("b@example.net"), strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("content refused", func(t *testing.T) {
		res, err := c.Send(ctx, env("b@example.net"), strings.NewReader("spam\r\n"))
		var r *Reply
		if !errors.As(err, &r) || r.Code != 554 || res.Data != r || res.Accepted(0) {
			t.Fatalf("Send = %v, res.Data %v; want the 554", err, res.Data)
		}
	})
	t.Run("content deferred", func(t *testing.T) {
		_, err := c.Send(ctx, env("b@example.net"), strings.NewReader("later\r\n"))
		var r *Reply
		if !errors.As(err, &r) || !r.Temporary() {
			t.Fatalf("Send = %v, want a 451", err)
		}
	})
	t.Run("sender refused", func(t *testing.T) {
		refuseMail.Store(true)
		defer refuseMail.Store(false)
		res, err := c.Send(ctx, env("b@example.net"), strings.NewReader(body))
		var r *Reply
		if !errors.As(err, &r) || r != res.Mail || r.Code != 550 || r.Text != "sender refused" {
			t.Fatalf("Send = %v, want the MAIL reply", err)
		}
		if c.Err() != nil {
			t.Fatalf("connection unusable after a refused MAIL: %v", c.Err())
		}
	})
	t.Run("and carries on again", func(t *testing.T) {
		if _, err := c.Send(ctx, env("b@example.net"), strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSendOverSizeIsRefusedBeforeSending(t *testing.T) {
	s := startSink(t, testenv.SMTPOptions{MaxMessageBytes: 1000})
	c := dialSink(t, s, Options{}, nil)
	e := env("b@example.net")
	e.Size = 1001
	var ce *CapabilityError
	if _, err := c.Send(context.Background(), e, strings.NewReader(body)); !errors.As(err, &ce) || ce.Extension != "SIZE" {
		t.Fatalf("Send = %v, want a SIZE *CapabilityError", err)
	}
	e.Size = 1000
	if _, err := c.Send(context.Background(), e, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
}

func TestSendConnectionDropped(t *testing.T) {
	tests := []struct {
		stage testenv.Stage
		op    string
	}{
		{testenv.StageMAIL, "MAIL"},
		{testenv.StageRCPT, "RCPT"},
		{testenv.StageDATA, "end of data"},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			s := startSink(t, testenv.SMTPOptions{DropAt: tt.stage})
			c := dialSink(t, s, Options{}, nil)
			_, err := c.Send(context.Background(), env("b@example.net"), strings.NewReader(body))
			var ce *ConnError
			if !errors.As(err, &ce) || ce.Op != tt.op || !errors.Is(err, ErrConnLost) || !ce.Temporary() {
				t.Fatalf("Send = %v, want a *ConnError during %s", err, tt.op)
			}
			if _, err2 := c.Send(context.Background(), env("b@example.net"), strings.NewReader(body)); err2 != err {
				t.Errorf("second Send = %v, want the first error again", err2)
			}
		})
	}
}

func TestSend421MidTransaction(t *testing.T) {
	c := fakeHello(t, Options{}, []string{"PIPELINING"}, func(p *fakePeer) {
		p.line()
		p.line()
		p.line()
		p.send("250 ok\r\n421 4.4.2 idle too long\r\n")
	})
	_, err := c.Send(context.Background(), env("b@example.net"), strings.NewReader(body))
	var r *Reply
	if !errors.As(err, &r) || r.Code != 421 || !errors.Is(err, ErrConnLost) {
		t.Fatalf("Send = %v, want the 421", err)
	}
	if c.Err() != err {
		t.Errorf("Err() = %v, want the 421", c.Err())
	}
}

func TestSendMalformedReply(t *testing.T) {
	c := fakeHello(t, Options{}, []string{"PIPELINING"}, func(p *fakePeer) {
		p.line()
		p.line()
		p.line()
		p.send("250 ok\r\n250 ok\r\nHTTP/1.1 400 Bad Request\r\n")
	})
	_, err := c.Send(context.Background(), env("b@example.net"), strings.NewReader(body))
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Op != "DATA" || !errors.Is(err, ErrConnLost) {
		t.Fatalf("Send = %v, want a *ProtocolError during DATA", err)
	}
}

func TestSendEndOfDataTimeout(t *testing.T) {
	c := fakeHello(t, Options{Timeouts: Timeouts{DataTerm: 50 * time.Millisecond}}, []string{"PIPELINING"}, func(p *fakePeer) {
		p.line()
		p.line()
		p.line()
		p.send("250 ok\r\n250 ok\r\n354 go\r\n")
		p.drain()
	})
	_, err := c.Send(context.Background(), env("b@example.net"), strings.NewReader(body))
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Op != "end of data" || !isTimeout(err) {
		t.Fatalf("Send = %v, want a timeout at the end of data", err)
	}
}

func TestSendCancelled(t *testing.T) {
	c := fakeHello(t, Options{}, []string{"PIPELINING"}, func(p *fakePeer) { p.drain() })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := c.Send(ctx, env("b@example.net"), strings.NewReader(body))
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrConnLost) {
		t.Fatalf("Send = %v, want context.Canceled", err)
	}
	if c.Err() == nil {
		t.Error("connection usable after a cancelled transaction")
	}
}

// failingReader yields some content, then fails.
type failingReader struct{ n int }

var errDisk = errors.New("disk on fire")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errDisk
	}
	n := min(len(p), r.n)
	for i := range n {
		p[i] = 'x'
	}
	r.n -= n
	return n, nil
}

func TestSendSourceFails(t *testing.T) {
	c := fakeHello(t, Options{}, []string{"PIPELINING"}, func(p *fakePeer) {
		p.line()
		p.line()
		p.line()
		p.send("250 ok\r\n250 ok\r\n354 go\r\n")
		for {
			l := p.line()
			if l == "" {
				return
			}
			if l == "." {
				t.Error("the message was terminated although reading it failed")
			}
		}
	})
	_, err := c.Send(context.Background(), env("b@example.net"), &failingReader{n: 100})
	var se *SourceError
	if !errors.As(err, &se) || !errors.Is(err, errDisk) || errors.Is(err, ErrConnLost) {
		t.Fatalf("Send = %v, want a *SourceError", err)
	}
	if !errors.Is(c.Err(), ErrConnLost) {
		t.Errorf("Err() = %v, want the connection closed", c.Err())
	}
}

func TestSendRefusesInjectionBeforeSending(t *testing.T) {
	c := fakeHello(t, Options{}, []string{"PIPELINING", "DSN"}, func(p *fakePeer) {
		p.expect("NOOP")
		p.send("250 ok\r\n")
	})
	ctx := context.Background()
	for _, e := range []Envelope{
		{From: "a@example.org>\r\nRCPT TO:<victim@example.net", Rcpts: []Rcpt{{Addr: "b@example.net"}}},
		{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net> NOTIFY=SUCCESS"}}},
		{From: "a@example.org", EnvID: "x\r\nDATA", Rcpts: []Rcpt{{Addr: "b@example.net"}}},
		{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net", ORcpt: "x\ny@z"}}},
	} {
		var ce *CommandError
		if _, err := c.Send(ctx, e, strings.NewReader(body)); !errors.As(err, &ce) {
			t.Errorf("Send(%+v) = %v, want a *CommandError", e, err)
		}
	}
	if err := c.Noop(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSendBeforeHello(t *testing.T) {
	c := fakeConn(t, Options{}, func(p *fakePeer) {})
	if _, err := c.Send(context.Background(), env("b@example.net"), strings.NewReader(body)); !errors.Is(err, ErrBadSequence) {
		t.Fatalf("Send = %v, want ErrBadSequence", err)
	}
}

// slowReader returns its content a few octets per Read.
type slowReader struct{ r io.Reader }

func (s slowReader) Read(p []byte) (int, error) { return s.r.Read(p[:min(len(p), 7)]) }

func TestSendStreamsFromAnyReader(t *testing.T) {
	s := startSink(t, testenv.SMTPOptions{})
	c := dialSink(t, s, Options{}, nil)
	in := strings.Repeat("line with some text\n.dot line\n", 3000)
	if _, err := c.Send(context.Background(), env("b@example.net"), slowReader{strings.NewReader(in)}); err != nil {
		t.Fatal(err)
	}
	want := strings.ReplaceAll(in, "\n", "\r\n")
	if got := string(s.Messages()[0].Data); got != want {
		t.Errorf("sink got %d octets, want %d", len(got), len(want))
	}
}

// lazyReader yields n octets of short lines without holding them.
type lazyReader struct{ n int }

func (r *lazyReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.n)
	for i := range n {
		p[i] = 'x'
		if i%64 == 63 {
			p[i] = '\n'
		}
	}
	r.n -= n
	return n, nil
}

func TestSendDataBlockTimeout(t *testing.T) {
	// A server that stops reading: once the socket buffers are full, a
	// write of content waits no longer than DataBlock (RFC 5321
	// §4.5.3.2.5).
	done := make(chan struct{})
	c := fakeHello(t, Options{Timeouts: Timeouts{DataBlock: 50 * time.Millisecond}}, []string{"PIPELINING"}, func(p *fakePeer) {
		p.line()
		p.line()
		p.line()
		p.send("250 ok\r\n250 ok\r\n354 go\r\n")
		<-done // read nothing more
	})
	start := time.Now()
	_, err := c.Send(context.Background(), env("b@example.net"), &lazyReader{n: 256 << 20})
	close(done)
	t.Logf("Send returned after %v", time.Since(start))
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Op != "message data" || !isTimeout(err) {
		t.Fatalf("Send = %v after %v, want a timeout while sending content", err, time.Since(start))
	}
}
