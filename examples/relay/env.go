package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/hostdial"
)

// Env is everything the relay takes from the machine it runs on. main
// fills it with the real machine; tests with the loopback world of
// internal/testenv.
type Env struct {
	// Resolver answers every DNS question. Nil means the one the
	// configuration's "resolver" names, or /etc/resolv.conf; a configured
	// resolver wins over it.
	Resolver *dane.Resolver
	// Dial connects to MX hosts ("ip:25"), MTA-STS policy hosts and
	// TLS-RPT https: destinations ("ip:443"): every name is looked up
	// through Resolver first. Nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// RootCAs are the WebPKI roots. Nil means the system's.
	RootCAs *x509.CertPool
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Listen opens the submission listener. Nil means net.Listen.
	Listen func(network, addr string) (net.Listener, error)
	// FQDN returns the machine's fully qualified name, the default
	// Hostname. Nil means os.Hostname, when the name has a dot.
	FQDN func() (string, error)
	// Stdin is read by -hash-password; Stdout receives its hash. Stderr
	// receives the log. Nil means none (the log is then discarded).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Env) listen(network, addr string) (net.Listener, error) {
	if e.Listen != nil {
		return e.Listen(network, addr)
	}
	return net.Listen(network, addr)
}

func (e *Env) fqdn() (string, error) {
	if e.FQDN != nil {
		return e.FQDN()
	}
	name, err := os.Hostname()
	if err != nil {
		return "", err
	}
	if !strings.Contains(name, ".") {
		return "", fmt.Errorf("the host name %q is not fully qualified", name)
	}
	return name, nil
}

// logger returns the relay's logger at the configured level.
func (e *Env) logger(level string) (*slog.Logger, error) {
	var l slog.Level
	if level != "" {
		if err := l.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("log_level %q: want debug, info, warn or error", level)
		}
	}
	return slog.New(slog.NewTextHandler(orDiscard(e.Stderr), &slog.HandlerOptions{Level: l})), nil
}

// resolver builds the resolver the configuration names, or takes env's.
func (e *Env) resolver(spec string) (*dane.Resolver, error) {
	switch {
	case spec == "":
		if e.Resolver != nil {
			return e.Resolver, nil
		}
		return &dane.Resolver{Now: e.Now}, nil
	case isServerAddr(spec):
		// Only a loopback resolver's AD bit is believed (dane.TrustLoopback);
		// a remote one is trusted through "options trust-ad" in a file.
		return &dane.Resolver{Servers: []dane.Server{{Addr: spec}}, Now: e.Now}, nil
	}
	if _, err := os.Stat(spec); err != nil {
		return nil, fmt.Errorf("resolver %q: neither an IP address with an optional port nor a readable resolv.conf file (%v)", spec, err)
	}
	return &dane.Resolver{ResolvConf: spec, Now: e.Now}, nil
}

func isServerAddr(s string) bool {
	if _, err := netip.ParseAddrPort(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// httpClient is the client for TLS-RPT https: destinations: nil (the
// tlsrpt default, which looks report hosts up through the Reporter's
// resolver) unless the env changes how to dial or what to trust. Its
// report hosts are looked up through res, so that Dial is only given
// addresses.
func (e *Env) httpClient(res *dane.Resolver) *http.Client {
	if e.Dial == nil && e.RootCAs == nil {
		return nil
	}
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&hostdial.Dialer{Resolver: res, Dial: e.Dial}).DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: e.RootCAs, Time: e.Now},
		TLSHandshakeTimeout: 30 * time.Second,
	}}
}
