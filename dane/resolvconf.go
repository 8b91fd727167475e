package dane

import (
	"bufio"
	"fmt"
	"io"
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

func parseResolvConf(r io.Reader) ([]Server, error) {
	var servers []Server
	trustAD := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				// A zone index ("fe80::1%eth0") is kept; netip parses it.
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
