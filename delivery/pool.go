package delivery

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/sealpost/sealpost/tlsrpt"
)

// poolKey identifies the sessions that may carry a message: to the same
// host and port, set up under the same requirement (level, check and the
// very policy — TLSA records, MTA-STS policy — they were verified
// against). A session verified under a policy that has since changed is
// never reused for it.
type poolKey struct {
	host   string
	port   uint16
	level  Level
	check  Check
	policy tlsrpt.PolicyID
	record bool
	src    netip.Addr
}

func (a *attempt) poolKey(host MXHost, req *Requirement) poolKey {
	k := poolKey{host: host.Name, port: a.d.t.port, level: req.Level, check: req.Check, policy: req.report.ID(), record: req.record}
	if a.src.SourceIPv4.IsValid() {
		k.src = a.src.SourceIPv4
	} else if a.src.SourceIPv6.IsValid() {
		k.src = a.src.SourceIPv6
	}
	return k
}

// pool keeps idle sessions for reuse, and bounds the sessions open to one
// host. Each open session — idle, busy, or being set up — holds one of its
// host's slots.
type pool struct {
	max         int
	idleTimeout time.Duration // negative: no reuse
	now         func() time.Time

	mu     sync.Mutex
	hosts  map[string]*hostSessions
	closed bool
	// quitting counts the sessions being ended in the background; done,
	// when not nil, is closed as the count reaches zero (wait).
	quitting int
	done     chan struct{}
}

// grant is what acquire hands out, as net/http's wantConn is: an idle
// session to reuse, which goes back with put or discard; or, when session
// is nil, one of the host's slots, which the new session opened in it
// takes over (its put or discard frees it) or release gives back.
type grant struct {
	session *session
	key     poolKey
}

type hostSessions struct {
	open    int
	idle    map[poolKey][]*session
	waiters []chan struct{}
}

func newPool(max int, idleTimeout time.Duration, now func() time.Time) *pool {
	if max <= 0 {
		max = 10
	}
	if idleTimeout == 0 {
		idleTimeout = 30 * time.Second
	}
	return &pool{max: max, idleTimeout: idleTimeout, now: now, hosts: make(map[string]*hostSessions)}
}

func (p *pool) host(name string) *hostSessions {
	h := p.hosts[name]
	if h == nil {
		h = &hostSessions{idle: make(map[poolKey][]*session)}
		p.hosts[name] = h
	}
	return h
}

// acquire returns an idle session for key, or a slot for a new session
// (see grant). It waits while the host's sessions are all busy.
func (p *pool) acquire(ctx context.Context, key poolKey) (grant, error) {
	for {
		p.mu.Lock()
		h := p.host(key.host)
		if list := h.idle[key]; len(list) > 0 {
			s := list[len(list)-1]
			h.idle[key] = list[:len(list)-1]
			p.mu.Unlock()
			s.idle.Stop()
			if s.conn.Err() != nil {
				p.discard(s)
				continue
			}
			return grant{session: s, key: key}, nil
		}
		if h.open < p.max || p.closed {
			h.open++
			p.mu.Unlock()
			return grant{key: key}, nil
		}
		if victim := h.evictOther(); victim != nil {
			// The slot of an idle session under another requirement passes
			// to the caller.
			p.quitting++
			p.mu.Unlock()
			victim.idle.Stop()
			go p.quit(victim)
			return grant{key: key}, nil
		}
		ch := make(chan struct{})
		h.waiters = append(h.waiters, ch)
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return grant{}, ctx.Err()
		}
	}
}

// evictOther removes and returns the longest-idle session of any key.
func (h *hostSessions) evictOther() *session {
	var victim *session
	var vkey poolKey
	for k, list := range h.idle {
		if len(list) > 0 && (victim == nil || list[0].idleAt.Before(victim.idleAt)) {
			victim, vkey = list[0], k
		}
	}
	if victim != nil {
		h.idle[vkey] = h.idle[vkey][1:]
		if len(h.idle[vkey]) == 0 {
			delete(h.idle, vkey)
		}
	}
	return victim
}

// wake lets every waiter look again.
func (h *hostSessions) wake() {
	for _, ch := range h.waiters {
		close(ch)
	}
	h.waiters = nil
}

// put keeps s for reuse until the idle timeout.
func (p *pool) put(ctx context.Context, s *session) {
	p.mu.Lock()
	if p.closed || p.idleTimeout < 0 || s.conn.Err() != nil {
		p.mu.Unlock()
		p.discard(s)
		return
	}
	h := p.host(s.key.host)
	s.idleAt = p.now()
	h.idle[s.key] = append(h.idle[s.key], s)
	s.idle = time.AfterFunc(p.idleTimeout, func() { p.expire(s) })
	h.wake()
	p.mu.Unlock()
}

// expire ends s if it is still idle.
func (p *pool) expire(s *session) {
	p.mu.Lock()
	h := p.host(s.key.host)
	list := h.idle[s.key]
	i := slices.Index(list, s)
	if i < 0 {
		p.mu.Unlock()
		return
	}
	h.idle[s.key] = slices.Delete(list, i, i+1)
	if len(h.idle[s.key]) == 0 {
		delete(h.idle, s.key)
	}
	h.open--
	h.wake()
	p.quitting++
	p.mu.Unlock()
	p.quit(s)
}

// discard ends s and frees its slot.
func (p *pool) discard(s *session) {
	p.mu.Lock()
	p.quitting++
	p.mu.Unlock()
	p.release(s.key)
	go p.quit(s)
}

// release frees a slot acquire handed out.
func (p *pool) release(key poolKey) {
	p.mu.Lock()
	h := p.host(key.host)
	h.open--
	h.wake()
	if h.open <= 0 && len(h.idle) == 0 && len(h.waiters) == 0 {
		delete(p.hosts, key.host)
	}
	p.mu.Unlock()
}

// close ends every idle session, and returns once they and every session
// being ended already are closed; sessions in use end when put back.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	var idle []*session
	for _, h := range p.hosts {
		for k, list := range h.idle {
			idle = append(idle, list...)
			h.open -= len(list)
			delete(h.idle, k)
		}
		h.wake()
	}
	p.quitting += len(idle)
	p.mu.Unlock()
	for _, s := range idle {
		s.idle.Stop()
		go p.quit(s)
	}
	p.wait()
}

// quit ends s (see quit) and counts it out of p.quitting, which the
// caller counted it into under p.mu.
func (p *pool) quit(s *session) {
	quit(s)
	p.mu.Lock()
	if p.quitting--; p.quitting == 0 && p.done != nil {
		close(p.done)
		p.done = nil
	}
	p.mu.Unlock()
}

// wait returns once no session is being ended.
func (p *pool) wait() {
	p.mu.Lock()
	if p.quitting == 0 {
		p.mu.Unlock()
		return
	}
	if p.done == nil {
		p.done = make(chan struct{})
	}
	done := p.done
	p.mu.Unlock()
	<-done
}

// quitTimeout bounds the polite QUIT of a session being closed.
const quitTimeout = 5 * time.Second

// quit ends s politely when it is still usable (RFC 5321 §4.1.1.10), and
// closes it either way.
func quit(s *session) {
	if s.conn.Err() == nil {
		ctx, cancel := context.WithTimeout(context.Background(), quitTimeout)
		_ = s.conn.Quit(ctx)
		cancel()
	}
	s.conn.Close()
}
