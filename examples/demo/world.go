package main

import (
	"fmt"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/testenv"
)

// world is the demo's small internet on loopback: testenv's DNS server,
// CA, MTA-STS policy server and dialer, with one MX host per scenario and
// one for the sender's own domain.
type world struct {
	*testenv.World
	// sinks are the MX hosts' SMTP servers by domain; attackers the
	// on-path attackers by domain, for the scenarios that have one.
	sinks     map[string]*testenv.SMTPServer
	attackers map[string]*testenv.Attacker
}

// buildWorld starts the world and sets up the sender's domain and every
// scenario. Close it when done.
func buildWorld(scs []scenario) (*world, error) {
	tw, err := testenv.NewWorld()
	if err != nil {
		return nil, fmt.Errorf("starting the loopback world: %w", err)
	}
	w := &world{World: tw, sinks: map[string]*testenv.SMTPServer{},
		attackers: map[string]*testenv.Attacker{}}
	// The sender's own MX host receives the bounces, over DANE. It
	// advertises REQUIRETLS: the bounce of a REQUIRETLS message asks for it
	// too (RFC 8689 §5).
	own := scenario{Domain: sender, Zone: testenv.Secure, TLSA: true, REQUIRETLS: true}
	for _, sc := range append([]scenario{own}, scs...) {
		if err := w.add(sc); err != nil {
			w.Close()
			return nil, fmt.Errorf("setting up %s: %w", sc.Domain, err)
		}
	}
	return w, nil
}

// add publishes one scenario's domain: its zone, MX host, certificate,
// TLSA record, MTA-STS policy, TLS-RPT record and attacker.
func (w *world) add(sc scenario) error {
	d := sc.Domain
	if err := w.DNS.Zone(d+".", sc.Zone); err != nil {
		return err
	}
	if sc.NullMX {
		return w.DNS.Add(d + ". 300 IN MX 0 .")
	}
	host := mxHost(d)
	opts := testenv.SMTPOptions{REQUIRETLS: sc.REQUIRETLS}
	if !sc.NoSTARTTLS {
		cert, err := w.CA.Leaf(sc.Cert, host)
		if err != nil {
			return err
		}
		opts.Certificate = &cert
		if sc.TLSA {
			if err := w.PublishTLSA(host, cert); err != nil {
				return err
			}
		}
	}
	sink, ip, err := w.MX(host, opts)
	if err != nil {
		return err
	}
	w.sinks[d] = sink
	if err := w.DNS.Add(d + ". 300 IN MX 10 " + host + "."); err != nil {
		return err
	}
	if sc.STS != "" {
		policy := fmt.Sprintf("version: STSv1\nmode: %s\nmx: %s\nmax_age: 86400\n", sc.STS, host)
		if err := w.PublishSTS(d, "20250101", policy); err != nil {
			return err
		}
	}
	if sc.TLSRPT {
		if err := w.DNS.Add(fmt.Sprintf(`_smtp._tls.%s. 300 IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@%s"`, d, d)); err != nil {
			return err
		}
	}
	if sc.Attack != 0 {
		// The forged certificate names the MX host but chains to no
		// trusted root: what an interceptor without the host's key has.
		forged, err := w.CA.Leaf(testenv.LeafOptions{SelfSigned: true}, host)
		if err != nil {
			return err
		}
		a, err := w.Attack(ip, testenv.AttackerOptions{Mode: sc.Attack, Certificate: &forged})
		if err != nil {
			return err
		}
		w.attackers[d] = a
	}
	return nil
}

// resolver returns a DNS resolver that asks the world's DNS server, which
// answers as a validating resolver on loopback does (its AD bit is
// trusted).
func (w *world) resolver() *dane.Resolver {
	return &dane.Resolver{
		Servers:  []dane.Server{{Addr: w.DNS.Addr}},
		Timeout:  time.Second,
		Attempts: 2,
	}
}

// mxHost is the name of a domain's MX host.
func mxHost(domain string) string { return "mx." + domain }
