package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/dnsname"
)

// Env is everything send takes from the machine it runs on: how it reaches
// the network, the clock, its standard streams and its own name. main
// fills it with the real machine; tests with the loopback world of
// internal/testenv.
type Env struct {
	// Resolver answers every DNS question. Nil means the one -resolver
	// names, or one reading /etc/resolv.conf. -resolver wins over it.
	Resolver *dane.Resolver
	// Dial connects to "ip:25" and to MTA-STS policy hosts
	// ("mta-sts.example.com:443"). Nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// RootCAs are the WebPKI roots (MTA-STS, require_authenticated). Nil
	// means the system's roots.
	RootCAs *x509.CertPool
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// FQDN returns this machine's fully qualified domain name, the default
	// -ehlo. Nil means systemFQDN("/etc/hosts").
	FQDN func() (string, error)
	// Stdin is where the message is read from without -message. Nil means
	// an empty reader.
	Stdin io.Reader
	// Stdout receives the results; Stderr warnings, errors, the trace and
	// the log. Nil discards.
	Stdout, Stderr io.Writer
}

func (e *Env) stdout() io.Writer { return orDiscard(e.Stdout) }
func (e *Env) stderr() io.Writer { return orDiscard(e.Stderr) }

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func (e *Env) fqdn() (string, error) {
	if e.FQDN != nil {
		return e.FQDN()
	}
	return systemFQDN("/etc/hosts")
}

// systemFQDN returns the machine's fully qualified name: the host name when
// it has a dot, or else the first name with a dot that the hosts file
// lists beside it (where "hostname -f" usually finds it). It does not ask
// DNS: the name a sender gives in EHLO should be one its operator chose.
func systemFQDN(hostsPath string) (string, error) {
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("cannot read the host name: %w", err)
	}
	host = dnsname.Fold(host)
	if isFQDN(host) {
		return host, nil
	}
	if f, err := os.Open(hostsPath); err == nil {
		defer f.Close()
		if name := fqdnFromHosts(io.LimitReader(f, 1<<20), host); name != "" {
			return name, nil
		}
	}
	return "", fmt.Errorf("this machine's name %q is not fully qualified and %s gives no such name for it", host, hostsPath)
}

// fqdnFromHosts finds, on the hosts(5) lines that list host, the first
// name with a dot.
func fqdnFromHosts(r io.Reader, host string) string {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(strings.ToLower(line))
		if len(f) < 2 {
			continue
		}
		names := f[1:]
		listed := false
		for _, n := range names {
			if n == host || strings.HasPrefix(n, host+".") {
				listed = true
			}
		}
		if !listed {
			continue
		}
		for _, n := range names {
			if n = strings.TrimSuffix(n, "."); isFQDN(n) {
				return n
			}
		}
	}
	return ""
}

// isFQDN reports whether name looks like a fully qualified public name:
// a dot, and not one of the names that only mean "this machine".
func isFQDN(name string) bool {
	if c, err := ehloDomain(name); err != nil || c != name || !strings.Contains(name, ".") {
		return false
	}
	for _, local := range []string{"localhost", ".localdomain", ".local", ".localhost", ".internal"} {
		if name == strings.TrimPrefix(local, ".") || strings.HasSuffix(name, local) {
			return false
		}
	}
	return true
}

// dialStats watches the connections to MX hosts, so that send can tell a
// network that blocks port 25 from hosts that are down.
type dialStats struct {
	next func(ctx context.Context, network, addr string) (net.Conn, error)

	mu                              sync.Mutex
	attempts, ok, timeouts, refused int
}

func newDialStats(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *dialStats {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	return &dialStats{next: dial}
}

func (s *dialStats) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := s.next(ctx, network, addr)
	if _, port, _ := net.SplitHostPort(addr); port != "25" {
		return c, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts++
	var ne net.Error
	switch {
	case err == nil:
		s.ok++
	case errors.Is(err, syscall.ECONNREFUSED):
		s.refused++
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		s.timeouts++
	}
	return c, err
}

// diagnosis says what the connections to MX hosts have in common when
// none succeeded: the plain cause behind a table of deferrals.
func (s *dialStats) diagnosis() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.attempts == 0 || s.ok > 0:
		return ""
	case s.timeouts == s.attempts:
		return fmt.Sprintf("port 25 unreachable: all %d connection attempts to MX hosts timed out. "+
			"Many home, office and cloud networks block outgoing port 25; run send from a host "+
			"that may send mail, or hand the message to a relay.", s.attempts)
	case s.refused == s.attempts:
		return fmt.Sprintf("every MX host refused the connection (%d attempts): the servers are down "+
			"or something on this network rejects port 25.", s.attempts)
	}
	return ""
}
