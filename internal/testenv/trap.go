package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// resolverTrap counts and remembers the look-ups that reached the system
// resolver while it was trapped.
type resolverTrap struct {
	mu     sync.Mutex
	caught []string
	total  int
}

const maxCaught = 50

// systemTrap is the trap Main installs; the trap's own test empties it.
var systemTrap = &resolverTrap{}

// take returns and forgets what the trap caught.
func (t *resolverTrap) take() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	caught := t.caught
	t.caught, t.total = nil, 0
	return caught
}

// TrappedLookups returns the questions that reached the system resolver
// so far in this test binary (the first 50), without forgetting them, so
// that a test can check that what it ran asked none: Main fails the whole
// binary for them at the end, TrappedLookups names the test that asked.
func TrappedLookups() []string {
	systemTrap.mu.Lock()
	defer systemTrap.mu.Unlock()
	return append([]string(nil), systemTrap.caught...)
}

// Main runs a test binary's tests with the system resolver trapped, and
// fails the binary loudly if anything asked it: call it from TestMain in
// every package whose tests touch the network. Every look-up through Go's
// net.DefaultResolver (net.Dialer with a host name, net.LookupHost,
// http.Transport's default dialer, ...) fails without an answer, and
// the questions asked are printed after the tests. Run a failing package
// with -v to see which test asked. Names the hosts file
// answers (localhost) never reach the trap: they stay on the machine.
func Main(m *testing.M) {
	trap := systemTrap
	saved := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: trap.dial}
	code := m.Run()
	net.DefaultResolver = saved
	if n := trap.report(os.Stderr); n > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d look-ups reached the system resolver (testenv.Main's trap)\n", n)
		code = 1
	}
	os.Exit(code)
}

// dial is the trapped resolver's connection to its DNS server: it
// connects nowhere, records the question written to it and answers
// nothing.
func (t *resolverTrap) dial(ctx context.Context, network, address string) (net.Conn, error) {
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		// Not a PacketConn, so the resolver writes the query as over TCP:
		// a two-byte length, then the message.
		buf := make([]byte, 2+64<<10)
		n, _ := io.ReadAtLeast(server, buf, 2)
		question := "an unreadable query"
		var q dns.Msg
		if n > 2 && q.Unpack(buf[2:n]) == nil && len(q.Question) == 1 {
			question = q.Question[0].Name + " " + dns.TypeToString[q.Question[0].Qtype]
		}
		t.mu.Lock()
		if len(t.caught) < maxCaught {
			t.caught = append(t.caught, question)
		}
		t.total++
		t.mu.Unlock()
	}()
	return client, nil
}

func (t *resolverTrap) report(w io.Writer) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, q := range t.caught {
		fmt.Fprintf(w, "testenv: the system resolver was asked for %s\n", q)
	}
	return t.total
}
