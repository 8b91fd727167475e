package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/testenv"
)

// domainSetup describes a domain built in the loopback world. The zero
// value of every field is the well-configured choice, so that a test case
// names only its misconfiguration.
type domainSetup struct {
	Domain   string                       // default "good.example"
	Zone     testenv.Security             // the domain's zone: Secure by default
	Hosts    []hostSetup                  // default: mx1 and mx2 under the domain
	Policy   string                       // policy text; default enforce covering the hosts
	NoSTS    bool                         // publish neither record nor policy
	TLSRPT   string                       // _smtp._tls record; default a valid one
	NoTLSRPT bool                         // publish no _smtp._tls record
	SPF      string                       // TXT at mta-sts.<domain>; default "v=spf1 -all"
	NoSPF    bool                         // publish no TXT at mta-sts.<domain>
	Extra    []string                     // more records for the domain's zone
	Policies *testenv.PolicyResponse      // overrides the policy server's answer
	After    func(t *testing.T, w *world) // runs once the domain is built
}

// hostSetup describes one MX host.
type hostSetup struct {
	Name       string              // relative to the domain: "mx1"
	Preference uint16              // default 10 * position
	NoSTARTTLS bool                // the sink offers no STARTTLS
	Leaf       testenv.LeafOptions // how its certificate deviates from a valid one
	CertName   string              // name in the certificate; default the host's name
	TLSA       string              // TLSA rdata; default "3 1 1" for its key; "-" for none
	Refuse     bool                // connections to it are refused
	Blackhole  bool                // connections to it hang
	TLS        [2]uint16           // minimum and maximum TLS version of the sink
}

type world struct {
	*testenv.World
	env Env
	ips map[string]string // MX host name -> its loopback address
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w, err := testenv.NewWorld()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	// The root zone answers the resolver health check (dane.CheckHealth
	// asks for the root SOA) and denies names no other zone holds.
	if err := w.DNS.Zone(".", testenv.Secure); err != nil {
		t.Fatal(err)
	}
	return &world{World: w, ips: make(map[string]string), env: Env{
		Resolver: &dane.Resolver{Servers: []dane.Server{{Addr: w.DNS.Addr}}, Timeout: time.Second},
		Dial:     w.Dialer.DialContext,
		RootCAs:  w.CA.Pool(),
		Timeout:  2 * time.Second,
		HeloName: "check.test",
	}}
}

// build publishes the domain described by s.
func (w *world) build(t *testing.T, s domainSetup) {
	t.Helper()
	d := s.Domain
	if d == "" {
		d = "good.example"
	}
	hosts := s.Hosts
	if hosts == nil {
		hosts = []hostSetup{{Name: "mx1"}, {Name: "mx2"}}
	}
	must(t, w.DNS.Zone(d, s.Zone, s.Extra...))
	var names []string
	for i, h := range hosts {
		if h.Preference == 0 {
			h.Preference = uint16(10 * (i + 1))
		}
		names = append(names, w.buildHost(t, d, h))
	}
	if !s.NoSTS {
		w.buildSTS(t, d, s, names)
	}
	if !s.NoTLSRPT {
		rec := s.TLSRPT
		if rec == "" {
			rec = "v=TLSRPTv1; rua=mailto:tlsrpt@" + d
		}
		must(t, w.DNS.Add(fmt.Sprintf(`_smtp._tls.%s. 300 IN TXT "%s"`, d, rec)))
	}
	if s.After != nil {
		s.After(t, w)
	}
}

// buildHost starts the MX host h of domain d and publishes its MX, A and
// TLSA records; it returns the host's name.
func (w *world) buildHost(t *testing.T, d string, h hostSetup) string {
	t.Helper()
	name := h.Name + "." + d
	must(t, w.DNS.Add(fmt.Sprintf("%s. 300 IN MX %d %s.", d, h.Preference, name)))
	certName := h.CertName
	if certName == "" {
		certName = name
	}
	cert := w.CA.MustLeaf(h.Leaf, certName)
	opts := testenv.SMTPOptions{MinTLSVersion: h.TLS[0], MaxTLSVersion: h.TLS[1]}
	if !h.NoSTARTTLS {
		opts.Certificate = &cert
	}
	_, ip, err := w.MX(name, opts)
	must(t, err)
	w.ips[name] = ip
	if h.Refuse {
		w.Dialer.Refuse(ip + ":25")
	}
	if h.Blackhole {
		w.Dialer.Blackhole(ip + ":25")
	}
	switch h.TLSA {
	case "":
		must(t, w.PublishTLSA(name, cert))
	case "-":
	default:
		must(t, w.DNS.Add(fmt.Sprintf("_25._tcp.%s. 300 IN TLSA %s", name, h.TLSA)))
	}
	return name
}

// buildSTS publishes the MTA-STS record and policy of domain d, and the
// SPF record of its policy host.
func (w *world) buildSTS(t *testing.T, d string, s domainSetup, hosts []string) {
	t.Helper()
	policy := s.Policy
	if policy == "" {
		policy = "version: STSv1\nmode: enforce\nmax_age: 604800\n"
		for _, n := range hosts {
			policy += "mx: " + n + "\n"
		}
	}
	must(t, w.PublishSTS(d, "20240101", policy))
	must(t, w.DNS.Add(fmt.Sprintf("mta-sts.%s. 300 IN A 127.0.0.1", d)))
	if s.Policies != nil {
		r := *s.Policies
		if r.Body == "" {
			r.Body = policy
		}
		w.Policies.Set(d, r)
	}
	if !s.NoSPF {
		spf := s.SPF
		if spf == "" {
			spf = "v=spf1 -all"
		}
		must(t, w.DNS.Add(fmt.Sprintf(`mta-sts.%s. 300 IN TXT "%s"`, d, spf)))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (w *world) check(t *testing.T, domain string) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	env := w.env
	return Check(ctx, &env, domain)
}
