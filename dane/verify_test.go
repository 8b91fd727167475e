package dane

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/testenv"
)

// pki is the certificate world of the verification tests: a root, an
// intermediate under it, and a second, unrelated root.
type pki struct {
	root, stranger *testenv.CA
	inter          *testenv.Intermediate
}

var (
	pkiOnce sync.Once
	pkiVal  *pki
	pkiErr  error
)

func testPKI(tb testing.TB) *pki {
	tb.Helper()
	pkiOnce.Do(func() {
		p := &pki{}
		if p.root, pkiErr = testenv.NewCA("dane test root"); pkiErr != nil {
			return
		}
		if p.stranger, pkiErr = testenv.NewCA("unrelated root"); pkiErr != nil {
			return
		}
		if p.inter, pkiErr = p.root.Intermediate("dane test intermediate"); pkiErr != nil {
			return
		}
		pkiVal = p
	})
	if pkiErr != nil {
		tb.Fatal(pkiErr)
	}
	return pkiVal
}

// chain is what a server presents: the leaf and the certificates it sends
// after it.
type chain []*x509.Certificate

// leaf issues a leaf under the intermediate; the chain sent is the leaf and
// the intermediate, as servers send it.
func (p *pki) leaf(tb testing.TB, opts testenv.LeafOptions, names ...string) chain {
	tb.Helper()
	opts.Issuer = p.inter
	c, err := p.root.Leaf(opts, names...)
	if err != nil {
		tb.Fatal(err)
	}
	return chain{c.Leaf, p.inter.Cert}
}

// withRoot appends the root to a chain: RFC 7672 §3.1.2 has the server
// send its trust anchor certificate when the TLSA record is a digest of it.
func (p *pki) withRoot(c chain) chain { return append(append(chain{}, c...), p.root.Cert) }

// expiredIntermediate issues an intermediate CA that expired an hour ago
// (testenv issues only valid ones) and a leaf under it.
func (p *pki) expiredIntermediate(tb testing.TB, names ...string) chain {
	tb.Helper()
	key, err := testenv.NewKey(false)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(9001), Subject: pkix.Name{CommonName: "expired intermediate"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.root.Cert, key.Public(), p.root.Key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := p.root.Leaf(testenv.LeafOptions{Issuer: &testenv.Intermediate{Cert: cert, Key: key}}, names...)
	if err != nil {
		tb.Fatal(err)
	}
	return chain{c.Leaf, cert, p.root.Cert}
}

// cnOnly issues a leaf under the root whose only name is its subject CN.
func (p *pki) cnOnly(tb testing.TB, cn string) chain {
	tb.Helper()
	key, err := testenv.NewKey(false)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(9002), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.root.Cert, key.Public(), p.root.Key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return chain{cert, p.root.Cert}
}

func daneReq(host, base string, records ...TLSARecord) *Requirement {
	return &Requirement{Outcome: AuthenticationRequired, Host: host, BaseDomain: base, Records: records, MXSecure: true}
}

func TestVerify(t *testing.T) {
	p := testPKI(t)
	now := time.Now()
	const host = "mx.example.com"

	good := p.leaf(t, testenv.LeafOptions{}, host)
	expiredLeaf := p.leaf(t, testenv.LeafOptions{Expired: true}, host)
	futureLeaf := p.leaf(t, testenv.LeafOptions{NotYetValid: true}, host)
	wrongName := p.leaf(t, testenv.LeafOptions{}, "mail.example.net")
	wildcard := p.leaf(t, testenv.LeafOptions{}, "*.example.com")
	strangerLeaf := p.stranger.MustLeaf(testenv.LeafOptions{}, host)
	strangerChain := chain{strangerLeaf.Leaf, p.root.Cert} // claims our root, signed by another
	selfSigned := p.root.MustLeaf(testenv.LeafOptions{SelfSigned: true, Expired: true}, "localhost")
	expiredInter := p.expiredIntermediate(t, host)
	cnLeaf := p.cnOnly(t, host)
	rootKey210 := recordFor(DANETA, SelectorSPKI, MatchFull, p.root.Cert)
	otherKey210 := recordFor(DANETA, SelectorSPKI, MatchFull, p.stranger.Cert)
	tooLong := append(chain{}, good...)
	for len(tooLong) <= maxPeerCertificates {
		tooLong = append(tooLong, p.inter.Cert)
	}
	short := recordFor(DANEEE, SelectorSPKI, MatchSHA256, good[0])
	short.Data = short.Data[:31]

	type want struct {
		usage  Usage // of the matching record; 0 when a failure is expected
		depth  int
		name   string
		result string // RFC 8460 result type of the failure
		kind   error
	}
	for _, tc := range []struct {
		name  string
		req   *Requirement
		chain chain
		now   time.Time
		want  want
	}{
		{"3 1 1 matches the leaf key", daneReq(host, host, recordFor(DANEEE, SelectorSPKI, MatchSHA256, good[0])), good, now,
			want{usage: DANEEE}},
		{"3 0 1 matches the leaf certificate", daneReq(host, host, recordFor(DANEEE, SelectorCert, MatchSHA256, good[0])), good, now,
			want{usage: DANEEE}},
		{"3 1 2 matches the leaf key", daneReq(host, host, recordFor(DANEEE, SelectorSPKI, MatchSHA512, good[0])), good, now,
			want{usage: DANEEE}},
		{"3 0 0 matches the whole leaf", daneReq(host, host, recordFor(DANEEE, SelectorCert, MatchFull, good[0])), good, now,
			want{usage: DANEEE}},
		{"3 1 1 of another key does not match", daneReq(host, host, recordFor(DANEEE, SelectorSPKI, MatchSHA256, wrongName[0])), good, now,
			want{result: ResultValidationFailure, kind: ErrNoMatchingRecord}},
		{"3 x x does not match an intermediate", daneReq(host, host, recordFor(DANEEE, SelectorCert, MatchSHA256, p.inter.Cert)), good, now,
			want{result: ResultValidationFailure, kind: ErrNoMatchingRecord}},
		{"expired leaf under 3 1 1 is accepted (§3.1.1)", daneReq(host, host, recordFor(DANEEE, SelectorSPKI, MatchSHA256, expiredLeaf[0])), expiredLeaf, now,
			want{usage: DANEEE}},
		{"self-signed expired leaf for another name under 3 1 1 is accepted", daneReq(host, host, recordFor(DANEEE, SelectorSPKI, MatchSHA256, selfSigned.Leaf)), chain{selfSigned.Leaf}, now,
			want{usage: DANEEE}},
		{"wrong name under 3 1 1 is accepted (§3.1.1)", daneReq(host, host, recordFor(DANEEE, SelectorSPKI, MatchSHA256, wrongName[0])), wrongName, now,
			want{usage: DANEEE}},
		{"2 0 1 on the root", daneReq(host, host, recordFor(DANETA, SelectorCert, MatchSHA256, p.root.Cert)), p.withRoot(good), now,
			want{usage: DANETA, depth: 2, name: host}},
		{"2 0 1 on the intermediate", daneReq(host, host, recordFor(DANETA, SelectorCert, MatchSHA256, p.inter.Cert)), good, now,
			want{usage: DANETA, depth: 1, name: host}},
		{"2 1 1 on the intermediate", daneReq(host, host, recordFor(DANETA, SelectorSPKI, MatchSHA256, p.inter.Cert)), good, now,
			want{usage: DANETA, depth: 1, name: host}},
		{"2 0 2 on the root", daneReq(host, host, recordFor(DANETA, SelectorCert, MatchSHA512, p.root.Cert)), p.withRoot(good), now,
			want{usage: DANETA, depth: 2, name: host}},
		{"2 1 0 with a root key the server does not send", daneReq(host, host, rootKey210), good, now,
			want{usage: DANETA, depth: -1, name: host}},
		{"2 1 0 with a key that signed nothing presented", daneReq(host, host, otherKey210), good, now,
			want{result: ResultValidationFailure, kind: ErrNoMatchingRecord}},
		{"2 1 0 with garbage instead of a key", daneReq(host, host, TLSARecord{DANETA, SelectorSPKI, MatchFull, []byte{0x30, 0x03, 1, 2, 3}}), good, now,
			want{result: ResultValidationFailure, kind: ErrNoMatchingRecord}},
		{"2 0 1 on a root the server does not send does not match", daneReq(host, host, recordFor(DANETA, SelectorCert, MatchSHA256, p.root.Cert)), good, now,
			want{result: ResultValidationFailure, kind: ErrNoMatchingRecord}},
		{"expired leaf under 2 0 1 is refused", daneReq(host, host, recordFor(DANETA, SelectorCert, MatchSHA256, p.inter.Cert)), expiredLeaf, now,
			want{result: ResultCertificateExpired, kind: ErrCertificateExpired}},
		{"expired intermediate under 2 0 1 on the root is refused", daneReq(host, host, recordFor(DANETA, SelectorCert, MatchSHA256, p.root.Cert)), expiredInter, now,
			want{result: ResultCertificateExpired, kind: ErrCertificateExpired}},
		{"leaf not yet valid under 2 0 1 is refused, but not as expired", daneReq(host, host, recordFor(DANETA, SelectorCert, MatchSHA256, p.inter.Cert)), futureLeaf, now,
			want{result: ResultValidationFailure, kind: ErrChainInvalid}},
		{"2 0 1 leaf valid now is expired by the injected clock", daneReq(host, host, recordFor(DANETA, SelectorCert, MatchSHA256, p.inter.Cert)), good, now.Add(2 * 365 * 24 * time.Hour),
			want{result: ResultCertificateExpired, kind: ErrCertificateExpired}},
		{"3 1 1 leaf valid now is still accepted by the injected clock", daneReq(host, host, recordFor(DANEEE, SelectorSPKI, MatchSHA256, good[0])), good, now.Add(20 * 365 * 24 * time.Hour),
			want{usage: DANEEE}},
		{"wrong name under 2 0 1 is refused", daneReq(host, host, recordFor(DANETA, SelectorCert, MatchSHA256, p.inter.Cert)), wrongName, now,
			want{result: ResultCertificateHostMismatch, kind: ErrCertificateHostMismatch}},
		{"wildcard leaf under 2 0 1", daneReq(host, host, recordFor(DANETA, SelectorCert, MatchSHA256, p.inter.Cert)), wildcard, now,
			want{usage: DANETA, depth: 1, name: host}},
		{"wildcard leaf under 2 1 1 does not cover two labels", daneReq("a.mx.example.com", "a.mx.example.com", recordFor(DANETA, SelectorSPKI, MatchSHA256, p.inter.Cert)), wildcard, now,
			want{result: ResultCertificateHostMismatch, kind: ErrCertificateHostMismatch}},
		{"wildcard leaf under 2 1 1 does not cover the parent", daneReq("example.com", "example.com", recordFor(DANETA, SelectorSPKI, MatchSHA256, p.inter.Cert)), wildcard, now,
			want{result: ResultCertificateHostMismatch, kind: ErrCertificateHostMismatch}},
		{"leaf naming the original MX host under 2 x x after a CNAME (§3.2.3)", daneReq(host, "mx.provider.net", recordFor(DANETA, SelectorCert, MatchSHA256, p.inter.Cert)), good, now,
			want{usage: DANETA, depth: 1, name: host}},
		{"leaf naming the TLSA base domain under 2 x x after a CNAME (§3.2.3)", daneReq("mail.example.net", "mx.example.com", recordFor(DANETA, SelectorCert, MatchSHA256, p.inter.Cert)), good, now,
			want{usage: DANETA, depth: 1, name: host}},
		{"CN-only leaf under 2 0 1 names the host", daneReq(host, host, recordFor(DANETA, SelectorCert, MatchSHA256, p.root.Cert)), cnLeaf, now,
			want{usage: DANETA, depth: 1, name: host}},
		{"2 0 1 on a root that did not sign the chain", daneReq(host, host, recordFor(DANETA, SelectorCert, MatchSHA256, p.root.Cert)), strangerChain, now,
			want{result: ResultValidationFailure, kind: ErrChainInvalid}},
		{"two records of which the second matches", daneReq(host, host,
			recordFor(DANEEE, SelectorSPKI, MatchSHA256, wrongName[0]), recordFor(DANEEE, SelectorSPKI, MatchSHA256, good[0])), good, now,
			want{usage: DANEEE}},
		{"a failing DANE-TA record and a matching DANE-EE record", daneReq(host, host,
			recordFor(DANETA, SelectorCert, MatchSHA256, p.inter.Cert), recordFor(DANEEE, SelectorSPKI, MatchSHA256, wrongName[0])), wrongName, now,
			want{usage: DANEEE}},
		{"a stale DANE-EE record and a matching DANE-TA record", daneReq(host, host,
			recordFor(DANEEE, SelectorSPKI, MatchSHA256, wrongName[0]), recordFor(DANETA, SelectorSPKI, MatchSHA256, p.inter.Cert)), good, now,
			want{usage: DANETA, depth: 1, name: host}},
		{"only 0 x x and 1 x x records", daneReq(host, host,
			recordFor(PKIXTA, SelectorCert, MatchSHA256, p.root.Cert), recordFor(PKIXEE, SelectorSPKI, MatchSHA256, good[0])), p.withRoot(good), now,
			want{result: ResultTLSAInvalid, kind: ErrNoUsableRecord}},
		{"a SHA-256 record with 31 bytes of data", daneReq(host, host, short), good, now,
			want{result: ResultTLSAInvalid, kind: ErrNoUsableRecord}},
		{"a SHA-256 record with 31 bytes beside a good one", daneReq(host, host, short, recordFor(DANEEE, SelectorCert, MatchSHA256, good[0])), good, now,
			want{usage: DANEEE}},
		{"a stale SHA2-512 record sets aside a matching SHA2-256 one (RFC 7671 §9)", daneReq(host, host,
			recordFor(DANEEE, SelectorSPKI, MatchSHA512, wrongName[0]), recordFor(DANEEE, SelectorSPKI, MatchSHA256, good[0])), good, now,
			want{result: ResultValidationFailure, kind: ErrNoMatchingRecord}},
		{"no certificate presented", daneReq(host, host, recordFor(DANEEE, SelectorSPKI, MatchSHA256, good[0])), nil, now,
			want{result: ResultValidationFailure, kind: ErrNoPeerCertificate}},
		{"too many certificates presented", daneReq(host, host, recordFor(DANEEE, SelectorSPKI, MatchSHA256, good[0])), tooLong, now,
			want{result: ResultValidationFailure, kind: ErrChainInvalid}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := tc.req.Verify(tc.chain, tc.now)
			if tc.want.usage != 0 {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if m.Record.Usage != tc.want.usage || m.Depth != tc.want.depth || m.Name != tc.want.name {
					t.Fatalf("match = %+v, want usage %v depth %d name %q", m, tc.want.usage, tc.want.depth, tc.want.name)
				}
				if !m.Record.Matches(tc.chain[max(m.Depth, 0)]) && m.Depth >= 0 {
					t.Errorf("reported record %v does not match the certificate at depth %d", m.Record, m.Depth)
				}
				return
			}
			if m != nil || err == nil {
				t.Fatalf("Verify = %+v, %v; want failure %v", m, err, tc.want.kind)
			}
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T is not a *VerifyError: %v", err, err)
			}
			if !errors.Is(err, tc.want.kind) {
				t.Errorf("error %v is not %v", err, tc.want.kind)
			}
			if ve.ResultType() != tc.want.result {
				t.Errorf("ResultType() = %q, want %q (%v)", ve.ResultType(), tc.want.result, err)
			}
			if !ve.Temporary() {
				t.Error("a DANE failure must be temporary")
			}
			if !strings.Contains(err.Error(), tc.req.Host) {
				t.Errorf("error %q does not name the host", err)
			}
		})
	}
}

func TestVerifyErrorDetail(t *testing.T) {
	p := testPKI(t)
	wrong := p.leaf(t, testenv.LeafOptions{}, "mail.example.net")
	req := daneReq("mx.example.com", "mx.provider.net", recordFor(DANETA, SelectorCert, MatchSHA256, p.inter.Cert))
	_, err := req.Verify(wrong, time.Now())
	for _, s := range []string{"mx.example.com", "mx.provider.net", "mail.example.net", "2 0 1"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	var ve *VerifyError
	if errors.As(err, &ve); ve.Record == nil || ve.Record.Usage != DANETA {
		t.Errorf("Record = %v, want the DANE-TA record", ve.Record)
	}
	t.Run("x509 cause is reachable", func(t *testing.T) {
		expiredLeaf := p.leaf(t, testenv.LeafOptions{Expired: true}, "mx.example.com")
		_, err := req.Verify(expiredLeaf, time.Now())
		var inv x509.CertificateInvalidError
		if !errors.As(err, &inv) || inv.Reason != x509.Expired {
			t.Errorf("err = %v, want an x509.CertificateInvalidError inside", err)
		}
	})
}

func TestMatchName(t *testing.T) {
	for _, tc := range []struct {
		pattern, host string
		want          bool
	}{
		{"mx.example.com", "mx.example.com", true},
		{"MX.Example.COM.", "mx.example.com", true},
		{"*.example.com", "mx.example.com", true},
		{"*.example.com", "a.mx.example.com", false},
		{"*.example.com", "example.com", false},
		{"*.example.com", ".example.com", false},
		{"mx*.example.com", "mx1.example.com", false},
		{"*.*.com", "a.b.com", false},
		{"*", "com", false},
		{"", "", false},
		// A presented name is compared as written, ASCII case aside: a
		// certificate for U+212A KELVIN SIGN is not one for "k".
		{"\u212Aelvin.example", "kelvin.example", false},
		{"*.\u212Aelvin.example", "mx.kelvin.example", false},
		{"mx.example.com..", "mx.example.com", false},
	} {
		if got := matchName(tc.pattern, tc.host); got != tc.want {
			t.Errorf("matchName(%q, %q) = %v, want %v", tc.pattern, tc.host, got, tc.want)
		}
	}
}

// serve runs a TLS server presenting certs on one end of a pipe and
// returns the other end, and the SNI name the server saw.
func serve(t *testing.T, c tls.Certificate) (net.Conn, <-chan string) {
	t.Helper()
	client, server := net.Pipe()
	deadline := time.Now().Add(5 * time.Second)
	_ = client.SetDeadline(deadline)
	_ = server.SetDeadline(deadline)
	sni := make(chan string, 1)
	srv := tls.Server(server, &tls.Config{
		Certificates: []tls.Certificate{c},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			sni <- hello.ServerName
			return nil, nil
		},
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The client's verdict arrives as an alert or as a close; either
		// way the server is done.
		if srv.Handshake() == nil {
			buf := make([]byte, 1)
			_, _ = srv.Read(buf)
		}
		srv.Close()
	}()
	t.Cleanup(func() { client.Close(); <-done })
	return client, sni
}

func TestTLSConfigHandshake(t *testing.T) {
	p := testPKI(t)
	const host = "mx.example.com"
	tlsLeaf := func(opts testenv.LeafOptions, names ...string) tls.Certificate {
		opts.Issuer = p.inter
		return p.root.MustLeaf(opts, names...)
	}
	good := tlsLeaf(testenv.LeafOptions{}, host)
	wrong := tlsLeaf(testenv.LeafOptions{}, "mail.example.net")
	expired := tlsLeaf(testenv.LeafOptions{Expired: true}, host)

	for _, tc := range []struct {
		name   string
		req    *Requirement
		cert   tls.Certificate
		usage  Usage  // of the match; 0 when no match is reported
		result string // RFC 8460 result type of the failure; "" on success
	}{
		{"3 1 1 over TLS", daneReq(host, host, recordFor(DANEEE, SelectorSPKI, MatchSHA256, good.Leaf)), good, DANEEE, ""},
		{"expired leaf under 3 1 1 over TLS", daneReq(host, host, recordFor(DANEEE, SelectorSPKI, MatchSHA256, expired.Leaf)), expired, DANEEE, ""},
		{"2 1 1 on the intermediate over TLS", daneReq(host, host, recordFor(DANETA, SelectorSPKI, MatchSHA256, p.inter.Cert)), good, DANETA, ""},
		{"2 1 0 root key over TLS", daneReq(host, host, recordFor(DANETA, SelectorSPKI, MatchFull, p.root.Cert)), good, DANETA, ""},
		{"wrong name under 2 0 1 over TLS", daneReq(host, host, recordFor(DANETA, SelectorCert, MatchSHA256, p.inter.Cert)), wrong, 0, ResultCertificateHostMismatch},
		{"no matching record over TLS", daneReq(host, host, recordFor(DANEEE, SelectorSPKI, MatchSHA256, wrong.Leaf)), good, 0, ResultValidationFailure},
		{"TLS required without authentication accepts any certificate",
			&Requirement{Outcome: TLSRequired, Host: host, BaseDomain: host, Records: []TLSARecord{recordFor(PKIXEE, SelectorSPKI, MatchSHA256, wrong.Leaf)}},
			wrong, 0, ""},
		{"not applicable refuses every certificate", &Requirement{Outcome: NotApplicable, Host: host}, good, 0, ResultTLSAInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, sni := serve(t, tc.cert)
			var got *Match
			cfg := tc.req.TLSConfig(&tls.Config{ServerName: "ignored.example", VerifyConnection: func(tls.ConnectionState) error {
				return errors.New("base VerifyConnection must be replaced")
			}}, time.Now, func(m *Match) { got = m })
			tc.req.TLSConfig(nil, nil, nil) // a nil base and clock are allowed
			client := tls.Client(conn, cfg)
			err := client.HandshakeContext(context.Background())
			select {
			case name := <-sni:
				if name != tc.req.BaseDomain {
					t.Errorf("SNI = %q, want the TLSA base domain %q (RFC 7672 §8.1)", name, tc.req.BaseDomain)
				}
			default:
				t.Error("the server saw no ClientHello")
			}
			if tc.result == "" {
				if err != nil {
					t.Fatalf("handshake: %v", err)
				}
				if tc.usage == 0 && got != nil || tc.usage != 0 && (got == nil || got.Record.Usage != tc.usage) {
					t.Fatalf("match = %+v, want usage %v", got, tc.usage)
				}
				client.Close()
				return
			}
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("handshake error %v is not a *VerifyError", err)
			}
			if ve.ResultType() != tc.result {
				t.Errorf("ResultType() = %q, want %q", ve.ResultType(), tc.result)
			}
			if got != nil {
				t.Errorf("onMatch called with %+v on failure", got)
			}
		})
	}
}

// junkRecords returns n usable records that match nothing, of every
// usage, selector and digest (a record to be found among them must be
// SHA2-512 or Full: the SHA2-512 ones set SHA2-256 ones aside).
func junkRecords(n int) []TLSARecord {
	out := make([]TLSARecord, n)
	for i := range out {
		m := MatchSHA256
		data := make([]byte, 32)
		if i%3 == 0 {
			m, data = MatchSHA512, make([]byte, 64)
		}
		data[0], data[1] = byte(i), byte(i>>8)
		out[i] = TLSARecord{Usage: Usage(2 + i%2), Selector: Selector(i / 2 % 2), MatchingType: m, Data: data}
	}
	return out
}

func TestVerifyLargeRRset(t *testing.T) {
	p := testPKI(t)
	c := p.leaf(t, testenv.LeafOptions{}, "mx.example.com")
	records := append(junkRecords(1500), recordFor(DANETA, SelectorCert, MatchSHA512, p.inter.Cert))
	m, err := daneReq("mx.example.com", "mx.example.com", records...).Verify(c, time.Now())
	if err != nil || m.Record.Usage != DANETA || m.Depth != 1 {
		t.Fatalf("Verify = %+v, %v; want the last record, DANE-TA at depth 1", m, err)
	}
	_, err = daneReq("mx.example.com", "mx.example.com", records[:1500]...).Verify(c, time.Now())
	if !errors.Is(err, ErrNoMatchingRecord) {
		t.Fatalf("junk only: err = %v, want ErrNoMatchingRecord", err)
	}
}

// BenchmarkVerify measures the verification of one connection's chain:
// DANE-EE is one digest; DANE-TA adds a chain verification.
func BenchmarkVerify(b *testing.B) {
	p := testPKI(b)
	const host = "mx.example.com"
	c := p.leaf(b, testenv.LeafOptions{}, host)
	now := time.Now()
	for _, bc := range []struct {
		name string
		req  *Requirement
	}{
		{"3_1_1", daneReq(host, host, recordFor(DANEEE, SelectorCert, MatchSHA256, p.stranger.Cert), recordFor(DANEEE, SelectorSPKI, MatchSHA256, c[0]))},
		{"2_1_1", daneReq(host, host, recordFor(DANETA, SelectorSPKI, MatchSHA256, p.inter.Cert))},
		{"2_1_0_key_not_sent", daneReq(host, host, recordFor(DANETA, SelectorSPKI, MatchFull, p.root.Cert))},
		{"1000_records_last_matches", daneReq(host, host, append(junkRecords(1000), recordFor(DANEEE, SelectorSPKI, MatchSHA512, c[0]))...)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.req.Verify(c, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
