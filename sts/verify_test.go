package sts

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/testenv"
)

// handshake runs a TLS handshake over a pipe with a server offering cert
// (and accepting TLS versions up to maxVersion, 0 for Go's default), and
// returns the client's connection state, unverified.
func handshake(t *testing.T, cert tls.Certificate, maxVersion uint16) tls.ConnectionState {
	t.Helper()
	cs, err := handshakeWith(cert, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: maxVersion})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return cs
}

func handshakeWith(cert tls.Certificate, clientConfig *tls.Config) (tls.ConnectionState, error) {
	// Loopback TCP rather than net.Pipe: the kernel's buffers let both
	// sides write at once (a client alert while the server still sends its
	// flight), which an unbuffered pipe would deadlock on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		srv := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS10})
		if srv.Handshake() == nil {
			// Let the client read the session tickets TLS 1.3 sends.
			srv.Write([]byte("x"))
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	cl := tls.Client(conn, clientConfig)
	err = cl.Handshake()
	if err == nil {
		cl.Read(make([]byte, 1))
	}
	conn.Close()
	<-done
	return cl.ConnectionState(), err
}

func newCA(t testing.TB, name string) *testenv.CA {
	t.Helper()
	ca, err := testenv.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestVerifyConnection(t *testing.T) {
	ca := newCA(t, "sts test root")
	other := newCA(t, "some other root")
	inter, err := ca.Intermediate("sts test intermediate")
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{RootCAs: ca.Pool()}
	later := func() time.Time { return time.Now().Add(2 * 365 * 24 * time.Hour) }

	tests := []struct {
		name   string
		client *Client
		cert   tls.Certificate
		maxVer uint16
		host   string
		want   error  // nil: valid
		result string // RFC 8460 result type for a failure
	}{
		{name: "valid certificate", cert: ca.MustLeaf(testenv.LeafOptions{}, "mx.example.com"), host: "mx.example.com"},
		{name: "host with other case and trailing dot", cert: ca.MustLeaf(testenv.LeafOptions{}, "mx.example.com"), host: "MX.Example.com."},
		{name: "one of several names", cert: ca.MustLeaf(testenv.LeafOptions{}, "mail.example.org", "mx.example.com"), host: "mx.example.com"},
		{name: "wildcard certificate covers one label", cert: ca.MustLeaf(testenv.LeafOptions{}, "*.example.com"), host: "mx.example.com"},
		{name: "chain through an intermediate", cert: ca.MustLeaf(testenv.LeafOptions{Issuer: inter}, "mx.example.com"), host: "mx.example.com"},
		{name: "RSA key", cert: ca.MustLeaf(testenv.LeafOptions{RSA: true}, "mx.example.com"), host: "mx.example.com"},

		{name: "certificate for another name", cert: ca.MustLeaf(testenv.LeafOptions{}, "other.example.com"), host: "mx.example.com",
			want: ErrHostMismatch, result: "certificate-host-mismatch"},
		{name: "wildcard certificate does not cover two labels", cert: ca.MustLeaf(testenv.LeafOptions{}, "*.example.com"), host: "a.mx.example.com",
			want: ErrHostMismatch, result: "certificate-host-mismatch"},
		{name: "wildcard certificate does not cover the bare domain", cert: ca.MustLeaf(testenv.LeafOptions{}, "*.example.com"), host: "example.com",
			want: ErrHostMismatch, result: "certificate-host-mismatch"},
		{name: "expired certificate", cert: ca.MustLeaf(testenv.LeafOptions{Expired: true}, "mx.example.com"), host: "mx.example.com",
			want: ErrCertificateExpired, result: "certificate-expired"},
		{name: "expired by the injected clock", client: &Client{RootCAs: ca.Pool(), Now: later},
			cert: ca.MustLeaf(testenv.LeafOptions{}, "mx.example.com"), host: "mx.example.com",
			want: ErrCertificateExpired, result: "certificate-expired"},
		{name: "expired and for another name: expiry is reported", cert: ca.MustLeaf(testenv.LeafOptions{Expired: true}, "other.example"), host: "mx.example.com",
			want: ErrCertificateExpired, result: "certificate-expired"},
		{name: "not yet valid certificate", cert: ca.MustLeaf(testenv.LeafOptions{NotYetValid: true}, "mx.example.com"), host: "mx.example.com",
			want: ErrValidationFailure, result: "validation-failure"},
		{name: "self-signed certificate", cert: ca.MustLeaf(testenv.LeafOptions{SelfSigned: true}, "mx.example.com"), host: "mx.example.com",
			want: ErrCertificateNotTrusted, result: "certificate-not-trusted"},
		{name: "certificate from an untrusted CA", cert: other.MustLeaf(testenv.LeafOptions{}, "mx.example.com"), host: "mx.example.com",
			want: ErrCertificateNotTrusted, result: "certificate-not-trusted"},
		{name: "TLS 1.1 is too old", cert: ca.MustLeaf(testenv.LeafOptions{}, "mx.example.com"), maxVer: tls.VersionTLS11, host: "mx.example.com",
			want: ErrValidationFailure, result: "validation-failure"},
		{name: "TLS 1.2 is enough", cert: ca.MustLeaf(testenv.LeafOptions{}, "mx.example.com"), maxVer: tls.VersionTLS12, host: "mx.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := c
			if tt.client != nil {
				client = tt.client
			}
			cs := handshake(t, tt.cert, tt.maxVer)
			err := client.VerifyConnection(cs, tt.host)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("VerifyConnection: %v", err)
				}
				return
			}
			var se *Error
			if !errors.Is(err, tt.want) || !errors.As(err, &se) {
				t.Fatalf("VerifyConnection = %v, want %v", err, tt.want)
			}
			if se.ResultType() != tt.result || !se.Temporary() {
				t.Fatalf("ResultType = %q, Temporary = %v; want %q, true", se.ResultType(), se.Temporary(), tt.result)
			}
		})
	}
}

func TestVerifyConnectionWithoutHandshake(t *testing.T) {
	var c Client
	err := c.VerifyConnection(tls.ConnectionState{}, "mx.example.com")
	if !errors.Is(err, ErrValidationFailure) {
		t.Fatalf("VerifyConnection of an empty state = %v, want ErrValidationFailure", err)
	}
	cs := tls.ConnectionState{HandshakeComplete: true, Version: tls.VersionTLS13}
	if err := c.VerifyConnection(cs, "mx.example.com"); !errors.Is(err, ErrValidationFailure) {
		t.Fatalf("VerifyConnection without certificates = %v, want ErrValidationFailure", err)
	}
}

// TestVerifyConnectionFunc checks the hook aborts a handshake with the
// typed error, which is what the delivery engine sees in enforce mode.
func TestVerifyConnectionFunc(t *testing.T) {
	ca := newCA(t, "sts test root")
	c := &Client{RootCAs: ca.Pool()}
	good := ca.MustLeaf(testenv.LeafOptions{}, "mx.example.com")
	if _, err := handshakeWith(good, &tls.Config{InsecureSkipVerify: true, VerifyConnection: c.VerifyConnectionFunc("mx.example.com")}); err != nil {
		t.Fatalf("handshake with a valid certificate: %v", err)
	}
	_, err := handshakeWith(good, &tls.Config{InsecureSkipVerify: true, VerifyConnection: c.VerifyConnectionFunc("mx2.example.com")})
	var se *Error
	if !errors.As(err, &se) || se.ResultType() != "certificate-host-mismatch" || se.Host != "mx2.example.com" {
		t.Fatalf("handshake with a certificate for another host: %v, want a certificate-host-mismatch *Error", err)
	}
}
