package delivery

import (
	"fmt"
	"strings"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/sts"
	"github.com/sealpost/sealpost/tlsrpt"
)

// reasonMXNotInPolicy is the failure-reason-code of a host outside an
// MTA-STS policy's mx patterns: RFC 8460 §4.3 has no result type of its own
// for it, so it is reported as validation-failure with this code.
const reasonMXNotInPolicy = "mx-not-in-policy"

// reasonMXInsecure is the failure-reason-code of a "dane-required" failure
// (RFC 8460 §4.3.2.1) whose host has usable TLSA records but was named by
// an MX answer that is not DNSSEC-secure, which LocalPolicy.DANEOnly
// refuses.
const reasonMXInsecure = "mx-rrset-insecure"

// stsState is what the MTA-STS look-up found for a policy domain, once per
// delivery attempt.
type stsState struct {
	// policy is the policy that applies: the domain's, or the operator's
	// preloaded one (preloaded set); nil when none does (no policy, mode
	// none, or a failed look-up without anything cached).
	policy    *sts.Policy
	preloaded bool
	// source says where the policy came from, for Explain and logs.
	source string
	// err is the look-up's failure when it left no policy to apply; it is
	// recorded (sts-policy-fetch-error, sts-policy-invalid) with the
	// sessions that then run without one.
	err error
	// report is the TLS-RPT policy sessions under it are recorded with.
	report tlsrpt.Policy
}

// enforced reports whether the policy is in enforce mode.
func (s *stsState) enforced() bool { return s.policy != nil && s.policy.Mode == sts.ModeEnforce }

// name names the policy in reasons and errors.
func (s *stsState) name() string {
	if s.preloaded {
		return "preloaded policy"
	}
	return "MTA-STS policy"
}

// decision is one domain's context for deciding its hosts' requirements.
type decision struct {
	t     *target
	sts   *stsState
	local DomainPolicy
	msg   *Message
	now   time.Time
}

// relaxed reports whether the recipient domain's own policies (DANE,
// MTA-STS, a preloaded policy) are checked but not enforced for this
// message: TLS-RPT reports, and "TLS-Required: No" without REQUIRETLS
// (RFC 8689 §3, §4.2.2).
func (d *decision) relaxed() bool {
	return d.msg.TLSReport || (d.msg.TLSOptional && !d.msg.RequireTLS)
}

func (d *decision) relaxReason() string {
	if d.msg.TLSReport {
		return "TLS-RPT report"
	}
	return "TLS-Required: No, RFC 8689 §4.2.2"
}

// daneIgnored reports whether an operator override drops the domain's
// TLSA records for this message (not when they are relaxed for it anyway).
func (d *decision) daneIgnored() bool {
	return !d.relaxed() && d.local.Override.IgnoreDANE && d.local.Override.active(d.now)
}

// hostFacts are the facts one MX host's requirement is decided on: its
// domain's decision, and what the TLSA look-up found for the host.
type hostFacts struct {
	d    *decision
	host string
	// dane is the host's TLSA requirement; nil for an address literal (no
	// look-up) or when the look-up failed with daneErr.
	dane    *dane.Requirement
	daneErr error
	// daneReport is the "tlsa" policy DANE sessions are recorded under;
	// tlsaReport the one failures decided before connecting are recorded
	// under (the host's records, or none when the look-up failed);
	// noPolicy the "no-policy-found" one.
	daneReport, tlsaReport, noPolicy tlsrpt.Policy
}

// verdict is what decideHost makes of a host: a requirement, or a refusal.
type verdict struct {
	req *Requirement
	// err, when the host is refused, is an *Error saying why it must not
	// be used now; failure is what TLS-RPT records for the refusal, nil
	// when nothing is (no session is made: the refusal is the session's
	// record).
	err     error
	failure *preFailure
	// overrides name the operator overrides that kept a policy from
	// being enforced ("DANE", "MTA-STS"): the attempt logs each use.
	overrides []string
}

// preFailure is a TLS-RPT failure decided before any connection.
type preFailure struct {
	policy tlsrpt.Policy
	result tlsrpt.ResultType
	reason string // failure-reason-code
}

// enforcement is what one policy makes of a requirement. It is assigned
// as a unit (take), so that a policy standing in for another leaves
// nothing of the other behind.
type enforcement struct {
	level    Level
	check    Check
	basis    Basis
	sts      *sts.Policy
	stsMatch bool
	report   tlsrpt.Policy
	// stsErr is the failure to obtain the MTA-STS policy, when that left
	// none to apply: sessions that go ahead without it report it.
	stsErr error
}

func (r *Requirement) take(e enforcement) {
	r.Level, r.Check, r.Basis, r.STS, r.STSMatch, r.report, r.stsErr = e.level, e.check, e.basis, e.sts, e.stsMatch, e.report, e.stsErr
}

// decideHost is the security decision for one MX host, a function of the
// facts alone: it looks nothing up, records and logs nothing. The rules
// apply in the order of precedence the package doc gives, and a later rule
// never weakens what an earlier one set: DANE (RFC 7672 §2.2), else the domain's MTA-STS policy
// or the operator's preloaded one (RFC 8461 §4), the mx patterns of an
// enforced policy for a DANE host of an insecure MX answer, the operator's
// local rules, then REQUIRETLS (RFC 8689 §4.2.1).
func decideHost(f *hostFacts) verdict {
	h := &hostDecision{f: f, d: f.d, req: &Requirement{Host: f.host, record: !f.d.msg.TLSReport}}
	if h.decide() {
		h.req.Reason = strings.Join(h.reasons, "; ")
		if h.req.report.Type == "" {
			h.req.report = f.noPolicy
		}
		h.v.req = h.req
	}
	return h.v
}

// hostDecision is decideHost's work in progress: the requirement, the
// reasons for it (joined into Requirement.Reason in one place) and the
// verdict.
type hostDecision struct {
	f       *hostFacts
	d       *decision
	req     *Requirement
	reasons []string
	v       verdict
}

func (h *hostDecision) reason(format string, args ...any) {
	h.reasons = append(h.reasons, fmt.Sprintf(format, args...))
}

// refuse ends the decision with err, recorded for TLS-RPT as result (and
// reason) under policy when result is not empty.
func (h *hostDecision) refuse(err *Error, policy tlsrpt.Policy, result tlsrpt.ResultType, reason string) bool {
	h.v.err = err
	if result != "" {
		h.v.failure = &preFailure{policy: policy, result: result, reason: reason}
	}
	return false
}

// decide applies the rules in turn; false means the host is refused.
func (h *hostDecision) decide() bool {
	d := h.d
	if !d.t.literal && !h.dane() {
		return false
	}
	ok := true
	switch dr := h.req.DANE; {
	case dr == nil || dr.Outcome == dane.NotApplicable:
		var e enforcement
		e, ok = h.sts(h)
		h.req.take(e)
	case d.daneIgnored():
		ok = h.stsInstead()
	case !d.t.mxSecure:
		ok = h.matchSTS()
	}
	return ok && h.local() && (!d.msg.RequireTLS || h.requireTLS())
}

// dane applies RFC 7672 §2.2: secure usable TLSA records make
// authentication by them mandatory; secure records none of which is usable
// make TLS mandatory; a failed look-up makes the host unusable now.
func (h *hostDecision) dane() bool {
	f, d, req := h.f, h.d, h.req
	if f.daneErr != nil {
		return h.refuse(failure(451, codeDANELookup, f.daneErr, "cannot decide whether DANE applies to MX host %s: not using it now", f.host),
			f.tlsaReport, resultTypeOf(f.daneErr, tlsrpt.ResultDNSSECInvalid), "")
	}
	dr := f.dane
	req.DANE = dr
	e := enforcement{report: f.daneReport}
	switch dr.Outcome {
	case dane.AuthenticationRequired:
		e.level, e.check, e.basis = Authenticated, CheckDANE, BasisDANE
		h.reason("DNSSEC-secure TLSA records at _%d._tcp.%s, %d usable: the server must match them (RFC 7672 §2.2)",
			dr.Port, dr.BaseDomain, len(dr.UsableRecords()))
	case dane.TLSRequired:
		e.level, e.check, e.basis = Encrypted, CheckNone, BasisDANEUnusable
		h.reason("DNSSEC-secure TLSA records at _%d._tcp.%s, none usable: TLS is mandatory, the server cannot be authenticated (RFC 7672 §2.2)",
			dr.Port, dr.BaseDomain)
	default:
		return true
	}
	switch {
	case d.relaxed():
		e.level = Opportunistic
		h.reasons[len(h.reasons)-1] += "; not enforced for this message (" + d.relaxReason() + ")"
	case d.daneIgnored():
		e.level = Opportunistic
		h.reasons[len(h.reasons)-1] += "; not enforced: operator override (" + d.local.Override.Reason + ")"
		h.v.overrides = append(h.v.overrides, "DANE")
	}
	req.take(e)
	return true
}

// stsInstead applies the domain's MTA-STS policy (or the preloaded one)
// to a host whose TLSA records an Override ignores: the override drops
// DANE, not the domain's other policy, so the host is held to that policy
// as a host without TLSA records is. When no policy applies, the ignored
// records are still checked and reported, unenforced, as dane left them.
// Under LocalPolicy.DANEOnly they stay too: the operator's own rule wants
// the server authenticated by them (local).
func (h *hostDecision) stsInstead() bool {
	if h.d.local.DANEOnly {
		return true
	}
	alt := &hostDecision{f: h.f, d: h.d, req: h.req}
	e, ok := alt.sts(h)
	if !ok {
		return false
	}
	if e.sts == nil {
		return true
	}
	h.req.take(e)
	h.reasons[len(h.reasons)-1] += "; instead: " + strings.Join(alt.reasons, "; ")
	return true
}

// sts applies RFC 8461 §4 (or the operator's preloaded policy) to a host
// DANE does not cover, and returns what the policy makes of the
// requirement; its reasons go to h, its refusal and override uses to top
// (h itself, or the decision stsInstead stands in for).
func (h *hostDecision) sts(top *hostDecision) (enforcement, bool) {
	st, d, host := h.d.sts, h.d, h.f.host
	if st == nil || st.policy == nil {
		if st != nil && st.err != nil {
			// No policy to apply, but the failure to get one is reported
			// with the sessions that go ahead without it (RFC 8460 §4.3.2.2).
			return enforcement{report: st.report, stsErr: st.err}, true
		}
		return enforcement{}, true
	}
	p := st.policy
	if p.Mode != sts.ModeEnforce && p.Mode != sts.ModeTesting {
		return enforcement{}, true
	}
	e := enforcement{check: CheckWebPKI, basis: BasisMTASTS, sts: p, stsMatch: p.Match(host), report: st.report}
	if st.preloaded {
		e.basis = BasisPreloaded
	}
	what := st.name()
	enforce := top.stsEnforced()
	reason := fmt.Sprintf("%s of %s in %s mode (%s)", what, d.t.domain, p.Mode, st.source)
	switch {
	case !e.stsMatch && enforce:
		// RFC 8461 §4.1: a host that matches no mx pattern fails the
		// policy; RFC 8460 has no result type of its own for it.
		return e, top.refuse(failure(451, codeMXNotAllowed, nil, "MX host %s is not allowed by the %s of %s (RFC 8461 §4.1)", host, what, d.t.domain),
			e.report, tlsrpt.ResultValidationFailure, reasonMXNotInPolicy)
	case !e.stsMatch:
		// The session goes ahead and is recorded as this failure.
		reason += "; the host matches no mx pattern, reported only"
	case enforce:
		e.level = Authenticated
		reason += ": TLS 1.2 or newer with a WebPKI certificate for the host (RFC 8461 §4.2)"
	default:
		reason += ": checked and reported, not enforced"
	}
	h.reason("%s", reason)
	return e, true
}

// stsEnforced reports whether the domain's MTA-STS policy (or the
// preloaded one) is enforced for this message: enforce mode, not relaxed
// for the message, no operator override (whose use the verdict names).
func (h *hostDecision) stsEnforced() bool {
	d := h.d
	enforce := d.sts.policy.Mode == sts.ModeEnforce && !d.relaxed()
	if enforce && d.local.Override.IgnoreMTASTS && d.local.Override.active(d.now) {
		h.v.overrides = append(h.v.overrides, "MTA-STS")
		return false
	}
	return enforce
}

// matchSTS applies the mx patterns of the domain's MTA-STS policy (RFC
// 8461 §4.1) to a DANE host named by an insecure MX answer. DANE
// authenticates the server a host name leads to, not the domain's choice
// of that host: an on-path attacker who forges the unsigned MX RRset can
// name a host in a zone of his own, signed, whose TLSA records pin his
// server. The policy's mx patterns are then all that binds the host to the
// domain, so an enforced policy refuses a host they do not match. The
// server is still authenticated by DANE alone (RFC 8461 §2: MTA-STS must
// not override DANE); a secure MX answer needs none of this.
func (h *hostDecision) matchSTS() bool {
	st, host := h.d.sts, h.f.host
	if st == nil || st.policy == nil || (st.policy.Mode != sts.ModeEnforce && st.policy.Mode != sts.ModeTesting) {
		return true
	}
	if st.policy.Match(host) {
		// Also what makes the host MTA-STS-validated for REQUIRETLS.
		h.req.STS, h.req.STSMatch = st.policy, true
		return true
	}
	what := st.name()
	if !h.stsEnforced() {
		h.reason("the host matches no mx pattern of the %s in %s mode, not enforced", what, st.policy.Mode)
		return true
	}
	return h.refuse(failure(451, codeMXNotAllowed, nil, "MX host %s, named by an insecure MX answer, is not allowed by the %s of %s (RFC 8461 §4.1); TLSA records do not make it the domain's choice",
		host, what, h.d.t.domain), st.report, tlsrpt.ResultValidationFailure, reasonMXNotInPolicy)
}

// local applies the operator's rules, which only tighten.
func (h *hostDecision) local() bool {
	d, req, lp := h.d, h.req, h.d.local
	if lp.DANEOnly && req.Basis != BasisDANE {
		// RFC 8460 §4.3.2.1: the sender requires DANE, the host has no
		// usable DNSSEC-validated TLSA records.
		return h.refuse(failure(451, codeCertificate, nil, "local policy accepts only DANE-authenticated hosts for %s, and %s has no usable DNSSEC-secure TLSA record", d.t.domain, req.Host),
			h.f.tlsaReport, tlsrpt.ResultDANERequired, "")
	}
	if lp.DANEOnly && !d.t.mxSecure {
		// RFC 7672 §2.2.1, §6: DANE binds a host's keys to its name, and
		// only a DNSSEC-secure MX answer (or the secure denial of an
		// implicit MX) binds that name to the domain. An attacker who forges
		// an insecure answer can name a host in a zone of his own, signed,
		// with TLSA records of his own: for a sender that demands DANE, the
		// domain has no DANE-validated host (RFC 8460 §4.3.2.1).
		return h.refuse(failure(451, codeCertificate, nil, "local policy accepts only DANE-authenticated hosts for %s, and its MX answer naming %s is not DNSSEC-secure", d.t.domain, req.Host),
			h.f.tlsaReport, tlsrpt.ResultDANERequired, reasonMXInsecure)
	}
	if lp.DANEOnly && req.Level < Authenticated {
		// The records were relaxed for this message ("TLS-Required: No", a
		// TLS-RPT report) or by an override, but this rule is the
		// operator's: the host must still be authenticated by them, else
		// a stripped STARTTLS or an attacker's certificate would carry the
		// message.
		req.Level, req.Basis = Authenticated, BasisLocal
		h.reason("local policy accepts only DANE-authenticated hosts")
	}
	if lp.RequireAuthenticated && req.Level < Authenticated {
		if req.Check != CheckDANE {
			req.Check = CheckWebPKI
		}
		req.Level, req.Basis = Authenticated, BasisLocal
		h.reason("local policy requires an authenticated server")
	}
	if lp.RequireTLS && req.Level < Encrypted {
		req.Level, req.Basis = Encrypted, BasisLocal
		h.reason("local policy requires TLS")
	}
	return true
}

// requireTLS applies RFC 8689 §4.2.1: the host must come from a
// DNSSEC-secure MX answer or match the domain's MTA-STS policy, and the
// server must be authenticated, by DANE or the WebPKI.
func (h *hostDecision) requireTLS() bool {
	req := h.req
	stsValidated := req.STS != nil && req.STSMatch && req.Basis != BasisPreloaded
	if !h.d.t.mxSecure && !stsValidated {
		return h.refuse(failure(550, codeREQUIRETLS, nil, "REQUIRETLS: MX host %s was found through an insecure MX answer and no MTA-STS policy validates it (RFC 8689 §4.2.1)", req.Host),
			tlsrpt.Policy{}, "", "")
	}
	if req.Check == CheckNone {
		req.Check = CheckWebPKI
	}
	if req.Level < Authenticated {
		req.Level, req.Basis = Authenticated, BasisREQUIRETLS
	}
	req.REQUIRETLS = true
	h.reason("the message requires REQUIRETLS (RFC 8689)")
	return true
}

// resultType returns the RFC 8460 result type an error carries (the dane
// and sts errors have a ResultType method), or def.
func resultType(err error, def string) string {
	for e := err; e != nil; {
		if rt, ok := e.(interface{ ResultType() string }); ok {
			if t := rt.ResultType(); t != "" {
				return t
			}
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			e = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				if t := resultType(inner, ""); t != "" {
					return t
				}
			}
			return def
		default:
			return def
		}
	}
	return def
}
