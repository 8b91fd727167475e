package smtpclient_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"strings"

	"github.com/emersion/go-smtp"
	"github.com/sealpost/sealpost/internal/smtpclient"
	"github.com/sealpost/sealpost/internal/testenv"
)

// A whole session: greeting, EHLO, STARTTLS, EHLO again, one message to two
// recipients of which one is refused, QUIT. The MX host is a test sink on
// loopback.
func Example() {
	ca, err := testenv.NewCA("example CA")
	if err != nil {
		log.Fatal(err)
	}
	cert, err := ca.Leaf(testenv.LeafOptions{}, "mx.example.net")
	if err != nil {
		log.Fatal(err)
	}
	sink, err := testenv.StartSMTP(testenv.SMTPOptions{
		Hostname:    "mx.example.net",
		Certificate: &cert,
		RcptReply: func(to string, _ *smtp.RcptOptions) *smtp.SMTPError {
			if strings.HasPrefix(to, "nobody@") {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			}
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sink.Close()

	ctx := context.Background()
	conn, err := net.Dial("tcp", sink.Addr())
	if err != nil {
		log.Fatal(err)
	}
	c, err := smtpclient.New(ctx, conn, smtpclient.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello(ctx, "mta.example.org"); err != nil {
		log.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		err := c.StartTLS(ctx, &tls.Config{ServerName: "mx.example.net", RootCAs: ca.Pool()})
		if err != nil {
			log.Fatal(err)
		}
		if err := c.Hello(ctx, "mta.example.org"); err != nil {
			log.Fatal(err)
		}
	}
	st, _ := c.TLSState()
	fmt.Println("greeting:", c.Greeting())
	fmt.Println("TLS:", tls.VersionName(st.Version))

	env := smtpclient.Envelope{
		From:  "alice@example.org",
		Rcpts: []smtpclient.Rcpt{{Addr: "bob@example.net"}, {Addr: "nobody@example.net"}},
	}
	res, err := c.Send(ctx, env, strings.NewReader("Subject: hello\n\nHi Bob.\n"))
	if err != nil {
		log.Fatal(err)
	}
	for i, r := range env.Rcpts {
		fmt.Printf("%s: accepted=%v (%d %s)\n", r.Addr, res.Accepted(i), res.Rcpts[i].Code, res.Rcpts[i].EnhancedString())
	}
	fmt.Println("final reply:", res.Data.Code, res.Data.EnhancedString())
	if err := c.Quit(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// greeting: mx.example.net ESMTP Service Ready
	// TLS: TLS 1.3
	// bob@example.net: accepted=true (250 2.0.0)
	// nobody@example.net: accepted=false (550 5.1.1)
	// final reply: 250 2.0.0
}

// Errors tell the caller what to do next: move on to another host when the
// connection is gone, bounce or defer on a reply.
func ExampleErrConnLost() {
	sink, err := testenv.StartSMTP(testenv.SMTPOptions{DropAt: testenv.StageRCPT})
	if err != nil {
		log.Fatal(err)
	}
	defer sink.Close()
	ctx := context.Background()
	conn, err := net.Dial("tcp", sink.Addr())
	if err != nil {
		log.Fatal(err)
	}
	c, err := smtpclient.New(ctx, conn, smtpclient.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Hello(ctx, "mta.example.org"); err != nil {
		log.Fatal(err)
	}
	_, err = c.Send(ctx, smtpclient.Envelope{From: "alice@example.org", Rcpts: []smtpclient.Rcpt{{Addr: "bob@example.net"}}}, strings.NewReader("Hi.\n"))
	var reply *smtpclient.Reply
	switch {
	case errors.Is(err, smtpclient.ErrConnLost):
		fmt.Println("connection lost: try the next host")
	case errors.As(err, &reply) && reply.Temporary():
		fmt.Println("deferred:", reply.Code)
	case err != nil:
		fmt.Println("failed:", err)
	}
	// Output:
	// connection lost: try the next host
}
