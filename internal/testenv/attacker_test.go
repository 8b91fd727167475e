package testenv

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

func startAttacker(t *testing.T, opts AttackerOptions) *Attacker {
	t.Helper()
	a, err := StartAttacker(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// attackWorld is a sink for mx.example.com with STARTTLS (or without, when
// starttls is false) and an attacker in front of it, reached as
// 127.0.0.2:25 through a Dialer.
func attackWorld(t *testing.T, mode AttackMode, starttls bool, cert *tls.Certificate) (*CA, *SMTPServer, *Attacker, *Dialer) {
	t.Helper()
	ca := newCAForTest(t)
	opts := SMTPOptions{}
	if starttls {
		c := ca.MustLeaf(LeafOptions{}, "mx.example.com")
		opts.Certificate = &c
	}
	sink := startSink(t, opts)
	a := startAttacker(t, AttackerOptions{Target: sink.Addr(), Mode: mode, Certificate: cert})
	d := NewDialer()
	d.Route("127.0.0.2:25", a.Addr())
	return ca, sink, a, d
}

// clientVia dials 127.0.0.2:25 through d and greets, running STARTTLS
// with cfg when cfg is set.
func clientVia(t *testing.T, d *Dialer, cfg *tls.Config) (*smtp.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", "127.0.0.2:25")
	if err != nil {
		t.Fatal(err)
	}
	return greet(t, conn, cfg)
}

func TestAttackerStripSTARTTLS(t *testing.T) {
	ca, sink, a, d := attackWorld(t, StripSTARTTLS, true, nil)

	// A client that insists on TLS finds none and sends nothing.
	if _, err := clientVia(t, d, &tls.Config{RootCAs: ca.Pool(), ServerName: "mx.example.com"}); err == nil {
		t.Fatal("STARTTLS succeeded through a stripping attacker")
	}

	// An opportunistic client falls back to plaintext and the real server
	// gets the message in the clear.
	c, err := clientVia(t, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS still advertised")
	}
	if ok, _ := c.Extension("PIPELINING"); !ok {
		t.Error("other capabilities lost in the rewrite")
	}
	if step, err := send(c, nil, nil, "b@example.com"); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	c.Quit()
	if msgs := sink.Messages(); len(msgs) != 1 || msgs[0].TLS != nil {
		t.Errorf("sink got %+v, want one plaintext message", msgs)
	}
	if a.Connections() != 2 || a.Transactions() != 1 || sink.TLSHandshakes() != 0 {
		t.Errorf("connections %d, transactions %d, sink handshakes %d; want 2, 1, 0",
			a.Connections(), a.Transactions(), sink.TLSHandshakes())
	}
}

func TestAttackerStripRefusesSTARTTLSCommand(t *testing.T) {
	_, _, _, d := attackWorld(t, StripSTARTTLS, true, nil)
	conn, err := d.DialContext(context.Background(), "tcp", "127.0.0.2:25")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	tc := textproto.NewConn(conn)
	if _, _, err := tc.ReadResponse(220); err != nil {
		t.Fatal(err)
	}
	tc.PrintfLine("STARTTLS")
	if code, _, _ := tc.ReadResponse(0); code != 454 {
		t.Errorf("STARTTLS answered %d, want 454", code)
	}
}

func TestAttackerIntercept(t *testing.T) {
	ca := newCAForTest(t)
	wrongName := ca.MustLeaf(LeafOptions{}, "mx.attacker.example")
	tests := []struct {
		name     string
		cert     *tls.Certificate
		starttls bool // the real server offers STARTTLS
		want     string
	}{
		{"self-signed certificate", nil, true, "certificate"},
		{"trusted CA, wrong name", &wrongName, true, "mx.attacker.example"},
		{"server without STARTTLS gets it advertised", nil, false, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, sink, a, d := attackWorld(t, InterceptTLS, tt.starttls, tt.cert)
			roots := ca.Pool()
			if tt.cert == nil {
				roots = x509.NewCertPool()
			}
			_, err := clientVia(t, d, &tls.Config{RootCAs: roots, ServerName: "mx.example.com"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("verifying client: %v, want a certificate error mentioning %q", err, tt.want)
			}
			if a.Transactions() != 0 || len(sink.Messages()) != 0 {
				t.Error("mail went through")
			}

			// A client that does not verify is fooled: the message reaches
			// the real server in plaintext.
			c, err := clientVia(t, d, &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			wantCN := "attacker.invalid"
			if tt.cert != nil {
				wantCN = tt.cert.Leaf.Subject.CommonName
			}
			if st, ok := c.TLSConnectionState(); !ok || st.PeerCertificates[0].Subject.CommonName != wantCN {
				t.Errorf("client's TLS state %v %v, want the attacker's certificate for %s", ok, st.PeerCertificates, wantCN)
			}
			if ok, _ := c.Extension("STARTTLS"); ok {
				t.Error("STARTTLS advertised again after TLS")
			}
			if step, err := send(c, nil, nil, "b@example.com"); err != nil {
				t.Fatalf("%s: %v", step, err)
			}
			c.Quit()
			if msgs := sink.Messages(); len(msgs) != 1 || msgs[0].TLS != nil {
				t.Errorf("sink got %+v, want one plaintext message", msgs)
			}
			if a.Handshakes() != 1 || sink.TLSHandshakes() != 0 {
				t.Errorf("attacker handshakes %d, sink handshakes %d; want 1, 0", a.Handshakes(), sink.TLSHandshakes())
			}
		})
	}
}

func TestAttackerPipelinedTransaction(t *testing.T) {
	_, sink, _, d := attackWorld(t, StripSTARTTLS, false, nil)
	conn, err := d.DialContext(context.Background(), "tcp", "127.0.0.2:25")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	tc := textproto.NewConn(conn)
	tc.ReadResponse(220)
	tc.PrintfLine("EHLO client.example.org")
	if _, _, err := tc.ReadResponse(250); err != nil {
		t.Fatal(err)
	}
	// RFC 2920: MAIL, RCPT and DATA in one group.
	conn.Write([]byte("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"))
	for _, want := range []int{250, 250, 354} {
		if code, msg, err := tc.ReadResponse(want); err != nil {
			t.Fatalf("want %d, got %d %q %v", want, code, msg, err)
		}
	}
	conn.Write([]byte(testBody + ".\r\nQUIT\r\n"))
	for _, want := range []int{250, 221} {
		if code, msg, err := tc.ReadResponse(want); err != nil {
			t.Fatalf("want %d, got %d %q %v", want, code, msg, err)
		}
	}
	if msgs := sink.Messages(); len(msgs) != 1 || string(msgs[0].Data) != testBody {
		t.Errorf("sink got %+v", msgs)
	}
}

func TestAttackerRewriteEHLO(t *testing.T) {
	tests := []struct {
		name  string
		mode  AttackMode
		tls   bool
		reply string
		want  []string
	}{
		{"strip STARTTLS in the middle", StripSTARTTLS, false, "250-mx Hello\r\n250-STARTTLS\r\n250 SIZE\r\n",
			[]string{"250-mx Hello\r\n", "250 SIZE\r\n"}},
		{"strip STARTTLS as last line fixes the separator", StripSTARTTLS, false, "250-mx Hello\r\n250-8BITMIME\r\n250 starttls\r\n",
			[]string{"250-mx Hello\r\n", "250 8BITMIME\r\n"}},
		{"strip leaves a one-line reply", StripSTARTTLS, false, "250-mx Hello\r\n250 STARTTLS\r\n",
			[]string{"250 mx Hello\r\n"}},
		{"intercept adds STARTTLS", InterceptTLS, false, "250-mx Hello\r\n250 SIZE\r\n",
			[]string{"250-mx Hello\r\n", "250-SIZE\r\n", "250 STARTTLS\r\n"}},
		{"intercept keeps one STARTTLS", InterceptTLS, false, "250-mx Hello\r\n250-STARTTLS\r\n250 SIZE\r\n",
			[]string{"250-mx Hello\r\n", "250-SIZE\r\n", "250 STARTTLS\r\n"}},
		{"intercept after TLS removes it", InterceptTLS, true, "250-mx Hello\r\n250-STARTTLS\r\n250 SIZE\r\n",
			[]string{"250-mx Hello\r\n", "250 SIZE\r\n"}},
		{"line ends are kept", StripSTARTTLS, false, "250-mx Hello\n250-STARTTLS\r\n250 SIZE\n",
			[]string{"250-mx Hello\n", "250 SIZE\n"}},
		{"a bare code line keeps its octets", InterceptTLS, false, "250-mx\r\n250\n",
			[]string{"250-mx\r\n", "250-\n", "250 STARTTLS\r\n"}},
		{"a reply at the line limit gives its last keyword's place", InterceptTLS, false,
			"250-mx\r\n" + strings.Repeat("250-X\r\n", maxAttackReplyRows-2) + "250 LAST\r\n",
			append(append([]string{"250-mx\r\n"}, slices.Repeat([]string{"250-X\r\n"}, maxAttackReplyRows-2)...), "250 STARTTLS\r\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply, err := readReply(bufio.NewReader(strings.NewReader(tt.reply)))
			if err != nil {
				t.Fatal(err)
			}
			s := &attackSession{a: &Attacker{opts: AttackerOptions{Mode: tt.mode}}, tls: tt.tls}
			if got := s.rewriteEHLO(reply); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAttackerReadReply(t *testing.T) {
	tests := []struct {
		in   string
		want []string // nil = error
	}{
		{"220 ready\r\n", []string{"220 ready\r\n"}},
		{"250\r\n", []string{"250\r\n"}},
		{"250-a\n250 b\n", []string{"250-a\n", "250 b\n"}},
		{"250-a\r\n250\n", []string{"250-a\r\n", "250\n"}},
		{"250-a\r\n251 b\r\n", nil},
		{"25\r\n", nil},
		{"abc ok\r\n", nil},
		{"250xa\r\n", nil},
		{"250-a\r\n", nil}, // ends before the last line
		{"250 " + strings.Repeat("x", maxAttackLine) + "\r\n", nil},
		{strings.Repeat("250-x\r\n", maxAttackReplyRows+1), nil},
	}
	for _, tt := range tests {
		got, err := readReply(bufio.NewReaderSize(strings.NewReader(tt.in), maxAttackLine))
		if (err != nil) != (tt.want == nil) || !slices.Equal(got, tt.want) {
			t.Errorf("readReply(%.40q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestStartAttackerValidates(t *testing.T) {
	for _, opts := range []AttackerOptions{
		{Target: "127.0.0.1:25"},
		{Target: "192.0.2.1:25", Mode: StripSTARTTLS},
		{Target: "mx.example.com:25", Mode: StripSTARTTLS},
	} {
		if a, err := StartAttacker(opts); err == nil {
			a.Close()
			t.Errorf("StartAttacker(%+v) succeeded", opts)
		}
	}
}

func TestAttackerCloseEndsSessions(t *testing.T) {
	sink := startSink(t, SMTPOptions{})
	a, err := StartAttacker(AttackerOptions{Target: sink.Addr(), Mode: StripSTARTTLS})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := textproto.NewConn(conn).ReadResponse(220); err != nil {
		t.Fatal(err)
	}
	a.Close() // must not wait for the idle client
	a.Close()
	if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("client connection still open after Close: %v", err)
	}
}

// FuzzAttackerReply checks that any reply the attacker accepts is
// rewritten into a well-formed reply with the same code.
func FuzzAttackerReply(f *testing.F) {
	f.Add("250-mx Hello\r\n250-STARTTLS\r\n250 SIZE\r\n")
	f.Add("250-mx\r\n250 STARTTLS\r\n")
	f.Add("250\r\n")
	f.Add("220 ready\n")
	f.Add("250-mx\r\n" + strings.Repeat("250-X\r\n", maxAttackReplyRows-2) + "250 " + strings.Repeat("y", maxAttackLine-5) + "\n")
	f.Fuzz(func(t *testing.T, in string) {
		reply, err := readReply(bufio.NewReaderSize(strings.NewReader(in), maxAttackLine))
		if err != nil || !strings.HasPrefix(reply[0], "250") {
			return
		}
		for _, mode := range []AttackMode{StripSTARTTLS, InterceptTLS} {
			s := &attackSession{a: &Attacker{opts: AttackerOptions{Mode: mode}}}
			out := s.rewriteEHLO(reply)
			// What is written is what the attacker would read: no line over
			// maxAttackLine, no more than maxAttackReplyRows lines.
			again, err := readReply(bufio.NewReaderSize(strings.NewReader(strings.Join(out, "")), maxAttackLine))
			if err != nil || !slices.Equal(again, out) {
				t.Fatalf("%v: rewrote %q into %q, which reads back as %q, %v", mode, reply, out, again, err)
			}
		}
	})
}

// TestAttackerKeepsItsLineLimits: what the attacker relays stays within
// the limits it reads with (maxAttackLine octets a line, maxAttackReplyRows
// lines a reply), so that a test built on it never fails because the
// attacker itself made a reply too long: a line ending in a bare LF keeps
// it, and STARTTLS added to an EHLO reply at the line limit takes the
// place of its last keyword.
func TestAttackerKeepsItsLineLimits(t *testing.T) {
	longGreeting := "220 " + strings.Repeat("g", maxAttackLine-5) + "\n" // 4,096 octets
	var ext []string
	for i := range maxAttackReplyRows - 1 {
		ext = append(ext, fmt.Sprintf("X-KEYWORD-%d", i))
	}
	longCmd := "NOOP " + strings.Repeat("n", maxAttackLine-6) + "\n"
	for _, mode := range []AttackMode{StripSTARTTLS, InterceptTLS} {
		t.Run(mode.String(), func(t *testing.T) {
			s := startScripted(t, ScriptOptions{Extensions: ext, Script: func(e ScriptEvent) *ScriptStep {
				if e.Command == ScriptGreeting {
					return &ScriptStep{Reply: longGreeting}
				}
				return nil
			}})
			a := startAttacker(t, AttackerOptions{Target: s.Addr(), Mode: mode})
			conn, err := net.Dial("tcp", a.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReaderSize(conn, 2*maxAttackLine)
			if got, err := br.ReadString('\n'); err != nil || got != longGreeting {
				t.Fatalf("greeting of %d octets relayed as %d (%v)", len(longGreeting), len(got), err)
			}
			io.WriteString(conn, longCmd+"EHLO client.example.org\r\n")
			if got, err := br.ReadString('\n'); err != nil || got != "250 2.0.0 Ok\r\n" {
				t.Fatalf("reply to a %d-octet NOOP: %q, %v", len(longCmd), got, err)
			}
			var lines []string
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("EHLO reply after %d lines: %v", len(lines), err)
				}
				lines = append(lines, strings.TrimSuffix(l, "\r\n"))
				if len(l) > 3 && l[3] == ' ' {
					break
				}
			}
			if len(lines) > maxAttackReplyRows {
				t.Errorf("EHLO reply of %d lines relayed as %d", maxAttackReplyRows, len(lines))
			}
			hasTLS := slices.Contains(lines, "250 STARTTLS") || slices.Contains(lines, "250-STARTTLS")
			if hasTLS != (mode == InterceptTLS) {
				t.Errorf("STARTTLS advertised: %v, in mode %v", hasTLS, mode)
			}
			if e := s.Events(); len(e) < 2 || e[1].Command != "NOOP" || len(e[1].Line) != len(longCmd)-1 {
				t.Errorf("the server saw %+v", e[1])
			}
		})
	}
}
