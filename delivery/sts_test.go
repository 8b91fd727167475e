package delivery

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/testenv"
	"github.com/sealpost/sealpost/sts"
	"github.com/sealpost/sealpost/tlsrpt"
)

const enforcePolicy = "version: STSv1\nmode: enforce\nmx: mx.sts.example\nmx: *.backup.sts.example\nmax_age: 86400\n"

// stsWorld has sts.example (unsigned, so DANE cannot apply) publishing
// policy, with one MX host, mx.sts.example, configured by opts.
func stsWorld(t *testing.T, policy string, opts testenv.SMTPOptions) (*testWorld, *testenv.SMTPServer, string) {
	tw := newTestWorld(t, "insecure:sts.example.")
	if opts.Certificate == nil {
		opts.Certificate = tw.cert("mx.sts.example")
	}
	sink, ip := tw.mx("sts.example", 10, "mx.sts.example", opts)
	if err := tw.w.PublishSTS("sts.example", "20240101", policy); err != nil {
		t.Fatal(err)
	}
	return tw, sink, ip
}

func TestMTASTS(t *testing.T) {
	t.Run("enforce: valid certificate for a listed host", func(t *testing.T) {
		tw, sink, _ := stsWorld(t, enforcePolicy, testenv.SMTPOptions{})
		c := tw.client(nil)
		res := deliver(t, c, msg("bob@sts.example"))
		want(t, res[0], Delivered, "")
		s := res[0].Session
		if s.Auth != WebPKI || s.Requirement.Basis != BasisMTASTS || s.Requirement.Level != Authenticated || s.TLSVersion < tls.VersionTLS12 || s.CheckErr != nil {
			t.Errorf("session = %+v", s)
		}
		if m := sink.Messages(); len(m) != 1 || m[0].TLS.ServerName != "mx.sts.example" {
			t.Errorf("sink got %+v", m)
		}
		rec := tw.only()
		wantFailure(t, rec, tlsrpt.PolicyTypeSTS, "")
		if rec.Policy.Domain != "sts.example" || !slices.Equal(rec.Policy.MXHosts, []string{"mx.sts.example", "*.backup.sts.example"}) ||
			!slices.Contains(rec.Policy.Strings, "mode: enforce") {
			t.Errorf("policy = %+v", rec.Policy)
		}
	})
	t.Run("enforce: MX not in the policy", func(t *testing.T) {
		tw, sink, _ := stsWorld(t, "version: STSv1\nmode: enforce\nmx: other.sts.example\nmax_age: 86400\n", testenv.SMTPOptions{})
		c := tw.client(nil)
		want(t, deliver(t, c, msg("bob@sts.example"))[0], TemporaryFailure, "4.4.8")
		if sink.Connections() != 0 {
			t.Error("connected to a host the policy does not list")
		}
		rec := tw.only()
		wantFailure(t, rec, tlsrpt.PolicyTypeSTS, tlsrpt.ResultValidationFailure)
		if rec.Failure.FailureReasonCode != "mx-not-in-policy" || rec.Failure.ReceivingMXHostname != "mx.sts.example" {
			t.Errorf("failure = %+v", rec.Failure)
		}
		// RFC 8461 §5: the failure made the policy be fetched again.
		if n := tw.w.Policies.Fetches("sts.example"); n != 2 {
			t.Errorf("%d policy fetches, want 2", n)
		}
	})
	bad := []struct {
		name string
		leaf testenv.LeafOptions
		host string
		rt   tlsrpt.ResultType
	}{
		{"certificate for another name", testenv.LeafOptions{}, "other.example", tlsrpt.ResultCertificateHostMismatch},
		{"expired certificate", testenv.LeafOptions{Expired: true}, "mx.sts.example", tlsrpt.ResultCertificateExpired},
		{"self-signed certificate", testenv.LeafOptions{SelfSigned: true}, "mx.sts.example", tlsrpt.ResultCertificateNotTrusted},
	}
	for _, tc := range bad {
		t.Run("enforce: "+tc.name, func(t *testing.T) {
			tw := newTestWorld(t) // for its CA only
			cert := tw.w.CA.MustLeaf(tc.leaf, tc.host)
			tw, sink, _ := stsWorldWithCA(t, tw, enforcePolicy, testenv.SMTPOptions{Certificate: &cert})
			c := tw.client(nil)
			res := deliver(t, c, msg("bob@sts.example"))
			want(t, res[0], TemporaryFailure, "4.7.5")
			if len(sink.Messages()) != 0 {
				t.Error("delivered")
			}
			wantFailure(t, tw.only(), tlsrpt.PolicyTypeSTS, tc.rt)
			wantCheckErr(t, res[0].Session, tc.rt)
		})
		t.Run("testing: "+tc.name+" is delivered and reported", func(t *testing.T) {
			tw := newTestWorld(t)
			cert := tw.w.CA.MustLeaf(tc.leaf, tc.host)
			tw, sink, _ := stsWorldWithCA(t, tw, "version: STSv1\nmode: testing\nmx: mx.sts.example\nmax_age: 86400\n", testenv.SMTPOptions{Certificate: &cert})
			c := tw.client(nil)
			res := deliver(t, c, msg("bob@sts.example"))
			want(t, res[0], Delivered, "")
			if res[0].Session.Auth != UnauthenticatedTLS || len(sink.Messages()) != 1 {
				t.Errorf("session = %+v", res[0].Session)
			}
			wantFailure(t, tw.only(), tlsrpt.PolicyTypeSTS, tc.rt)
			// Why the message went unauthenticated, without a Recorder.
			wantCheckErr(t, res[0].Session, tc.rt)
		})
	}
	t.Run("enforce: STARTTLS stripped", func(t *testing.T) {
		tw, sink, ip := stsWorld(t, enforcePolicy, testenv.SMTPOptions{})
		att, err := tw.w.Attack(ip, testenv.AttackerOptions{Mode: testenv.StripSTARTTLS})
		if err != nil {
			t.Fatal(err)
		}
		c := tw.client(nil)
		want(t, deliver(t, c, msg("bob@sts.example"))[0], TemporaryFailure, "4.7.10")
		if att.Transactions() != 0 || len(sink.Messages()) != 0 {
			t.Error("the message went through the attacker")
		}
		wantFailure(t, tw.only(), tlsrpt.PolicyTypeSTS, tlsrpt.ResultSTARTTLSNotSupported)
	})
	t.Run("enforce: TLS 1.1 only", func(t *testing.T) {
		tw, sink, _ := stsWorld(t, enforcePolicy, testenv.SMTPOptions{MinTLSVersion: tls.VersionTLS10, MaxTLSVersion: tls.VersionTLS11})
		c := tw.client(nil)
		want(t, deliver(t, c, msg("bob@sts.example"))[0], TemporaryFailure, "4.7.5")
		if len(sink.Messages()) != 0 {
			t.Error("delivered over TLS 1.1")
		}
		wantFailure(t, tw.only(), tlsrpt.PolicyTypeSTS, tlsrpt.ResultValidationFailure)
	})
	t.Run("testing: TLS 1.1 only is delivered and reported", func(t *testing.T) {
		tw, sink, _ := stsWorld(t, "version: STSv1\nmode: testing\nmx: mx.sts.example\nmax_age: 86400\n",
			testenv.SMTPOptions{MinTLSVersion: tls.VersionTLS10, MaxTLSVersion: tls.VersionTLS11})
		c := tw.client(nil)
		res := deliver(t, c, msg("bob@sts.example"))
		want(t, res[0], Delivered, "")
		if res[0].Session.TLSVersion != tls.VersionTLS11 || len(sink.Messages()) != 1 {
			t.Errorf("session = %+v", res[0].Session)
		}
		wantFailure(t, tw.only(), tlsrpt.PolicyTypeSTS, tlsrpt.ResultValidationFailure)
	})
	t.Run("testing: MX not in the policy is delivered and reported", func(t *testing.T) {
		tw, sink, _ := stsWorld(t, "version: STSv1\nmode: testing\nmx: other.sts.example\nmax_age: 86400\n", testenv.SMTPOptions{})
		c := tw.client(nil)
		want(t, deliver(t, c, msg("bob@sts.example"))[0], Delivered, "")
		if len(sink.Messages()) != 1 {
			t.Error("not delivered")
		}
		rec := tw.only()
		wantFailure(t, rec, tlsrpt.PolicyTypeSTS, tlsrpt.ResultValidationFailure)
		if rec.Failure.FailureReasonCode != "mx-not-in-policy" || !rec.Failure.ReceivingIP.IsValid() {
			t.Errorf("failure = %+v", rec.Failure)
		}
	})
	t.Run("policy fetch failure: delivered without a policy, reported", func(t *testing.T) {
		tw, sink, _ := stsWorld(t, enforcePolicy, testenv.SMTPOptions{})
		tw.w.Policies.Set("sts.example", testenv.PolicyResponse{Status: 404})
		c := tw.client(nil)
		res := deliver(t, c, msg("bob@sts.example"))
		want(t, res[0], Delivered, "")
		if res[0].Session.Requirement.Basis != NoPolicy || len(sink.Messages()) != 1 {
			t.Errorf("session = %+v", res[0].Session)
		}
		rec := tw.only()
		wantFailure(t, rec, tlsrpt.PolicyTypeSTS, tlsrpt.ResultSTSPolicyFetchError)
		if len(rec.Policy.Strings) != 0 {
			t.Errorf("policy = %+v", rec.Policy)
		}
	})
	t.Run("a changed policy is fetched again and used in the same attempt", func(t *testing.T) {
		old := "version: STSv1\nmode: enforce\nmx: old.sts.example\nmax_age: 86400\n"
		tw, sink, _ := stsWorld(t, old, testenv.SMTPOptions{})
		c := tw.client(nil)
		c.sts.RefetchInterval = time.Nanosecond
		want(t, deliver(t, c, msg("bob@sts.example"))[0], TemporaryFailure, "4.4.8")
		// The domain moves its MX and updates its policy, but not the id:
		// the cached policy still names the old host.
		tw.w.Policies.Set("sts.example", testenv.PolicyResponse{Body: enforcePolicy})
		res := deliver(t, c, msg("bob@sts.example"))
		want(t, res[0], Delivered, "")
		if res[0].Session.Auth != WebPKI || len(sink.Messages()) != 1 {
			t.Errorf("session = %+v", res[0].Session)
		}
	})
	t.Run("DANE takes precedence over MTA-STS", func(t *testing.T) {
		dw := newDANEWorld(t, testenv.SMTPOptions{})
		if err := dw.w.PublishSTS("secure.example", "1", "version: STSv1\nmode: enforce\nmx: nothing.example\nmax_age: 86400\n"); err != nil {
			t.Fatal(err)
		}
		c := dw.client(nil)
		res := deliver(t, c, msg("bob@secure.example"))
		want(t, res[0], Delivered, "")
		if res[0].Session.Auth != DANEEE {
			t.Errorf("session = %+v", res[0].Session)
		}
	})
	t.Run("REQUIRETLS through an insecure MX validated by MTA-STS", func(t *testing.T) {
		tw, sink, _ := stsWorld(t, enforcePolicy, testenv.SMTPOptions{REQUIRETLS: true})
		c := tw.client(nil)
		m := msg("bob@sts.example")
		m.RequireTLS = true
		want(t, deliver(t, c, m)[0], Delivered, "")
		if got := sink.Messages(); len(got) != 1 || !got[0].MailOptions.RequireTLS {
			t.Errorf("sink got %+v", got)
		}
	})
}

// stsWorldWithCA is stsWorld on an existing world (whose CA issued a
// certificate the caller wants to use).
func stsWorldWithCA(t *testing.T, tw *testWorld, policy string, opts testenv.SMTPOptions) (*testWorld, *testenv.SMTPServer, string) {
	if err := tw.w.DNS.Zone("sts.example.", testenv.Insecure); err != nil {
		t.Fatal(err)
	}
	sink, ip := tw.mx("sts.example", 10, "mx.sts.example", opts)
	if err := tw.w.PublishSTS("sts.example", "20240101", policy); err != nil {
		t.Fatal(err)
	}
	return tw, sink, ip
}

// The default MTA-STS client finds the policy host through Config.Resolver,
// as every other look-up is made, not through the system's resolver, and
// connects from the configured source address. The policy host's name
// exists only in the test world's DNS.
func TestDefaultMTASTSClientUsesTheResolver(t *testing.T) {
	tw := newTestWorld(t, "insecure:sts.example.")
	if err := tw.w.DNS.Add("mta-sts.sts.example. 300 IN A 127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if conn, err := ln.Accept(); err == nil {
			accepted <- conn
		}
		close(accepted)
	}()
	c := tw.client(func(cfg *Config) {
		cfg.Dial = nil // the default dialer; this test dials loopback only
		cfg.SourceIPv4 = netip.MustParseAddr("127.0.0.1")
	})
	if c.sts.DialContext == nil {
		t.Fatal("the default MTA-STS client has no dialer of its own: the system's resolver finds policy hosts")
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	conn, err := c.sts.DialContext(t.Context(), "tcp", "mta-sts.sts.example:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if peer := <-accepted; peer == nil {
		t.Fatal("nothing accepted")
	} else {
		peer.Close()
	}
	if la := conn.LocalAddr().(*net.TCPAddr); !la.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("connection left from %v, want 127.0.0.1", la)
	}
	if tw.w.DNS.Queries("mta-sts.sts.example.", dns.TypeA) == 0 {
		t.Error("the policy host was not looked up through the configured resolver")
	}
	if _, err := c.sts.DialContext(t.Context(), "tcp", "mta-sts.nowhere.sts.example:"+port); !errors.Is(err, dane.ErrNXDomain) {
		t.Errorf("dialing a policy host the resolver does not know: %v, want NXDOMAIN", err)
	}
}

// wantCheckErr checks that a session carries the *sts.Error of its failed
// certificate check, with the RFC 8460 result type rt.
func wantCheckErr(t *testing.T, s Session, rt tlsrpt.ResultType) {
	t.Helper()
	var se *sts.Error
	if !errors.As(s.CheckErr, &se) || se.ResultType() != string(rt) {
		t.Errorf("CheckErr = %v, want an *sts.Error of type %s", s.CheckErr, rt)
	}
}
