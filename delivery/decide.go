package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/sts"
	"github.com/sealpost/sealpost/tlsrpt"
)

// Enhanced status codes of our own policy refusals, as large providers use
// them (RFC 3463, RFC 8689 for 5.7.30).
var (
	codeMXNotAllowed = smtp.EnhancedCode{4, 4, 8} // MX not allowed by policy
	codeCertificate  = smtp.EnhancedCode{4, 7, 5} // cryptographic (certificate) failure
	codeREQUIRETLS   = smtp.EnhancedCode{5, 7, 30}
	codeDANELookup   = smtp.EnhancedCode{4, 4, 3} // directory server failure
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
	// dry is set by Explain: nothing is recorded.
	dry bool
}

// relaxed reports whether the recipient domain's own policies (DANE,
// MTA-STS, a preloaded policy) are checked but not enforced for this
// message: TLS-RPT reports, and "TLS-Required: No" without REQUIRETLS
// (RFC 8689 §3, §4.2.2).
func (d *decision) relaxed() bool {
	return d.msg.TLSReport || (d.msg.TLSOptional && !d.msg.RequireTLS)
}

// decide returns the requirement of host, or an *Error saying why the host
// must not be used now. It never weakens a requirement an earlier rule set.
func (c *Client) decide(ctx context.Context, d *decision, host MXHost) (*Requirement, error) {
	req := &Requirement{Host: host.Name, record: !d.msg.TLSReport && !d.dry}
	if !d.t.literal {
		if err := c.decideDANE(ctx, d, req); err != nil {
			return nil, err
		}
	}
	switch {
	case req.DANE == nil || req.DANE.Outcome == dane.NotApplicable:
		if err := c.decideSTS(d, req); err != nil {
			return nil, err
		}
	case c.daneIgnored(d):
		if err := c.decideSTSInstead(d, req); err != nil {
			return nil, err
		}
	case !d.t.mxSecure:
		if err := c.matchSTS(d, req); err != nil {
			return nil, err
		}
	}
	if err := c.decideLocal(d, req); err != nil {
		return nil, err
	}
	if d.msg.RequireTLS {
		if err := c.decideREQUIRETLS(d, req); err != nil {
			return nil, err
		}
	}
	if req.report.Type == "" {
		req.report = c.reports.noPolicy(d.t.domain)
	}
	return req, nil
}

// decideDANE applies RFC 7672 §2.2: secure usable TLSA records make
// authentication by them mandatory; secure records none of which is usable
// make TLS mandatory; a failed look-up makes the host unusable now.
func (c *Client) decideDANE(ctx context.Context, d *decision, req *Requirement) error {
	dr, report, err := c.daneRequirement(ctx, d.t.domain, d.t.daneName(req.Host), d.t.port, d.t.mxSecure)
	if err != nil {
		if req.record {
			c.recordFailure(c.reports.tlsa(d.t.domain, req.Host, nil), resultTypeOf(err, tlsrpt.ResultDNSSECInvalid), req.Host, "")
		}
		return failure(451, codeDANELookup, err, "cannot decide whether DANE applies to MX host %s: not using it now", req.Host)
	}
	req.DANE = dr
	switch dr.Outcome {
	case dane.AuthenticationRequired:
		req.Level, req.Check, req.Basis = Authenticated, CheckDANE, BasisDANE
		req.Reason = fmt.Sprintf("DNSSEC-secure TLSA records at _%d._tcp.%s, %d usable: the server must match them (RFC 7672 §2.2)",
			dr.Port, dr.BaseDomain, len(dr.UsableRecords()))
	case dane.TLSRequired:
		req.Level, req.Check, req.Basis = Encrypted, CheckNone, BasisDANEUnusable
		req.Reason = fmt.Sprintf("DNSSEC-secure TLSA records at _%d._tcp.%s, none usable: TLS is mandatory, the server cannot be authenticated (RFC 7672 §2.2)",
			dr.Port, dr.BaseDomain)
	default:
		return nil
	}
	req.report = report
	switch {
	case d.relaxed():
		req.Level = Opportunistic
		req.Reason += "; not enforced for this message (" + d.relaxReason() + ")"
	case c.daneIgnored(d):
		req.Level = Opportunistic
		req.Reason += "; not enforced: operator override (" + d.local.Override.Reason + ")"
		c.log.Warn("delivery: DANE not enforced by operator override", slog.String("domain", d.t.domain),
			slog.String("host", req.Host), slog.String("reason", d.local.Override.Reason))
	}
	return nil
}

// daneIgnored reports whether an operator override drops the domain's
// TLSA records for this message (not when they are relaxed for it anyway).
func (c *Client) daneIgnored(d *decision) bool {
	return !d.relaxed() && d.local.Override.IgnoreDANE && d.local.Override.active(d.now)
}

// decideSTSInstead applies the domain's MTA-STS policy (or the preloaded
// one) to a host whose TLSA records an Override ignores: the override drops
// DANE, not the domain's other policy, so the host is held to that policy
// as a host without TLSA records is. When no policy applies, the ignored
// records are still checked and reported, unenforced, as decideDANE left
// them. Under LocalPolicy.DANEOnly they stay too: the operator's own rule
// wants the server authenticated by them (decideLocal).
func (c *Client) decideSTSInstead(d *decision, req *Requirement) error {
	if d.local.DANEOnly {
		return nil
	}
	alt := &Requirement{Host: req.Host, record: req.record}
	if err := c.decideSTS(d, alt); err != nil {
		return err
	}
	if alt.STS == nil {
		return nil
	}
	req.Level, req.Check, req.Basis, req.STS, req.STSMatch, req.report = alt.Level, alt.Check, alt.Basis, alt.STS, alt.STSMatch, alt.report
	req.Reason = req.Reason + "; instead: " + alt.Reason
	return nil
}

func (d *decision) relaxReason() string {
	if d.msg.TLSReport {
		return "TLS-RPT report"
	}
	return "TLS-Required: No, RFC 8689 §4.2.2"
}

// decideSTS applies RFC 8461 §4 (or the operator's preloaded policy) to a
// host DANE does not cover.
func (c *Client) decideSTS(d *decision, req *Requirement) error {
	st := d.sts
	if st == nil || st.policy == nil {
		if st != nil && st.err != nil {
			// No policy to apply, but the failure to get one is reported
			// with the sessions that go ahead without it (RFC 8460 §4.3.2.2).
			req.report, req.stsErr = st.report, st.err
		}
		return nil
	}
	p := st.policy
	if p.Mode != sts.ModeEnforce && p.Mode != sts.ModeTesting {
		return nil
	}
	req.STS, req.STSMatch = p, p.Match(req.Host)
	req.Check, req.Basis, req.report = CheckWebPKI, BasisMTASTS, st.report
	if st.preloaded {
		req.Basis = BasisPreloaded
	}
	what := st.name()
	enforce := c.stsEnforced(d, req.Host)
	req.Reason = fmt.Sprintf("%s of %s in %s mode (%s)", what, d.t.domain, p.Mode, st.source)
	if !req.STSMatch {
		// RFC 8461 §4.1: a host that matches no mx pattern fails the
		// policy; RFC 8460 has no result type of its own for it.
		if enforce {
			// No session will be made: the refusal is the session's record.
			if req.record {
				c.recordFailure(req.report, tlsrpt.ResultValidationFailure, req.Host, reasonMXNotInPolicy)
			}
			return failure(451, codeMXNotAllowed, nil, "MX host %s is not allowed by the %s of %s (RFC 8461 §4.1)", req.Host, what, d.t.domain)
		}
		// The session goes ahead and is recorded as this failure.
		req.Reason += "; the host matches no mx pattern, reported only"
		return nil
	}
	if enforce {
		req.Level = Authenticated
		req.Reason += ": TLS 1.2 or newer with a WebPKI certificate for the host (RFC 8461 §4.2)"
	} else {
		req.Reason += ": checked and reported, not enforced"
	}
	return nil
}

// stsEnforced reports whether the domain's MTA-STS policy (or the
// preloaded one) is enforced for host and this message: enforce mode, not
// relaxed for the message, no operator override (whose use is logged).
func (c *Client) stsEnforced(d *decision, host string) bool {
	enforce := d.sts.policy.Mode == sts.ModeEnforce && !d.relaxed()
	if enforce && d.local.Override.IgnoreMTASTS && d.local.Override.active(d.now) {
		enforce = false
		c.log.Warn("delivery: MTA-STS not enforced by operator override", slog.String("domain", d.t.domain),
			slog.String("host", host), slog.String("reason", d.local.Override.Reason))
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
func (c *Client) matchSTS(d *decision, req *Requirement) error {
	st := d.sts
	if st == nil || st.policy == nil || (st.policy.Mode != sts.ModeEnforce && st.policy.Mode != sts.ModeTesting) {
		return nil
	}
	if st.policy.Match(req.Host) {
		// Also what makes the host MTA-STS-validated for REQUIRETLS.
		req.STS, req.STSMatch = st.policy, true
		return nil
	}
	what := st.name()
	if !c.stsEnforced(d, req.Host) {
		req.Reason += fmt.Sprintf("; the host matches no mx pattern of the %s in %s mode, not enforced", what, st.policy.Mode)
		return nil
	}
	if req.record {
		c.recordFailure(st.report, tlsrpt.ResultValidationFailure, req.Host, reasonMXNotInPolicy)
	}
	return failure(451, codeMXNotAllowed, nil, "MX host %s, named by an insecure MX answer, is not allowed by the %s of %s (RFC 8461 §4.1); TLSA records do not make it the domain's choice",
		req.Host, what, d.t.domain)
}

// decideLocal applies the operator's rules, which only tighten.
func (c *Client) decideLocal(d *decision, req *Requirement) error {
	lp := d.local
	if lp.DANEOnly && req.Basis != BasisDANE {
		if req.record {
			// RFC 8460 §4.3.2.1: the sender requires DANE, the host has no
			// usable DNSSEC-validated TLSA records.
			c.recordFailure(c.reports.tlsa(d.t.domain, req.Host, req.DANE), tlsrpt.ResultDANERequired, req.Host, "")
		}
		return failure(451, codeCertificate, nil, "local policy accepts only DANE-authenticated hosts for %s, and %s has no usable DNSSEC-secure TLSA record", d.t.domain, req.Host)
	}
	if lp.DANEOnly && !d.t.mxSecure {
		// RFC 7672 §2.2.1, §6: DANE binds a host's keys to its name, and
		// only a DNSSEC-secure MX answer (or the secure denial of an
		// implicit MX) binds that name to the domain. An attacker who forges
		// an insecure answer can name a host in a zone of his own, signed,
		// with TLSA records of his own: for a sender that demands DANE, the
		// domain has no DANE-validated host (RFC 8460 §4.3.2.1).
		if req.record {
			c.recordFailure(c.reports.tlsa(d.t.domain, req.Host, req.DANE), tlsrpt.ResultDANERequired, req.Host, reasonMXInsecure)
		}
		return failure(451, codeCertificate, nil, "local policy accepts only DANE-authenticated hosts for %s, and its MX answer naming %s is not DNSSEC-secure", d.t.domain, req.Host)
	}
	if lp.DANEOnly && req.Level < Authenticated {
		// The records were relaxed for this message ("TLS-Required: No", a
		// TLS-RPT report) or by an override, but this rule is the
		// operator's: the host must still be authenticated by them, else
		// a stripped STARTTLS or an attacker's certificate would carry the
		// message.
		req.Level, req.Basis = Authenticated, BasisLocal
		req.Reason = appendReason(req.Reason, "local policy accepts only DANE-authenticated hosts")
	}
	if lp.RequireAuthenticated && req.Level < Authenticated {
		if req.Check != CheckDANE {
			req.Check = CheckWebPKI
		}
		req.Level, req.Basis = Authenticated, BasisLocal
		req.Reason = appendReason(req.Reason, "local policy requires an authenticated server")
	}
	if lp.RequireTLS && req.Level < Encrypted {
		req.Level, req.Basis = Encrypted, BasisLocal
		req.Reason = appendReason(req.Reason, "local policy requires TLS")
	}
	return nil
}

// decideREQUIRETLS applies RFC 8689 §4.2.1: the host must come from a
// DNSSEC-secure MX answer or match the domain's MTA-STS policy, and the
// server must be authenticated, by DANE or the WebPKI.
func (c *Client) decideREQUIRETLS(d *decision, req *Requirement) error {
	stsValidated := req.STS != nil && req.STSMatch && req.Basis != BasisPreloaded
	if !d.t.mxSecure && !stsValidated {
		return failure(550, codeREQUIRETLS, nil, "REQUIRETLS: MX host %s was found through an insecure MX answer and no MTA-STS policy validates it (RFC 8689 §4.2.1)", req.Host)
	}
	if req.Check == CheckNone {
		req.Check = CheckWebPKI
	}
	if req.Level < Authenticated {
		req.Level, req.Basis = Authenticated, BasisREQUIRETLS
	}
	req.REQUIRETLS = true
	req.Reason = appendReason(req.Reason, "the message requires REQUIRETLS (RFC 8689)")
	return nil
}

func appendReason(reason, more string) string {
	if reason == "" {
		return more
	}
	return reason + "; " + more
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
