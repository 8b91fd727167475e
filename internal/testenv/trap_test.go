package testenv

import (
	"context"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

func TestSystemResolverTrap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := net.DefaultResolver.LookupHost(ctx, "mx.trapped.example"); err == nil {
		t.Error("the trapped resolver answered")
	}
	var d net.Dialer
	if c, err := d.DialContext(ctx, "tcp", "mta-sts.trapped.example:443"); err == nil {
		c.Close()
		t.Error("a net.Dialer reached a host by name")
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://report.trapped.example/", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Error("http.DefaultClient reached a host by name")
	}
	caught := systemTrap.take()
	for _, name := range []string{"mx.trapped.example.", "mta-sts.trapped.example.", "report.trapped.example."} {
		if !slices.ContainsFunc(caught, func(q string) bool { return len(q) > len(name) && q[:len(name)] == name }) {
			t.Errorf("the trap did not catch %s: caught %q", name, caught)
		}
	}
	// The hosts file stays on the machine and is not trapped.
	if _, err := net.DefaultResolver.LookupHost(ctx, "localhost"); err != nil {
		t.Logf("localhost: %v (no hosts file entry on this machine)", err)
	}
	systemTrap.take()
}
