package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/internal/dnsname"
	"github.com/sealpost/sealpost/internal/policyfile"
)

// Exit statuses (sysexits.h where one fits).
const (
	exitOK       = 0
	exitFailed   = 1  // some recipient failed permanently
	exitUsage    = 64 // EX_USAGE: bad flags, arguments or message
	exitTempFail = 75 // EX_TEMPFAIL: some recipient deferred
	exitConfig   = 78 // EX_CONFIG: policy file, EHLO name, resolver
)

// maxMessageSize bounds the message read into memory.
const maxMessageSize = 64 << 20

// healthTimeout bounds the start-up check of the resolvers.
const healthTimeout = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}

// options are the parsed flags.
type options struct {
	from, message, ehlo, resolver, policy string
	dnssecProbe                           string
	trustAD, requireDANE, requireTLS      bool
	explain, trace, verbose               bool
	connectTimeout                        time.Duration
	recipients                            []string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.from, "from", "", "envelope sender `address` (MAIL FROM); \"<>\" is the null sender")
	fs.StringVar(&o.message, "message", "", "`file` holding the message; default standard input")
	fs.StringVar(&o.ehlo, "ehlo", "", "`name` to send in EHLO (default this machine's fully qualified name)")
	fs.StringVar(&o.resolver, "resolver", "", "DNS resolver: `ip[:port]` or a resolv.conf file (default /etc/resolv.conf)")
	fs.BoolVar(&o.trustAD, "trust-ad", false, "believe the DNSSEC AD bit of a -resolver not on loopback")
	fs.BoolVar(&o.requireDANE, "require-dane-resolver", false, "refuse to run without a validating resolver")
	fs.StringVar(&o.dnssecProbe, "dnssec-probe", "", "DNSSEC-signed `name` the resolver health check asks for (default the root zone)")
	fs.BoolVar(&o.requireTLS, "requiretls", false, "ask for REQUIRETLS (RFC 8689)")
	fs.StringVar(&o.policy, "policy", "", "local policy `file` (JSON; see the package documentation)")
	fs.BoolVar(&o.explain, "explain", false, "print each recipient domain's route decision; send nothing")
	fs.BoolVar(&o.trace, "trace", false, "print the SMTP dialogues to standard error")
	fs.BoolVar(&o.verbose, "v", false, "log the library's decisions to standard error (warnings are always logged)")
	fs.DurationVar(&o.connectTimeout, "connect-timeout", 30*time.Second, "bound on one TCP connection to an MX host")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: send -from address [-message file] [flags] recipient...\n"+
			"       send -explain [flags] domain-or-recipient...\n\n"+
			"Delivers a message straight to the recipients' MX hosts over the TLS each one's\n"+
			"DANE, MTA-STS and local policy demand. Exit status: 0 delivered, 75 deferred,\n"+
			"1 failed, 64 usage, 78 configuration.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o.recipients = fs.Args()
	for _, r := range o.recipients {
		if strings.HasPrefix(r, "-") {
			return nil, fmt.Errorf("%s after the recipients: flags come first", r)
		}
	}
	switch {
	case len(o.recipients) == 0:
		fs.Usage()
		return nil, errors.New("no recipients")
	case o.connectTimeout <= 0:
		return nil, fmt.Errorf("-connect-timeout %v: want a positive duration", o.connectTimeout)
	}
	return &o, nil
}

// run is the whole program: it returns the exit status.
func run(ctx context.Context, args []string, env *Env) int {
	stderr := env.stderr()
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "send: %v\n", err)
		return exitUsage
	}
	cfg := delivery.Config{
		Dial:     env.Dial,
		RootCAs:  env.RootCAs,
		Now:      env.Now,
		Timeouts: delivery.Timeouts{Connect: o.connectTimeout},
	}
	// Warnings always: an override in use is logged at that level, and
	// its user should see it every time. -v adds the decisions.
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if o.policy != "" {
		if cfg.Policy, err = policyfile.Read(o.policy); err != nil {
			fmt.Fprintf(stderr, "send: -policy: %v\n", err)
			return exitConfig
		}
	}
	if cfg.Resolver, err = resolverFor(o, env); err != nil {
		fmt.Fprintf(stderr, "send: %v\n", err)
		return exitUsage
	}
	if code, ok := checkResolver(ctx, cfg.Resolver, o.dnssecProbe, o.requireDANE, stderr); !ok {
		return code
	}
	if o.explain {
		return explain(ctx, cfg, o, env)
	}
	return send(ctx, cfg, o, env)
}

// resolverFor builds the resolver -resolver names, or takes env's.
func resolverFor(o *options, env *Env) (*dane.Resolver, error) {
	trust := dane.TrustLoopback
	if o.trustAD {
		trust = dane.TrustAlways
	}
	switch {
	case o.resolver == "":
		if env.Resolver != nil {
			return env.Resolver, nil
		}
		return &dane.Resolver{Now: env.Now}, nil
	case isServerAddr(o.resolver):
		return &dane.Resolver{Servers: []dane.Server{{Addr: o.resolver, Trust: trust}}, Now: env.Now}, nil
	}
	if _, err := os.Stat(o.resolver); err != nil {
		return nil, fmt.Errorf("-resolver %q: neither an IP address with an optional port nor a readable resolv.conf file (%v)", o.resolver, err)
	}
	if o.trustAD {
		return nil, errors.New(`-trust-ad with a resolv.conf file: put "options trust-ad" in the file instead`)
	}
	return &dane.Resolver{ResolvConf: o.resolver, Now: env.Now}, nil
}

// isServerAddr reports whether s is an IP address with or without a port.
func isServerAddr(s string) bool {
	if _, err := netip.ParseAddrPort(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// checkResolver runs the resolver health check on probe and says plainly
// what it costs. It returns false, with the exit status, when send must
// stop: no resolver answers at all, or -require-dane-resolver is set and
// no validating resolver could be shown. A resolver that answers but not
// the probe (split horizon: it serves the mail domains, not the root) is a
// warning, since -explain and delivery may still work.
func checkResolver(ctx context.Context, r *dane.Resolver, probe string, requireDANE bool, stderr io.Writer) (int, bool) {
	hctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	hr, err := r.CheckHealth(hctx, probe)
	if err != nil {
		fmt.Fprintf(stderr, "send: resolver configuration: %v\n", err)
		return exitConfig, false
	}
	writeHealth(stderr, hr)
	if !anyReached(hr) {
		fmt.Fprintln(stderr, "send: no DNS resolver answers: no domain can be routed; check -resolver")
		return exitTempFail, false
	}
	if hr.DANEUsable() {
		return exitOK, true
	}
	if requireDANE {
		fmt.Fprintln(stderr, "send: no validating resolver configured: DANE cannot be used; refusing to run (-require-dane-resolver)")
		return exitConfig, false
	}
	if !anyAnswers(hr) {
		fmt.Fprintf(stderr, "send: warning: no resolver answered the DNSSEC probe %s: whether DANE can be used is unknown; "+
			"give -dnssec-probe a signed name the resolver serves\n", hr.Probe)
		return exitOK, true
	}
	fmt.Fprintln(stderr, "send: warning: no validating resolver configured: DANE cannot be used; "+
		"domains that publish TLSA records get MTA-STS or opportunistic TLS instead")
	return exitOK, true
}

// explain prints each recipient domain's route decision, for a message
// with REQUIRETLS under -requiretls.
func explain(ctx context.Context, cfg delivery.Config, o *options, env *Env) int {
	c, err := delivery.NewClient(cfg)
	if err != nil {
		fmt.Fprintf(env.stderr(), "send: %v\n", err)
		return exitConfig
	}
	defer c.Close()
	seen := make(map[string]bool)
	for _, arg := range o.recipients {
		domain := arg
		if at := strings.LastIndexByte(arg, '@'); at >= 0 {
			domain = arg[at+1:]
		}
		if d, err := dnsname.Canonical(domain); err == nil {
			domain = d // one explanation for a domain however it is written
		}
		if seen[domain] {
			continue
		}
		seen[domain] = true
		var msg *delivery.Message
		if o.requireTLS {
			msg = &delivery.Message{RequireTLS: true}
		}
		ex, err := c.ExplainMessage(ctx, domain, msg)
		if err != nil {
			fmt.Fprintf(env.stderr(), "send: %v\n", err)
			return exitTempFail
		}
		writeExplanation(env.stdout(), ex, o.requireTLS)
	}
	return exitOK
}

// send delivers the message and prints the results.
func send(ctx context.Context, cfg delivery.Config, o *options, env *Env) int {
	stderr := env.stderr()
	msg, err := buildMessage(o, env)
	if err != nil {
		fmt.Fprintf(stderr, "send: %v\n", err)
		return exitUsage
	}
	if cfg.Hostname, err = ehloName(o, env); err != nil {
		fmt.Fprintf(stderr, "send: %v\n", err)
		return exitConfig
	}
	stats := newDialStats(env.Dial)
	cfg.Dial = stats.dial
	if o.trace {
		cfg.Trace = tracer(stderr)
	}
	c, err := delivery.NewClient(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "send: %v\n", err)
		return exitConfig
	}
	defer c.Close()
	results, err := c.Deliver(ctx, msg)
	if err != nil {
		fmt.Fprintf(stderr, "send: %v\n", err)
		return exitUsage
	}
	if err := writeResults(env.stdout(), results); err != nil {
		fmt.Fprintf(stderr, "send: writing the results: %v\n", err)
	}
	if d := stats.diagnosis(); d != "" {
		fmt.Fprintf(stderr, "send: %s\n", d)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "send: interrupted")
	}
	return exitStatus(results)
}

// ehloName is -ehlo, or the machine's fully qualified name.
func ehloName(o *options, env *Env) (string, error) {
	if o.ehlo != "" {
		if isAddressLiteral(o.ehlo) {
			return o.ehlo, nil
		}
		name, err := ehloDomain(o.ehlo)
		if err != nil {
			return "", fmt.Errorf("-ehlo %q: want a fully qualified domain name or an address literal: %v", o.ehlo, err)
		}
		return name, nil
	}
	name, err := env.fqdn()
	if err != nil {
		return "", fmt.Errorf("no EHLO name: %v; give one with -ehlo, ideally the name the sending address's PTR record points to", err)
	}
	return name, nil
}

// ehloDomain reads an EHLO name by dnsname's rule, then refuses the
// underscore that rule tolerates for look-ups: RFC 5321 §4.1.2's Domain
// has letters, digits and hyphens only, and receivers check it.
func ehloDomain(s string) (string, error) {
	name, err := dnsname.Canonical(s)
	if err == nil && strings.Contains(name, "_") {
		err = errors.New("an underscore is not allowed in a host name")
	}
	return name, err
}

// isAddressLiteral accepts "[192.0.2.1]" and "[IPv6:2001:db8::1]"
// (RFC 5321 §4.1.3).
func isAddressLiteral(s string) bool {
	inner, ok := strings.CutPrefix(s, "[")
	if inner, ok = strings.CutSuffix(inner, "]"); !ok {
		return false
	}
	if v6, isV6 := strings.CutPrefix(strings.ToLower(inner), "ipv6:"); isV6 {
		a, err := netip.ParseAddr(v6)
		return err == nil && a.Is6()
	}
	a, err := netip.ParseAddr(inner)
	return err == nil && a.Is4()
}

// tracer writes the SMTP dialogue to w, one line at a time.
func tracer(w io.Writer) func(delivery.TraceLine) {
	var mu sync.Mutex
	return func(t delivery.TraceLine) {
		dir := "<"
		if t.Sent {
			dir = ">"
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "%s[%s] %s %s\n", t.Host, t.IP, dir, clean(t.Line, 1000))
	}
}
