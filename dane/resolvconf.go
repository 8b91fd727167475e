package dane

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
)

// readResolvConf reads the nameservers of a resolv.conf(5) file. Like glibc
// it honours "options trust-ad", which says the path to every listed
// resolver is protected, so their AD bit may be believed.
func readResolvConf(path string) ([]Server, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dane: reading resolvers: %w", err)
	}
	defer f.Close()
	servers, err := parseResolvConf(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("dane: %s: %w", path, err)
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("dane: %s names no nameserver", path)
	}
	return servers, nil
}

// maxNameservers is glibc's MAXNS, which Go's own resolver keeps too: the
// nameservers after the third are not used by the machine, so not here.
const maxNameservers = 3

// parseResolvConf reads resolv.conf(5) as glibc and Go's net package do:
// fields are separated by spaces and tabs only (a no-break space is part
// of a field, so "nameserver\u00a0..." is no nameserver line), lines whose
// first field starts with "#" or ";" are comments, unknown keywords are
// ignored, the first three nameservers are used and "options trust-ad"
// applies to all of them wherever it stands. Unlike the system, a
// nameserver that is not an IP address is an error naming its line, not
// silently left out: the operator meant a server there; and an address
// may carry a port ("127.0.0.1:5353", "[::1]:5353"), for a local
// validating resolver that does not listen on 53.
func parseResolvConf(r io.Reader) ([]Server, error) {
	var servers []Server
	trustAD := false
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		f := strings.FieldsFunc(sc.Text(), func(c rune) bool { return c == ' ' || c == '\t' || c == '\r' })
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) < 2 {
				continue // glibc and Go ignore it too
			}
			// A zone index ("fe80::1%eth0") is kept; netip parses it.
			if !isServerAddr(f[1]) {
				return nil, fmt.Errorf("line %d: nameserver %q is not an IP address", line, f[1])
			}
			if len(servers) < maxNameservers {
				servers = append(servers, Server{Addr: f[1]})
			}
		case "options":
			for _, o := range f[1:] {
				if o == "trust-ad" {
					trustAD = true
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if trustAD {
		for i := range servers {
			servers[i].Trust = TrustAlways
		}
	}
	return servers, nil
}

// isServerAddr reports whether s is an IP address, with an optional port.
func isServerAddr(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	_, err := netip.ParseAddrPort(s)
	return err == nil
}
