package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/crypto/bcrypt"
)

// Exit statuses (sysexits.h where one fits).
const (
	exitOK     = 0
	exitFailed = 1  // the relay stopped on an error
	exitUsage  = 64 // EX_USAGE: bad flags
	exitConfig = 78 // EX_CONFIG: the configuration cannot work
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}

// run is the whole program: it runs the relay until ctx is done and
// returns the exit status.
func run(ctx context.Context, args []string, env *Env) int {
	stderr := orDiscard(env.Stderr)
	cfg, hashCost, err := parseArgs(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "relay: %v\n", err)
		return exitUsage
	}
	if hashCost > 0 {
		return hashPassword(env.Stdin, orDiscard(env.Stdout), stderr, hashCost)
	}
	r, err := New(ctx, cfg, env)
	if err != nil {
		fmt.Fprintf(stderr, "relay: %v\n", err)
		return exitConfig
	}
	if err := r.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "relay: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// parseArgs reads -config, then lets the other flags override its fields.
// With -hash-password it returns the bcrypt cost to hash with instead.
func parseArgs(args []string, stderr io.Writer) (Config, int, error) {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "JSON configuration `file` (see the package documentation)")
	hash := fs.Bool("hash-password", false, "read a password from standard input, print its bcrypt hash for \"users\", exit")
	cost := fs.Int("hash-cost", bcrypt.DefaultCost, "bcrypt `cost` for -hash-password (4 to 31)")
	var flagCfg Config
	fs.StringVar(&flagCfg.Listen, "listen", "", "submission `address` (default "+defaultListen+")")
	fs.StringVar(&flagCfg.Hostname, "hostname", "", "this relay's fully qualified `name` (default the machine's)")
	fs.StringVar(&flagCfg.Store, "store", "", "queue, MTA-STS cache and TLS-RPT store `file` (default "+defaultStore+")")
	fs.StringVar(&flagCfg.TLSCert, "tls-cert", "", "STARTTLS certificate chain PEM `file`")
	fs.StringVar(&flagCfg.TLSKey, "tls-key", "", "STARTTLS private key PEM `file`")
	fs.StringVar(&flagCfg.PolicyFile, "policy-file", "", "local policy `file` (JSON; see the package documentation)")
	fs.StringVar(&flagCfg.Resolver, "resolver", "", "DNS resolver: `ip[:port]` or a resolv.conf file (default /etc/resolv.conf)")
	fs.StringVar(&flagCfg.LogLevel, "log-level", "", "debug, info, warn or error (default info)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: relay [-config file] [flags]\n"+
			"       relay -hash-password < password\n\n"+
			"Accepts mail on a submission port, queues it in one file and delivers it to the\n"+
			"recipients' MX hosts over the TLS their DANE and MTA-STS policies demand.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, 0, err
	}
	if fs.NArg() > 0 {
		return Config{}, 0, fmt.Errorf("unexpected argument %q: the relay takes flags only", fs.Arg(0))
	}
	if *hash {
		if *cost < bcrypt.MinCost || *cost > bcrypt.MaxCost {
			return Config{}, 0, fmt.Errorf("-hash-cost %d: want %d to %d", *cost, bcrypt.MinCost, bcrypt.MaxCost)
		}
		return Config{}, *cost, nil
	}
	var cfg Config
	if *configPath != "" {
		var err error
		if cfg, err = loadConfig(*configPath); err != nil {
			return Config{}, 0, err
		}
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.Listen, flagCfg.Listen)
	set(&cfg.Hostname, flagCfg.Hostname)
	set(&cfg.Store, flagCfg.Store)
	set(&cfg.TLSCert, flagCfg.TLSCert)
	set(&cfg.TLSKey, flagCfg.TLSKey)
	set(&cfg.Resolver, flagCfg.Resolver)
	set(&cfg.PolicyFile, flagCfg.PolicyFile)
	set(&cfg.LogLevel, flagCfg.LogLevel)
	return cfg, 0, nil
}

// hashPassword reads one line from stdin and prints its bcrypt hash.
func hashPassword(in io.Reader, stdout, stderr io.Writer, cost int) int {
	if in == nil {
		in = strings.NewReader("")
	}
	line, err := bufio.NewReader(io.LimitReader(in, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintf(stderr, "relay: reading the password: %v\n", err)
		return exitFailed
	}
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		fmt.Fprintln(stderr, "relay: empty password")
		return exitUsage
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		// bcrypt refuses passwords over 72 bytes rather than cut them.
		fmt.Fprintf(stderr, "relay: %v\n", err)
		return exitUsage
	}
	fmt.Fprintln(stdout, string(h))
	return exitOK
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
