package smtpclient

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// authBackend is a go-smtp server backend that takes AUTH PLAIN for one
// user and accepts every message.
type authBackend struct{}

func (authBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &authSession{}, nil }

type authSession struct{ user string }

func (s *authSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *authSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != "relayuser" || password != "s3cret" {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.user = username
		return nil
	}), nil
}

func (s *authSession) Mail(string, *smtp.MailOptions) error {
	if s.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authenticate first"}
	}
	return nil
}
func (s *authSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *authSession) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }
func (s *authSession) Reset()                               {}
func (s *authSession) Logout() error                        { return nil }

// startAuthServer starts a go-smtp server that needs AUTH, on plaintext.
func startAuthServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(authBackend{})
	srv.Domain = "relay.example.org"
	srv.AllowInsecureAuth = true
	srv.ErrorLog = log.New(io.Discard, "", 0)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func dialAuth(t *testing.T, addr string, opts Options) *Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(context.Background(), conn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello(context.Background(), "client.example.org"); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAuthPlainAgainstGoSMTP(t *testing.T) {
	ctx := context.Background()
	addr := startAuthServer(t)
	var trace []string
	opts := Options{AllowInsecureAuth: true, Trace: func(d Direction, l string) { trace = append(trace, l) }}

	c := dialAuth(t, addr, opts)
	if _, err := c.Send(ctx, env("b@example.net"), strings.NewReader(body)); err == nil {
		t.Fatal("server took mail without AUTH; the test proves nothing")
	}
	if err := c.Auth(ctx, sasl.NewPlainClient("", "relayuser", "s3cret")); err != nil {
		t.Fatalf("Auth: %v", err)
	}
	if _, err := c.Send(ctx, env("b@example.net"), strings.NewReader(body)); err != nil {
		t.Fatalf("Send after Auth: %v", err)
	}
	joined := strings.Join(trace, "\n")
	secret := base64.StdEncoding.EncodeToString([]byte("\x00relayuser\x00s3cret"))
	if strings.Contains(joined, secret) || strings.Contains(joined, "s3cret") {
		t.Errorf("trace shows the credentials:\n%s", joined)
	}
	if !strings.Contains(joined, "AUTH PLAIN "+masked) {
		t.Errorf("trace does not show the masked AUTH command:\n%s", joined)
	}

	c2 := dialAuth(t, addr, opts)
	var r *Reply
	if err := c2.Auth(ctx, sasl.NewPlainClient("", "relayuser", "wrong")); !errors.As(err, &r) || r.Code != 535 {
		t.Fatalf("Auth with a bad password = %v, want 535", err)
	}
}

func TestAuthRefusals(t *testing.T) {
	ctx := context.Background()
	addr := startAuthServer(t)
	t.Run("no credentials over plaintext unless allowed", func(t *testing.T) {
		c := dialAuth(t, addr, Options{})
		var ce *CommandError
		if err := c.Auth(ctx, sasl.NewPlainClient("", "relayuser", "s3cret")); !errors.As(err, &ce) {
			t.Fatalf("Auth = %v, want a *CommandError", err)
		}
	})
	t.Run("mechanism not advertised", func(t *testing.T) {
		c := dialAuth(t, addr, Options{AllowInsecureAuth: true})
		var ce *CapabilityError
		if err := c.Auth(ctx, sasl.NewLoginClient("relayuser", "s3cret")); !errors.As(err, &ce) {
			t.Fatalf("Auth = %v, want a *CapabilityError", err)
		}
	})
	t.Run("AUTH not advertised", func(t *testing.T) {
		c := fakeHello(t, Options{AllowInsecureAuth: true}, []string{"PIPELINING"}, func(p *fakePeer) {})
		var ce *CapabilityError
		if err := c.Auth(ctx, sasl.NewPlainClient("", "u", "p")); !errors.As(err, &ce) || ce.Extension != "AUTH" {
			t.Fatalf("Auth = %v, want a *CapabilityError", err)
		}
	})
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestAuthLogin(t *testing.T) {
	var trace []string
	opts := Options{AllowInsecureAuth: true, Trace: func(d Direction, l string) { trace = append(trace, l) }}
	c := fakeHello(t, opts, []string{"AUTH LOGIN"}, func(p *fakePeer) {
		p.expect("AUTH LOGIN " + b64("relayuser"))
		p.send("334 " + b64("Password:") + "\r\n")
		p.expect(b64("s3cret"))
		p.send("235 2.7.0 ok\r\n")
	})
	if err := c.Auth(context.Background(), sasl.NewLoginClient("relayuser", "s3cret")); err != nil {
		t.Fatal(err)
	}
	if j := strings.Join(trace, "\n"); strings.Contains(j, b64("s3cret")) || strings.Contains(j, b64("relayuser")) {
		t.Errorf("trace shows credentials:\n%s", j)
	}
}

func TestAuthLongInitialResponseWaitsForChallenge(t *testing.T) {
	// RFC 4954 §4: an initial response that would make the command longer
	// than 512 octets is sent after an empty challenge.
	long := strings.Repeat("u", 500)
	c := fakeHello(t, Options{AllowInsecureAuth: true}, []string{"AUTH PLAIN"}, func(p *fakePeer) {
		p.expect("AUTH PLAIN")
		p.send("334 \r\n")
		p.expect(b64("\x00" + long + "\x00pw"))
		p.send("235 ok\r\n")
	})
	if err := c.Auth(context.Background(), sasl.NewPlainClient("", long, "pw")); err != nil {
		t.Fatal(err)
	}
}

func TestAuthCancelled(t *testing.T) {
	t.Run("undecodable challenge", func(t *testing.T) {
		c := fakeHello(t, Options{AllowInsecureAuth: true}, []string{"AUTH LOGIN"}, func(p *fakePeer) {
			p.line()
			p.send("334 not*base64!\r\n")
			p.expect("*")
			p.send("501 5.0.0 cancelled\r\n")
			p.expect("NOOP")
			p.send("250 ok\r\n")
		})
		var pe *ProtocolError
		if err := c.Auth(context.Background(), sasl.NewLoginClient("u", "p")); !errors.As(err, &pe) {
			t.Fatalf("Auth = %v, want a *ProtocolError", err)
		}
		if err := c.Noop(context.Background()); err != nil {
			t.Fatalf("connection unusable after a cancelled AUTH: %v", err)
		}
	})
	t.Run("SASL client refuses the challenge", func(t *testing.T) {
		c := fakeHello(t, Options{AllowInsecureAuth: true}, []string{"AUTH LOGIN"}, func(p *fakePeer) {
			p.line()
			p.send("334 " + b64("Something else:") + "\r\n")
			p.expect("*")
			p.send("501 5.0.0 cancelled\r\n")
		})
		if err := c.Auth(context.Background(), sasl.NewLoginClient("u", "p")); !errors.Is(err, sasl.ErrUnexpectedServerChallenge) {
			t.Fatalf("Auth = %v, want the SASL client's error", err)
		}
	})
	t.Run("endless challenges", func(t *testing.T) {
		c := fakeHello(t, Options{AllowInsecureAuth: true}, []string{"AUTH X-ECHO"}, func(p *fakePeer) {
			for {
				l := p.line()
				if l == "*" {
					p.send("501 cancelled\r\n")
					return
				}
				if l == "" {
					return
				}
				p.send("334 " + b64("again") + "\r\n")
			}
		})
		var pe *ProtocolError
		if err := c.Auth(context.Background(), echoClient{}); !errors.As(err, &pe) {
			t.Fatalf("Auth = %v, want a *ProtocolError", err)
		}
	})
}

// echoClient is a SASL mechanism that answers every challenge.
type echoClient struct{}

func (echoClient) Start() (string, []byte, error) { return "X-ECHO", nil, nil }
func (echoClient) Next(c []byte) ([]byte, error)  { return c, nil }
