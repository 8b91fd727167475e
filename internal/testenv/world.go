package testenv

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"sync"
)

// World is a small internet on loopback: a DNS server, a CA, an HTTPS
// server for MTA-STS policies, MX hosts on their own 127.0.0.N addresses
// and a dialer that routes the library's connections to them. Tests and the
// demo build their scenarios on it; each piece stays reachable for knobs
// the helpers below do not cover.
type World struct {
	DNS      *DNSServer
	CA       *CA
	Policies *PolicyServer
	Dialer   *Dialer

	mu       sync.Mutex
	nextIP   int
	closers  []func()
	policyIP map[string]string // domain -> the policy host's address
}

// NewWorld starts an empty world: no zones, no hosts.
func NewWorld() (*World, error) {
	w := &World{Dialer: NewDialer(), nextIP: 2}
	var err error
	if w.CA, err = NewCA("sealpost test root"); err != nil {
		return nil, err
	}
	if w.DNS, err = StartDNS(); err != nil {
		return nil, err
	}
	w.closers = append(w.closers, w.DNS.Close)
	if w.Policies, err = StartPolicyServer(w.CA); err != nil {
		w.Close()
		return nil, err
	}
	w.closers = append(w.closers, w.Policies.Close)
	return w, nil
}

// Close stops every server of the world.
func (w *World) Close() {
	w.mu.Lock()
	closers := w.closers
	w.closers = nil
	w.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
}

// NextIP returns a loopback address no host of this world uses yet.
func (w *World) NextIP() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.nextIP
	w.nextIP++
	return fmt.Sprintf("127.0.%d.%d", n/254, n%254+1)
}

// MX starts an SMTP sink for host, gives the host a fresh loopback address
// of its own, publishes it as the host's A record (its zone must exist)
// and routes port 25 of that address to the sink. The sink itself listens
// on 127.0.0.1, the one loopback address every system has (macOS, unlike
// Linux, does not answer on the rest of 127.0.0.0/8); the library dials the
// published address, so hosts are still told apart by IP. opts.Addr is
// ignored; opts.Hostname defaults to host.
func (w *World) MX(host string, opts SMTPOptions) (*SMTPServer, string, error) {
	ip := w.NextIP()
	opts.Addr = "127.0.0.1:0"
	if opts.Hostname == "" {
		opts.Hostname = strings.TrimSuffix(host, ".")
	}
	s, err := StartSMTP(opts)
	if err != nil {
		return nil, "", err
	}
	w.mu.Lock()
	w.closers = append(w.closers, s.Close)
	w.mu.Unlock()
	if err := w.DNS.Add(fmt.Sprintf("%s 300 IN A %s", fqdn(host), ip)); err != nil {
		return nil, "", err
	}
	w.Dialer.Route(net.JoinHostPort(ip, "25"), s.Addr())
	return s, ip, nil
}

// Attack puts an on-path attacker in front of the MX host at ip: every
// connection to ip:25 now goes through it.
func (w *World) Attack(ip string, opts AttackerOptions) (*Attacker, error) {
	target := net.JoinHostPort(ip, "25")
	to, ok := w.Dialer.Target(target)
	if !ok {
		return nil, fmt.Errorf("testenv: no host at %s to attack", target)
	}
	opts.Target = to
	a, err := StartAttacker(opts)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.closers = append(w.closers, a.Close)
	w.mu.Unlock()
	w.Dialer.Route(target, a.Addr())
	return a, nil
}

// PublishSTS publishes an MTA-STS policy for domain: the _mta-sts TXT
// record with the given id (the domain's zone must exist), the policy text
// on the HTTPS server with a valid certificate for mta-sts.<domain>, and
// the route to it. Change the response with w.Policies.Set afterwards.
func (w *World) PublishSTS(domain, id, policy string) error {
	domain = normalizeName(domain)
	if err := w.DNS.Add(fmt.Sprintf(`_mta-sts.%s. 300 IN TXT "v=STSv1; id=%s"`, domain, id)); err != nil {
		return err
	}
	w.Policies.Set(domain, PolicyResponse{Body: policy})
	// The policy host gets an address of its own in the DNS, as an MX
	// host does: the library must find it through its resolver, and the
	// Dialer is given addresses only.
	ip := w.PolicyAddr(domain)
	if ip == "" {
		ip = w.NextIP()
		if err := w.DNS.Add(fmt.Sprintf("mta-sts.%s. 300 IN A %s", domain, ip)); err != nil {
			return err
		}
		w.mu.Lock()
		if w.policyIP == nil {
			w.policyIP = make(map[string]string)
		}
		w.policyIP[domain] = ip
		w.mu.Unlock()
	}
	w.Dialer.Route(net.JoinHostPort(ip, "443"), w.Policies.Addr())
	return nil
}

// PolicyAddr returns the address PublishSTS gave domain's policy host
// ("mta-sts.<domain>"), to dial port 443 of, or "" before PublishSTS.
func (w *World) PolicyAddr(domain string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.policyIP[normalizeName(domain)]
}

// PublishTLSA publishes a "3 1 1" TLSA record for host (whose zone must
// exist) that pins cert's public key.
func (w *World) PublishTLSA(host string, cert tls.Certificate) error {
	sum := sha256.Sum256(cert.Leaf.RawSubjectPublicKeyInfo)
	return w.DNS.Add(fmt.Sprintf("_25._tcp.%s 300 IN TLSA 3 1 1 %s", fqdn(host), hex.EncodeToString(sum[:])))
}
