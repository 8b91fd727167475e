package dane_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/testenv"
)

// A sender decides the DANE requirement of each MX host and, when DANE
// applies, makes its STARTTLS connection with the requirement's TLS
// configuration. Here the DNS is a loopback test server and the "MX host"
// a TLS server on a pipe.
func ExampleDiscovery_Lookup() {
	ca, _ := testenv.NewCA("example CA")
	cert := ca.MustLeaf(testenv.LeafOptions{}, "mx.example.com")
	spki := sha256.Sum256(cert.Leaf.RawSubjectPublicKeyInfo)

	dnsServer, _ := testenv.StartDNS()
	defer dnsServer.Close()
	_ = dnsServer.Zone("example.com.", testenv.Secure,
		"mx 300 IN A 127.0.0.2",
		fmt.Sprintf("_25._tcp.mx 300 IN TLSA 3 1 1 %x", spki))

	d := &dane.Discovery{Resolver: &dane.Resolver{Servers: []dane.Server{{Addr: dnsServer.Addr}}}}
	req, err := d.Lookup(context.Background(), "mx.example.com.", true)
	if err != nil {
		fmt.Println("do not use this host now:", err)
		return
	}
	fmt.Println(req.Outcome, "at", req.BaseDomain)

	client, server := net.Pipe()
	go func() {
		s := tls.Server(server, &tls.Config{Certificates: []tls.Certificate{cert}})
		if s.Handshake() == nil {
			_, _ = io.Copy(io.Discard, s) // until the client's close_notify
		}
		s.Close()
	}()
	conn := tls.Client(client, req.TLSConfig(nil, time.Now, func(m *dane.Match) {
		fmt.Println("authenticated by", m.Record.Usage, "record", m.Record.String()[:6])
	}))
	if err := conn.Handshake(); err != nil {
		fmt.Println("refused:", err)
	}
	conn.Close()
	// Output:
	// authentication required at mx.example.com
	// authenticated by DANE-EE record 3 1 1
}

// Records read from configuration or a zone file are checked before use:
// an unusable record is ignored, never an error.
func ExampleParseTLSARecord() {
	for _, text := range []string{
		"3 1 1 0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
		"1 1 1 0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
		"3 1 1 0b0b",
	} {
		r, err := dane.ParseTLSARecord(text)
		if err != nil {
			fmt.Println(err)
			continue
		}
		if err := r.Check(); err != nil {
			fmt.Println(r.Usage, "unusable:", err)
			continue
		}
		fmt.Println(r.Usage, r.Selector, r.MatchingType, "usable")
	}
	// Output:
	// DANE-EE SPKI SHA2-256 usable
	// PKIX-EE unusable: usage PKIX-EE is not usable for SMTP (RFC 7672 §3.1.3)
	// DANE-EE unusable: SHA2-256 association data of 2 bytes, want 32
}
