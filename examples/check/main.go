package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/sealpost/sealpost/dane"
)

// Exit statuses.
const (
	exitOK       = 0 // every finding ok
	exitWarnings = 1 // at least one warning, no error
	exitErrors   = 2 // at least one error
	exitUsage    = 3 // the check did not run: bad flags or domain
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := Env{Stderr: os.Stderr}
	if name, err := os.Hostname(); err == nil {
		env.HeloName = name
	}
	code := run(ctx, os.Args[1:], os.Stdout, env)
	stop()
	os.Exit(code)
}

// run is the whole program: it parses args, checks the domain in env's
// world, writes the report to stdout and returns the exit status.
func run(ctx context.Context, args []string, stdout io.Writer, env Env) int {
	stderr := env.Stderr
	if stderr == nil {
		stderr = io.Discard
	}
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	resolver := fs.String("resolver", "", "DNS resolver to ask, `ip[:port]`; its DNSSEC validation is trusted (default: /etc/resolv.conf)")
	fs.DurationVar(&env.Timeout, "timeout", env.timeout(), "bound on each network step: a DNS look-up, the policy fetch, one SMTP conversation")
	asJSON := fs.Bool("json", false, "write the findings as JSON")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: check [flags] domain\n\n"+
			"Checks a domain's inbound mail security set-up (MX, MTA-STS, DANE, TLS-RPT) as\n"+
			"senders see it. Exit status: 0 all ok, 1 warnings, 2 errors, 3 usage.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	domain, err := normalizeDomain(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "check: %v\n", err)
		return exitUsage
	}
	if *resolver != "" {
		if !validServerAddr(*resolver) {
			fmt.Fprintf(stderr, "check: -resolver %q: want an IP address with an optional port\n", *resolver)
			return exitUsage
		}
		// The user named this resolver: believe its AD bit even when it
		// is not on loopback. The check only reports; a lie from the
		// path to it changes what is shown, never what is sent.
		env.Resolver = &dane.Resolver{
			Servers: []dane.Server{{Addr: *resolver, Trust: dane.TrustAlways}},
			Timeout: min(env.timeout(), dnsQueryTimeout),
		}
	}

	rep := Check(ctx, &env, domain)
	if *asJSON {
		err = writeJSON(stdout, rep)
	} else {
		err = writeText(stdout, rep, isTerminal(stdout))
	}
	if err != nil {
		fmt.Fprintf(stderr, "check: writing the report: %v\n", err)
	}
	switch rep.Worst() {
	case Error:
		return exitErrors
	case Warning:
		return exitWarnings
	}
	return exitOK
}

// validServerAddr reports whether s is what dane.Server.Addr accepts: an
// IP address, with or without a port.
func validServerAddr(s string) bool {
	if _, err := netip.ParseAddrPort(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}
