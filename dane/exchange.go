package dane

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// exchange sends one question to the configured resolvers, in order and for
// the configured number of rounds, until one gives a usable answer (NOERROR
// or NXDOMAIN). A bogus verdict from a trusted resolver ends the search: a
// validating resolver has seen the signatures fail, and asking others until
// one is careless enough to answer would hand the attacker his downgrade.
func (r *Resolver) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, resolvedServer, *DNSError) {
	attempts := r.Attempts
	if attempts <= 0 {
		attempts = defaultAttempts
	}
	fail := &DNSError{Name: name, Qtype: qtype, Kind: ErrTemporary}
	for round := 0; round < attempts; round++ {
		for _, srv := range r.servers {
			if err := ctx.Err(); err != nil {
				fail.Err = err
				return nil, srv, fail
			}
			msg, err := r.exchangeOne(ctx, srv, name, qtype, "udp")
			fail.Server = srv.addr
			if err != nil {
				fail.Err = err
				r.logger().Debug("dns query failed", "server", srv.addr, "name", name, "type", dns.TypeToString[qtype], "err", err)
				continue
			}
			switch msg.Rcode {
			case dns.RcodeSuccess, dns.RcodeNameError:
				return msg, srv, nil
			case dns.RcodeServerFailure:
				if code, ok := dnssecFailure(msg); ok && srv.trusted {
					fail.Kind = ErrBogus
					fail.Err = fmt.Errorf("SERVFAIL with extended error %d (%s)", code, dns.ExtendedErrorCodeToString[code])
					return nil, srv, fail
				}
			}
			fail.Err = fmt.Errorf("rcode %s", dns.RcodeToString[msg.Rcode])
			r.logger().Debug("dns query failed", "server", srv.addr, "name", name, "type", dns.TypeToString[qtype], "rcode", dns.RcodeToString[msg.Rcode])
		}
	}
	return nil, resolvedServer{}, fail
}

// exchangeOne asks one resolver once, over network ("udp" or "tcp"); a
// truncated UDP answer is asked again over TCP.
func (r *Resolver) exchangeOne(ctx context.Context, srv resolvedServer, name string, qtype uint16, network string) (*dns.Msg, error) {
	udpSize := r.UDPSize
	if udpSize == 0 {
		udpSize = defaultUDPSize
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = true
	// RFC 6840 §5.7: AD in a query asks the resolver to report validation.
	// RFC 3225: the DO bit makes it include RRSIGs, which the health check
	// looks for.
	q.AuthenticatedData = true
	q.SetEdns0(udpSize, true)

	c := &dns.Client{Net: network, UDPSize: udpSize, Timeout: timeout}
	resp, _, err := c.ExchangeContext(ctx, q, srv.addr)
	if err == nil && resp.Truncated && network == "udp" {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, q, srv.addr)
	}
	if err != nil {
		return nil, err
	}
	if err := checkResponse(q, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

var errMismatch = errors.New("answer does not match the question")

// checkResponse rejects answers to another question: the message ID is
// checked by the dns package, the question section here.
func checkResponse(q, resp *dns.Msg) error {
	if !resp.Response || len(resp.Question) != 1 {
		return errMismatch
	}
	got, want := resp.Question[0], q.Question[0]
	if got.Qtype != want.Qtype || got.Qclass != want.Qclass || !strings.EqualFold(got.Name, want.Name) {
		return fmt.Errorf("%w: asked %s %s, got %s %s", errMismatch, want.Name, dns.TypeToString[want.Qtype], got.Name, dns.TypeToString[got.Qtype])
	}
	if resp.Truncated {
		return errors.New("answer truncated over TCP")
	}
	return nil
}

// dnssecFailure reports whether a SERVFAIL carries an RFC 8914 extended
// error code that says DNSSEC validation failed, which is how a validating
// resolver tells "bogus" apart from "could not reach the servers".
func dnssecFailure(msg *dns.Msg) (uint16, bool) {
	opt := msg.IsEdns0()
	if opt == nil {
		return 0, false
	}
	for _, o := range opt.Option {
		ede, ok := o.(*dns.EDNS0_EDE)
		if !ok {
			continue
		}
		switch ede.InfoCode {
		case dns.ExtendedErrorCodeDNSBogus, dns.ExtendedErrorCodeSignatureExpired,
			dns.ExtendedErrorCodeSignatureNotYetValid, dns.ExtendedErrorCodeDNSKEYMissing,
			dns.ExtendedErrorCodeRRSIGsMissing, dns.ExtendedErrorCodeNoZoneKeyBitSet,
			dns.ExtendedErrorCodeNSECMissing:
			return ede.InfoCode, true
		}
	}
	return 0, false
}
