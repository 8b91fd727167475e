package testenv

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Security says how the DNS server presents a zone, as a validating
// resolver would.
type Security int

const (
	// Secure zones are answered with the AD bit set (and with RRSIG
	// records when the query has the DO bit).
	Secure Security = iota
	// Insecure zones are answered without the AD bit: unsigned, or signed
	// without a chain of trust.
	Insecure
	// Bogus zones fail validation: every question into them is answered
	// SERVFAIL with the RFC 8914 extended error "DNSSEC Bogus".
	Bogus
)

func (s Security) String() string {
	switch s {
	case Secure:
		return "secure"
	case Insecure:
		return "insecure"
	case Bogus:
		return "bogus"
	}
	return fmt.Sprintf("Security(%d)", int(s))
}

// Fault is an injected failure of the DNS server.
type Fault int

const (
	// NoFault answers normally (and removes a fault set before).
	NoFault Fault = iota
	// FaultTimeout never answers.
	FaultTimeout
	// FaultServfail answers SERVFAIL without an extended error, as a
	// resolver that cannot reach the authoritative servers does.
	FaultServfail
	// FaultBogus answers SERVFAIL with the extended error "DNSSEC Bogus".
	FaultBogus
	// FaultRefused answers REFUSED.
	FaultRefused
	// FaultNotImp answers NOTIMP, as some providers' servers do for TLSA.
	FaultNotImp
	// FaultTruncate answers over UDP with an empty truncated message, so
	// the client must retry over TCP (where the answer is normal).
	FaultTruncate
	// FaultJunk answers over UDP with an empty truncated message and over
	// TCP with the first octets of a response, cut inside its header: a
	// broken middlebox or a resolver dying mid-answer.
	FaultJunk
)

func (f Fault) String() string {
	switch f {
	case NoFault:
		return "no fault"
	case FaultTimeout:
		return "timeout"
	case FaultServfail:
		return "SERVFAIL"
	case FaultBogus:
		return "SERVFAIL with EDE DNSSEC Bogus"
	case FaultRefused:
		return "REFUSED"
	case FaultNotImp:
		return "NOTIMP"
	case FaultTruncate:
		return "truncated over UDP"
	case FaultJunk:
		return "truncated junk"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// DNSServer is a DNS server on loopback that answers from zones built in
// code the way a validating recursive resolver would: it follows CNAMEs
// across its zones, sets the AD bit when every zone involved is secure, and
// fails bogus zones with SERVFAIL. It listens on UDP and TCP on the same
// port. It is safe for concurrent use; zones and faults may change while it
// runs.
type DNSServer struct {
	// Addr is the "127.0.0.1:port" the server listens on (UDP and TCP).
	Addr string

	udp, tcp *dns.Server

	mu        sync.RWMutex
	zones     map[string]*zone // by origin
	faults    map[faultKey]Fault
	queries   map[faultKey]int
	noAD      bool
	stripSigs bool
	noTCP     bool
	noChase   bool
}

type zone struct {
	origin   string
	security Security
	records  map[string][]dns.RR // by owner name
}

type faultKey struct {
	name  string
	qtype uint16
}

// StartDNS starts a DNS server on 127.0.0.1 with a random port.
func StartDNS() (*DNSServer, error) {
	pc, ln, err := listenUDPAndTCP()
	if err != nil {
		return nil, err
	}
	s := &DNSServer{
		Addr:    pc.LocalAddr().String(),
		zones:   make(map[string]*zone),
		faults:  make(map[faultKey]Fault),
		queries: make(map[faultKey]int),
	}
	s.udp = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serveUDP)}
	s.tcp = &dns.Server{Listener: ln, Handler: dns.HandlerFunc(s.serveTCP)}
	var started sync.WaitGroup
	started.Add(2)
	s.udp.NotifyStartedFunc = started.Done
	s.tcp.NotifyStartedFunc = started.Done
	go s.udp.ActivateAndServe()
	go s.tcp.ActivateAndServe()
	started.Wait()
	return s, nil
}

// listenUDPAndTCP binds UDP and TCP on the same random loopback port. The
// port the kernel picked for UDP may be taken for TCP, so it tries again
// with another.
func listenUDPAndTCP() (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
	}
	return nil, nil, fmt.Errorf("testenv: no port free for both UDP and TCP: %w", lastErr)
}

// Close stops the server.
func (s *DNSServer) Close() {
	s.udp.Shutdown()
	s.tcp.Shutdown()
}

// Zone creates (or empties and re-creates) the zone at origin with the given
// security, holding the records given in zone-file syntax, e.g.
// "example.com. 300 IN MX 10 mx.example.com.". Names may be relative to
// the origin. A zone's SOA is made up when none is given.
func (s *DNSServer) Zone(origin string, sec Security, records ...string) error {
	origin = fqdn(origin)
	z := &zone{origin: origin, security: sec, records: make(map[string][]dns.RR)}
	for _, text := range records {
		rr, err := parseRR(text, origin)
		if err != nil {
			return err
		}
		z.add(rr)
	}
	if !hasType(z.records[origin], dns.TypeSOA) {
		z.add(madeUpSOA(origin))
	}
	s.mu.Lock()
	s.zones[origin] = z
	s.mu.Unlock()
	return nil
}

// Add adds records (zone-file syntax, absolute names) to the zones that hold
// their names; the zone must exist.
func (s *DNSServer) Add(records ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, text := range records {
		rr, err := parseRR(text, "")
		if err != nil {
			return err
		}
		z := s.zoneFor(strings.ToLower(rr.Header().Name))
		if z == nil {
			return fmt.Errorf("testenv: no zone holds %s", rr.Header().Name)
		}
		z.add(rr)
	}
	return nil
}

// Remove deletes every record of type qtype at name (all types when qtype
// is 0).
func (s *DNSServer) Remove(name string, qtype uint16) {
	name = fqdn(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zoneFor(name)
	if z == nil {
		return
	}
	var keep []dns.RR
	for _, rr := range z.records[name] {
		if qtype != 0 && rr.Header().Rrtype != qtype {
			keep = append(keep, rr)
		}
	}
	z.records[name] = keep
}

// SetSecurity changes how an existing zone is presented.
func (s *DNSServer) SetSecurity(origin string, sec Security) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if z := s.zones[fqdn(origin)]; z != nil {
		z.security = sec
	}
}

// SetFault makes questions for name and qtype fail; an empty name matches
// every name and qtype 0 every type. NoFault removes the fault.
func (s *DNSServer) SetFault(name string, qtype uint16, f Fault) {
	k := faultKey{fqdn(name), qtype}
	if name == "" {
		k.name = ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == NoFault {
		delete(s.faults, k)
	} else {
		s.faults[k] = f
	}
}

// SetValidating false makes the server behave as a non-validating resolver:
// it never sets the AD bit.
func (s *DNSServer) SetValidating(v bool) {
	s.mu.Lock()
	s.noAD = !v
	s.mu.Unlock()
}

// SetStripRRSIG true makes the server leave out RRSIG records, as
// middleboxes and some forwarders do.
func (s *DNSServer) SetStripRRSIG(v bool) {
	s.mu.Lock()
	s.stripSigs = v
	s.mu.Unlock()
}

// SetTCP false makes the server drop every TCP connection unanswered, as
// resolvers behind firewalls that block TCP port 53 appear to.
func (s *DNSServer) SetTCP(v bool) {
	s.mu.Lock()
	s.noTCP = !v
	s.mu.Unlock()
}

// SetChaseCNAME false makes the server answer a question for a CNAME's
// owner with the CNAME alone, as a resolver that does not follow chains
// across zones does: the client must ask for the target itself.
func (s *DNSServer) SetChaseCNAME(v bool) {
	s.mu.Lock()
	s.noChase = !v
	s.mu.Unlock()
}

// Queries returns how many questions for name and qtype reached the server
// (over both transports).
func (s *DNSServer) Queries(name string, qtype uint16) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.queries[faultKey{fqdn(name), qtype}]
}

// TotalQueries returns how many questions of any name and type reached
// the server, for tests that a server is never asked at all.
func (s *DNSServer) TotalQueries() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, c := range s.queries {
		n += c
	}
	return n
}

func parseRR(text, origin string) (dns.RR, error) {
	zp := dns.NewZoneParser(strings.NewReader(text), origin, "")
	rr, ok := zp.Next()
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("testenv: record %q: %w", text, err)
	}
	if !ok {
		return nil, fmt.Errorf("testenv: record %q: empty", text)
	}
	rr.Header().Name = strings.ToLower(rr.Header().Name)
	return rr, nil
}

func (z *zone) add(rr dns.RR) {
	name := rr.Header().Name
	z.records[name] = append(z.records[name], rr)
}

func (z *zone) soa() dns.RR {
	for _, rr := range z.records[z.origin] {
		if rr.Header().Rrtype == dns.TypeSOA {
			return dns.Copy(rr)
		}
	}
	// Remove took the SOA away: answer with a made-up one.
	return madeUpSOA(z.origin)
}

// madeUpSOA is the SOA a zone gets when none was given.
func madeUpSOA(origin string) dns.RR {
	base := strings.TrimSuffix(origin, ".")
	return &dns.SOA{Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300},
		Ns: dns.Fqdn("ns." + base), Mbox: dns.Fqdn("hostmaster." + base),
		Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 60}
}

// fqdn lower-cases a DNS name and makes it absolute, the form zones and
// counters are keyed by.
func fqdn(name string) string { return dns.Fqdn(strings.ToLower(name)) }

func hasType(rrs []dns.RR, t uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}

// zoneFor returns the zone with the longest origin that contains name.
func (s *DNSServer) zoneFor(name string) *zone {
	for n := name; ; {
		if z := s.zones[n]; z != nil {
			return z
		}
		if n == "." {
			return nil
		}
		i := strings.IndexByte(n, '.')
		n = n[i+1:]
		if n == "" {
			n = "."
		}
	}
}

// exists reports whether name owns records or is an empty non-terminal of z.
func (z *zone) exists(name string) bool {
	if len(z.records[name]) > 0 {
		return true
	}
	for owner, rrs := range z.records {
		if len(rrs) > 0 && strings.HasSuffix(owner, "."+name) {
			return true
		}
	}
	return false
}

func (s *DNSServer) serveUDP(w dns.ResponseWriter, q *dns.Msg) { s.serve(w, q, true) }
func (s *DNSServer) serveTCP(w dns.ResponseWriter, q *dns.Msg) {
	s.mu.RLock()
	noTCP := s.noTCP
	s.mu.RUnlock()
	if noTCP {
		w.Close()
		return
	}
	s.serve(w, q, false)
}

func (s *DNSServer) serve(w dns.ResponseWriter, q *dns.Msg, udp bool) {
	if len(q.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	question := q.Question[0]
	name := strings.ToLower(question.Name)
	s.mu.Lock()
	s.queries[faultKey{name, question.Qtype}]++
	fault := s.faultFor(name, question.Qtype)
	s.mu.Unlock()

	resp := new(dns.Msg)
	resp.SetReply(q)
	resp.RecursionAvailable = true
	opt := q.IsEdns0()
	if opt != nil {
		resp.SetEdns0(4096, opt.Do())
	}
	switch fault {
	case FaultTimeout:
		return
	case FaultServfail:
		resp.Rcode = dns.RcodeServerFailure
	case FaultBogus:
		s.bogus(resp)
	case FaultRefused:
		resp.Rcode = dns.RcodeRefused
	case FaultNotImp:
		resp.Rcode = dns.RcodeNotImplemented
	case FaultJunk:
		if udp {
			resp.Truncated = true
			w.WriteMsg(resp)
			return
		}
		if b, err := resp.Pack(); err == nil {
			w.Write(b[:7])
		}
		return
	case FaultTruncate:
		if udp {
			resp.Truncated = true
			w.WriteMsg(resp)
			return
		}
		fallthrough
	default:
		s.answer(resp, name, question.Qtype, opt != nil && opt.Do())
	}
	if udp {
		size := dns.MinMsgSize
		if opt != nil {
			size = max(int(opt.UDPSize()), dns.MinMsgSize)
		}
		resp.Truncate(size)
	}
	w.WriteMsg(resp)
}

func (s *DNSServer) faultFor(name string, qtype uint16) Fault {
	for _, k := range []faultKey{{name, qtype}, {name, 0}, {"", qtype}, {"", 0}} {
		if f, ok := s.faults[k]; ok {
			return f
		}
	}
	return NoFault
}

func (s *DNSServer) bogus(resp *dns.Msg) {
	resp.Rcode = dns.RcodeServerFailure
	resp.Answer, resp.Ns = nil, nil
	opt := resp.IsEdns0()
	if opt == nil {
		resp.SetEdns0(4096, false)
		opt = resp.IsEdns0()
	}
	opt.Option = append(opt.Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeDNSBogus, ExtraText: "test zone marked bogus"})
}

// answer fills resp the way a validating recursive resolver would: records
// at name, or the CNAME chain to them across zones, or a negative answer
// with the SOA of the last zone.
func (s *DNSServer) answer(resp *dns.Msg, name string, qtype uint16, do bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	secure := !s.noAD
	for hops := 0; hops < 16; hops++ {
		z := s.zoneFor(name)
		if z == nil {
			resp.Rcode = dns.RcodeNameError
			resp.AuthenticatedData = false
			return
		}
		switch z.security {
		case Bogus:
			s.bogus(resp)
			return
		case Insecure:
			secure = false
		}
		rrs := z.records[name]
		var match []dns.RR
		var cname *dns.CNAME
		for _, rr := range rrs {
			switch {
			case rr.Header().Rrtype == qtype:
				match = append(match, dns.Copy(rr))
			case rr.Header().Rrtype == dns.TypeCNAME:
				cname = dns.Copy(rr).(*dns.CNAME)
			}
		}
		if len(match) > 0 {
			resp.Answer = append(resp.Answer, s.signed(match, z, do)...)
			resp.AuthenticatedData = secure
			return
		}
		if cname != nil {
			resp.Answer = append(resp.Answer, s.signed([]dns.RR{cname}, z, do)...)
			if s.noChase {
				resp.AuthenticatedData = secure
				return
			}
			name = strings.ToLower(cname.Target)
			continue
		}
		if !z.exists(name) {
			resp.Rcode = dns.RcodeNameError
		}
		resp.Ns = append(resp.Ns, s.signed([]dns.RR{z.soa()}, z, do)...)
		resp.AuthenticatedData = secure
		return
	}
	resp.Rcode = dns.RcodeServerFailure // CNAME loop
}

// signed appends a stand-in RRSIG to an RRset of a secure zone when the
// client asked for DNSSEC records. It is not a valid signature — the client
// trusts the resolver's AD bit, not its own validation — but it lets tests
// check that RRSIGs pass through.
func (s *DNSServer) signed(rrs []dns.RR, z *zone, do bool) []dns.RR {
	if !do || s.stripSigs || z.security != Secure || len(rrs) == 0 {
		return rrs
	}
	h := rrs[0].Header()
	sig := &dns.RRSIG{
		Hdr:         dns.RR_Header{Name: h.Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: h.Ttl},
		TypeCovered: h.Rrtype,
		Algorithm:   dns.ECDSAP256SHA256,
		Labels:      uint8(dns.CountLabel(h.Name)),
		OrigTtl:     h.Ttl,
		Expiration:  uint32(time.Now().Add(24 * time.Hour).Unix()),
		Inception:   uint32(time.Now().Add(-time.Hour).Unix()),
		KeyTag:      12345,
		SignerName:  z.origin,
		Signature:   "dGVzdCBzaWduYXR1cmU=",
	}
	return append(rrs, sig)
}
