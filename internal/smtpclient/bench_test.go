package smtpclient

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/sealpost/sealpost/internal/testenv"
)

// message5K is a 5 KB message with 76-octet lines, the size the delivery
// benchmarks use.
var message5K = func() string {
	var b strings.Builder
	b.WriteString("From: alice@example.org\r\nTo: bob@example.net\r\nSubject: benchmark\r\nMessage-ID: <bench@example.org>\r\n\r\n")
	for b.Len() < 5120-78 {
		b.WriteString(strings.Repeat("x", 74) + "\r\n")
	}
	return b.String()
}()

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkSendReusedTLS sends b.N messages of 5 KB over one STARTTLS
// connection to the testenv sink, pipelined; "rset" also resets between
// messages, as a pool that cannot know the last transaction's state does.
func BenchmarkSendReusedTLS(b *testing.B) {
	for _, rset := range []bool{false, true} {
		name := "pipelined"
		if rset {
			name = "pipelined_rset"
		}
		b.Run(name, func(b *testing.B) {
			k := testPKI(b)
			s := startSink(b, testenv.SMTPOptions{Certificate: &k.cert})
			c := dialSink(b, s, Options{}, k.clientTLS())
			ctx := context.Background()
			e := env("bob@example.net")
			e.Size = int64(len(message5K))
			r := strings.NewReader(message5K)
			b.SetBytes(int64(len(message5K)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if rset {
					if err := c.Reset(ctx); err != nil {
						b.Fatal(err)
					}
				}
				r.Reset(message5K)
				if _, err := c.Send(ctx, e, r); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
	}
}

// BenchmarkGoSMTPReusedTLS is the baseline: go-smtp's own client sending
// the same messages over one reused STARTTLS connection to the same sink,
// with MAIL, RCPT, DATA and RSET one after another.
func BenchmarkGoSMTPReusedTLS(b *testing.B) {
	k := testPKI(b)
	s := startSink(b, testenv.SMTPOptions{Certificate: &k.cert})
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		b.Fatal(err)
	}
	c, err := smtp.NewClientStartTLS(conn, k.clientTLS())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	r := strings.NewReader(message5K)
	b.SetBytes(int64(len(message5K)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := c.Mail("alice@example.org", &smtp.MailOptions{Size: int64(len(message5K))}); err != nil {
			b.Fatal(err)
		}
		if err := c.Rcpt("bob@example.net", nil); err != nil {
			b.Fatal(err)
		}
		w, err := c.Data()
		if err != nil {
			b.Fatal(err)
		}
		r.Reset(message5K)
		if _, err := io.Copy(w, r); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		if err := c.Reset(); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func BenchmarkDataWriter(b *testing.B) {
	bw := bufio.NewWriterSize(io.Discard, writeBufferSize)
	p := []byte(message5K)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for range b.N {
		d := &dataWriter{w: bw, lineStart: true}
		d.Write(p)
		d.Close()
	}
}

func BenchmarkReadReply(b *testing.B) {
	const ehlo = "250-mx.example.net Hello client.example.org\r\n250-PIPELINING\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250 SMTPUTF8\r\n"
	sr := strings.NewReader(ehlo)
	br := bufio.NewReaderSize(sr, maxReplyLine)
	b.SetBytes(int64(len(ehlo)))
	b.ReportAllocs()
	for range b.N {
		sr.Reset(ehlo)
		br.Reset(sr)
		if _, err := readReply(br, nil); err != nil {
			b.Fatal(err)
		}
	}
}
