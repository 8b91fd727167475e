package delivery

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/testenv"
	"github.com/sealpost/sealpost/sts"
	"github.com/sealpost/sealpost/tlsrpt"
)

// The facts decideHost is tested on: one host, mx.example.com, of
// example.com.
const (
	decideDomain = "example.com"
	decideHost_  = "mx.example.com"
)

// What the TLSA look-up found.
type daneFact int

const (
	tlsaAbsent   daneFact = iota // no secure TLSA records: DANE does not apply
	tlsaUsable                   // secure, one usable "3 1 1" record
	tlsaUnusable                 // secure, none usable
	tlsaFailed                   // the look-up failed (SERVFAIL, bogus)
	tlsaNone                     // no look-up: an address literal
)

// What the MTA-STS look-up found.
type stsFact int

const (
	noSTS           stsFact = iota // no policy published
	stsEnforce                     // enforce, the host matches
	stsEnforceOther                // enforce, the host matches no mx pattern
	stsTesting                     // testing, the host matches
	stsTestingOther                // testing, the host matches no mx pattern
	stsModeNone                    // mode none
	stsFailed                      // the fetch failed, nothing cached
	preloadEnforce                 // the operator's preloaded policy, enforce, matching
)

// decideCase is one row: the facts, then what must come of them.
type decideCase struct {
	name     string
	tlsa     daneFact
	insecure bool // the MX answer was not DNSSEC-secure
	sts      stsFact
	local    DomainPolicy
	msg      Message
	// The requirement, or the refusal: its reply code and what TLS-RPT
	// records for it ("" for nothing).
	level     Level
	check     Check
	basis     Basis
	refused   int
	recorded  tlsrpt.ResultType
	code      string // failure-reason-code
	overrides string // the overrides used, joined by ","
	reason    string // a part of Requirement.Reason or of the refusal
}

var (
	ignoreDANE   = Override{IgnoreDANE: true, Reason: "stale TLSA"}
	ignoreMTASTS = Override{IgnoreMTASTS: true, Reason: "broken policy"}
	optional     = Message{TLSOptional: true}
	requireTLS   = Message{RequireTLS: true}
	reportMail   = Message{TLSReport: true}
)

// decideCases enumerate the decision's matrix, a rule per row.
var decideCases = []decideCase{
	// DANE, RFC 7672 §2.2.
	{name: "7672 §2.2: usable secure TLSA records: the server must match them", tlsa: tlsaUsable,
		level: Authenticated, check: CheckDANE, basis: BasisDANE, reason: "1 usable"},
	{name: "7672 §2.2: secure TLSA records, none usable: TLS, unauthenticated", tlsa: tlsaUnusable,
		level: Encrypted, check: CheckNone, basis: BasisDANEUnusable, reason: "none usable"},
	{name: "7672 §2.2: a failed TLSA look-up refuses the host now, reported dnssec-invalid", tlsa: tlsaFailed,
		refused: 451, recorded: tlsrpt.ResultDNSSECInvalid, reason: "cannot decide whether DANE applies"},
	{name: "no TLSA records and no policy: opportunistic", tlsa: tlsaAbsent,
		level: Opportunistic, check: CheckNone, basis: NoPolicy},
	{name: "8461 §2: DANE takes precedence over an enforced MTA-STS policy", tlsa: tlsaUsable, sts: stsEnforce,
		level: Authenticated, check: CheckDANE, basis: BasisDANE},
	{name: "7672 §2.2.1: a secure MX answer's DANE host needs no mx pattern", tlsa: tlsaUsable, sts: stsEnforceOther,
		level: Authenticated, check: CheckDANE, basis: BasisDANE},
	{name: "8461 §4.1: a DANE host of an insecure MX answer outside an enforced policy is refused", tlsa: tlsaUsable, insecure: true, sts: stsEnforceOther,
		refused: 451, recorded: tlsrpt.ResultValidationFailure, code: reasonMXNotInPolicy, reason: "TLSA records do not make it the domain's choice"},
	{name: "a DANE host of an insecure MX answer matching an enforced policy: DANE authenticates", tlsa: tlsaUsable, insecure: true, sts: stsEnforce,
		level: Authenticated, check: CheckDANE, basis: BasisDANE},
	{name: "a DANE host of an insecure MX answer outside a testing policy: reported, not refused", tlsa: tlsaUsable, insecure: true, sts: stsTestingOther,
		level: Authenticated, check: CheckDANE, basis: BasisDANE, reason: "matches no mx pattern of the MTA-STS policy in testing mode, not enforced"},
	{name: "a DANE host of an insecure MX answer with no policy: DANE applies", tlsa: tlsaUsable, insecure: true,
		level: Authenticated, check: CheckDANE, basis: BasisDANE},

	// MTA-STS, RFC 8461 §4 and §5.
	{name: "8461 §4.2: enforced policy, matching host: TLS 1.2+ with a WebPKI certificate", sts: stsEnforce,
		level: Authenticated, check: CheckWebPKI, basis: BasisMTASTS, reason: "in enforce mode (fetched): TLS 1.2 or newer"},
	{name: "8461 §4.1: enforced policy, host outside the mx patterns: refused, validation-failure", sts: stsEnforceOther,
		refused: 451, recorded: tlsrpt.ResultValidationFailure, code: reasonMXNotInPolicy, reason: "not allowed by the MTA-STS policy"},
	{name: "8461 §5: testing policy, matching host: checked and reported, not enforced", sts: stsTesting,
		level: Opportunistic, check: CheckWebPKI, basis: BasisMTASTS, reason: "checked and reported, not enforced"},
	{name: "8461 §5: testing policy, host outside: the session goes ahead and is reported", sts: stsTestingOther,
		level: Opportunistic, check: CheckWebPKI, basis: BasisMTASTS, reason: "reported only"},
	{name: "8461 §5: mode none is no policy", sts: stsModeNone,
		level: Opportunistic, check: CheckNone, basis: NoPolicy},
	{name: "8460 §4.3.2.2: a failed fetch with nothing cached: opportunistic, reported with the sessions", sts: stsFailed,
		level: Opportunistic, check: CheckNone, basis: NoPolicy},
	{name: "a preloaded policy is enforced as the domain's own would be", sts: preloadEnforce,
		level: Authenticated, check: CheckWebPKI, basis: BasisPreloaded, reason: "preloaded policy of example.com"},
	{name: "DANE unusable beside an enforced policy: DANE decides, TLS unauthenticated", tlsa: tlsaUnusable, sts: stsEnforce,
		level: Encrypted, check: CheckNone, basis: BasisDANEUnusable},

	// Messages that relax the domain's policies, RFC 8689 §4.2.2, RFC 8460 §3.
	{name: "8689 §4.2.2: TLS-Required: No leaves DANE checked, not enforced", tlsa: tlsaUsable, msg: optional,
		level: Opportunistic, check: CheckDANE, basis: BasisDANE, reason: "not enforced for this message (TLS-Required: No"},
	{name: "8689 §4.2.2: TLS-Required: No leaves an enforced policy checked, not enforced", sts: stsEnforce, msg: optional,
		level: Opportunistic, check: CheckWebPKI, basis: BasisMTASTS, reason: "checked and reported, not enforced"},
	{name: "8689 §4.2.2: TLS-Required: No does not refuse a host outside an enforced policy", sts: stsEnforceOther, msg: optional,
		level: Opportunistic, check: CheckWebPKI, basis: BasisMTASTS, reason: "reported only"},
	{name: "8460 §3: a TLS-RPT report is sent whatever DANE asks", tlsa: tlsaUsable, msg: reportMail,
		level: Opportunistic, check: CheckDANE, basis: BasisDANE, reason: "TLS-RPT report"},
	{name: "8689 §4.2.2: REQUIRETLS wins over TLS-Required: No", tlsa: tlsaUsable, msg: Message{RequireTLS: true, TLSOptional: true},
		level: Authenticated, check: CheckDANE, basis: BasisDANE, reason: "requires REQUIRETLS"},

	// Operator overrides: a domain's policy dropped, logged.
	{name: "override: ignored TLSA records are checked, not enforced", tlsa: tlsaUsable, local: DomainPolicy{Override: ignoreDANE},
		level: Opportunistic, check: CheckDANE, basis: BasisDANE, overrides: "DANE", reason: "operator override (stale TLSA)"},
	{name: "override: a host whose TLSA records are ignored is held to the enforced policy instead", tlsa: tlsaUsable, sts: stsEnforce, local: DomainPolicy{Override: ignoreDANE},
		level: Authenticated, check: CheckWebPKI, basis: BasisMTASTS, overrides: "DANE", reason: "; instead: MTA-STS policy"},
	{name: "override: ignored TLSA records, host outside the enforced policy: refused by it", tlsa: tlsaUsable, sts: stsEnforceOther, local: DomainPolicy{Override: ignoreDANE},
		refused: 451, recorded: tlsrpt.ResultValidationFailure, code: reasonMXNotInPolicy, overrides: "DANE"},
	{name: "override: an ignored MTA-STS policy is checked, not enforced", sts: stsEnforce, local: DomainPolicy{Override: ignoreMTASTS},
		level: Opportunistic, check: CheckWebPKI, basis: BasisMTASTS, overrides: "MTA-STS"},
	{name: "override: an ignored MTA-STS policy does not refuse a host outside it", sts: stsEnforceOther, local: DomainPolicy{Override: ignoreMTASTS},
		level: Opportunistic, check: CheckWebPKI, basis: BasisMTASTS, overrides: "MTA-STS", reason: "reported only"},
	{name: "override: ignoring MTA-STS leaves DANE enforced", tlsa: tlsaUsable, sts: stsEnforce, local: DomainPolicy{Override: ignoreMTASTS},
		level: Authenticated, check: CheckDANE, basis: BasisDANE},
	{name: "override: an expired override is not applied", sts: stsEnforce, local: DomainPolicy{Override: Override{IgnoreMTASTS: true, Reason: "r", Until: decideNow.Add(-time.Hour)}},
		level: Authenticated, check: CheckWebPKI, basis: BasisMTASTS},
	{name: "override: one without a reason is not applied", tlsa: tlsaUsable, local: DomainPolicy{Override: Override{IgnoreDANE: true}},
		level: Authenticated, check: CheckDANE, basis: BasisDANE},
	{name: "override: not used when the message relaxes the policy anyway", tlsa: tlsaUsable, msg: optional, local: DomainPolicy{Override: ignoreDANE},
		level: Opportunistic, check: CheckDANE, basis: BasisDANE},

	// The operator's local rules, which only tighten.
	{name: "local: require TLS makes opportunistic TLS mandatory", local: DomainPolicy{RequireTLS: true},
		level: Encrypted, check: CheckNone, basis: BasisLocal, reason: "local policy requires TLS"},
	{name: "local: require an authenticated server means the WebPKI", local: DomainPolicy{RequireAuthenticated: true},
		level: Authenticated, check: CheckWebPKI, basis: BasisLocal},
	{name: "local: require an authenticated server beside unusable TLSA records", tlsa: tlsaUnusable, local: DomainPolicy{RequireAuthenticated: true},
		level: Authenticated, check: CheckWebPKI, basis: BasisLocal},
	{name: "local: require an authenticated server authenticates relaxed TLSA records by them", tlsa: tlsaUsable, msg: optional, local: DomainPolicy{RequireAuthenticated: true},
		level: Authenticated, check: CheckDANE, basis: BasisLocal},
	{name: "local: require TLS never weakens DANE", tlsa: tlsaUsable, local: DomainPolicy{RequireTLS: true},
		level: Authenticated, check: CheckDANE, basis: BasisDANE},
	{name: "local: require TLS tightens a testing policy", sts: stsTesting, local: DomainPolicy{RequireTLS: true},
		level: Encrypted, check: CheckWebPKI, basis: BasisLocal},
	{name: "local, 8460 §4.3.2.1: DANE only refuses a host without TLSA records, dane-required", local: DomainPolicy{DANEOnly: true},
		refused: 451, recorded: tlsrpt.ResultDANERequired, reason: "no usable DNSSEC-secure TLSA record"},
	{name: "local, 8460 §4.3.2.1: DANE only refuses a host whose records are all unusable", tlsa: tlsaUnusable, local: DomainPolicy{DANEOnly: true},
		refused: 451, recorded: tlsrpt.ResultDANERequired},
	{name: "local, 7672 §2.2.1: DANE only refuses a DANE host of an insecure MX answer", tlsa: tlsaUsable, insecure: true, local: DomainPolicy{DANEOnly: true},
		refused: 451, recorded: tlsrpt.ResultDANERequired, code: reasonMXInsecure, reason: "not DNSSEC-secure"},
	{name: "local: DANE only keeps authentication when TLS-Required: No relaxes DANE", tlsa: tlsaUsable, msg: optional, local: DomainPolicy{DANEOnly: true},
		level: Authenticated, check: CheckDANE, basis: BasisLocal, reason: "accepts only DANE-authenticated hosts"},
	{name: "local: DANE only keeps authentication by the TLSA records an override ignores", tlsa: tlsaUsable, sts: stsEnforce, local: DomainPolicy{DANEOnly: true, Override: ignoreDANE},
		level: Authenticated, check: CheckDANE, basis: BasisLocal, overrides: "DANE"},

	// REQUIRETLS, RFC 8689 §4.2.1.
	{name: "8689 §4.2.1: REQUIRETLS refuses a host of an insecure MX answer no policy validates", insecure: true, msg: requireTLS,
		refused: 550, reason: "REQUIRETLS"},
	{name: "8689 §4.2.1: REQUIRETLS, secure MX answer: the server is authenticated by the WebPKI", msg: requireTLS,
		level: Authenticated, check: CheckWebPKI, basis: BasisREQUIRETLS},
	{name: "8689 §4.2.1: REQUIRETLS, insecure MX answer validated by an enforced policy", insecure: true, sts: stsEnforce, msg: requireTLS,
		level: Authenticated, check: CheckWebPKI, basis: BasisMTASTS},
	{name: "8689 §4.2.1: REQUIRETLS, insecure MX answer validated by a testing policy", insecure: true, sts: stsTesting, msg: requireTLS,
		level: Authenticated, check: CheckWebPKI, basis: BasisREQUIRETLS},
	{name: "8689 §4.2.1: a preloaded policy does not validate an insecure MX answer", insecure: true, sts: preloadEnforce, msg: requireTLS,
		refused: 550},
	{name: "8689 §4.2.1: REQUIRETLS beside unusable TLSA records needs the WebPKI", tlsa: tlsaUnusable, msg: requireTLS,
		level: Authenticated, check: CheckWebPKI, basis: BasisREQUIRETLS},
	{name: "8689 §4.2.1: REQUIRETLS with usable TLSA records stays DANE", tlsa: tlsaUsable, msg: requireTLS,
		level: Authenticated, check: CheckDANE, basis: BasisDANE},
	{name: "8689 §4.2.1: REQUIRETLS, insecure MX answer, DANE alone does not validate the host", tlsa: tlsaUsable, insecure: true, msg: requireTLS,
		refused: 550},

	// Address literals: no DNS-based policy.
	{name: "an address literal: opportunistic", tlsa: tlsaNone,
		level: Opportunistic, check: CheckNone, basis: NoPolicy},
	{name: "an address literal with local require TLS", tlsa: tlsaNone, local: DomainPolicy{RequireTLS: true},
		level: Encrypted, check: CheckNone, basis: BasisLocal},
	{name: "an address literal under DANE only is refused", tlsa: tlsaNone, local: DomainPolicy{DANEOnly: true},
		refused: 451, recorded: tlsrpt.ResultDANERequired},
}

var decideNow = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// facts builds the facts of a row.
func (tc decideCase) facts(t *testing.T) *hostFacts {
	t.Helper()
	msg := tc.msg
	d := &decision{t: &target{domain: decideDomain, port: 25, mxSecure: !tc.insecure, literal: tc.tlsa == tlsaNone},
		local: tc.local, msg: &msg, now: decideNow}
	f := &hostFacts{d: d, host: decideHost_, noPolicy: tlsrpt.NewPolicy(tlsrpt.PolicyTypeNoPolicyFound, decideDomain, nil, nil)}
	record := func(s string) dane.TLSARecord {
		r, err := dane.ParseTLSARecord(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	switch tc.tlsa {
	case tlsaAbsent:
		f.dane = &dane.Requirement{Outcome: dane.NotApplicable, Host: decideHost_, Port: 25, MXSecure: !tc.insecure}
	case tlsaUsable:
		f.dane = &dane.Requirement{Outcome: dane.AuthenticationRequired, Host: decideHost_, BaseDomain: decideHost_, Port: 25, MXSecure: !tc.insecure,
			Records: []dane.TLSARecord{record("3 1 1 " + strings.Repeat("ab", 32))}}
	case tlsaUnusable:
		f.dane = &dane.Requirement{Outcome: dane.TLSRequired, Host: decideHost_, BaseDomain: decideHost_, Port: 25, MXSecure: !tc.insecure,
			Records: []dane.TLSARecord{record("0 1 1 " + strings.Repeat("ab", 32))}}
	case tlsaFailed:
		f.daneErr = errors.New("SERVFAIL")
	}
	if f.dane != nil && f.dane.Outcome != dane.NotApplicable {
		f.daneReport = tlsrpt.NewPolicy(tlsrpt.PolicyTypeTLSA, decideDomain, f.dane.PolicyStrings(), []string{decideHost_})
	}
	f.tlsaReport = tlsrpt.NewPolicy(tlsrpt.PolicyTypeTLSA, decideDomain, nil, []string{decideHost_})
	policy := func(mode sts.Mode, mx string) *sts.Policy {
		return &sts.Policy{Mode: mode, MX: []string{mx}, MaxAge: 24 * time.Hour,
			PolicyString: []string{"version: STSv1", "mode: " + string(mode), "mx: " + mx, "max_age: 86400"}}
	}
	report := tlsrpt.NewPolicy(tlsrpt.PolicyTypeSTS, decideDomain, nil, nil)
	switch tc.sts {
	case stsEnforce:
		d.sts = &stsState{policy: policy(sts.ModeEnforce, decideHost_), source: "fetched", report: report}
	case stsEnforceOther:
		d.sts = &stsState{policy: policy(sts.ModeEnforce, "mx.elsewhere.example"), source: "fetched", report: report}
	case stsTesting:
		d.sts = &stsState{policy: policy(sts.ModeTesting, "*.example.com"), source: "cache", report: report}
	case stsTestingOther:
		d.sts = &stsState{policy: policy(sts.ModeTesting, "mx.elsewhere.example"), source: "cache", report: report}
	case stsModeNone:
		d.sts = &stsState{source: "fetched"}
	case stsFailed:
		d.sts = &stsState{err: errors.New("policy host refused the connection"), report: report}
	case preloadEnforce:
		d.sts = &stsState{policy: policy(sts.ModeEnforce, decideHost_), preloaded: true, source: "local policy", report: report}
	}
	return f
}

func TestDecideHost(t *testing.T) {
	for _, tc := range decideCases {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.facts(t)
			v := decideHost(f)
			if got := strings.Join(v.overrides, ","); got != tc.overrides {
				t.Errorf("overrides used %q, want %q", got, tc.overrides)
			}
			if tc.refused != 0 {
				de := asError(v.err)
				if v.req != nil || de == nil || de.Code != tc.refused {
					t.Fatalf("verdict %+v (%v), want a refusal with %d", v.req, v.err, tc.refused)
				}
				if !strings.Contains(de.Message, tc.reason) {
					t.Errorf("refusal %q does not say %q", de.Message, tc.reason)
				}
				switch {
				case tc.recorded == "" && v.failure != nil:
					t.Errorf("refusal recorded as %+v, want nothing recorded", v.failure)
				case tc.recorded != "" && (v.failure == nil || v.failure.result != tc.recorded || v.failure.reason != tc.code):
					t.Errorf("refusal recorded as %+v, want %s with code %q", v.failure, tc.recorded, tc.code)
				}
				return
			}
			req := v.req
			if v.err != nil || req == nil {
				t.Fatalf("refused: %v", v.err)
			}
			if req.Level != tc.level || req.Check != tc.check || req.Basis != tc.basis {
				t.Errorf("requirement %s, check %s, basis %s; want %s, %s, %s", req.Level, req.Check, req.Basis, tc.level, tc.check, tc.basis)
			}
			if !strings.Contains(req.Reason, tc.reason) {
				t.Errorf("reason %q does not say %q", req.Reason, tc.reason)
			}
			if req.REQUIRETLS != tc.msg.RequireTLS {
				t.Errorf("REQUIRETLS %v, want %v", req.REQUIRETLS, tc.msg.RequireTLS)
			}
			if req.report.Type == "" {
				t.Error("no TLS-RPT policy to record the sessions under")
			}
			if req.record == tc.msg.TLSReport {
				t.Errorf("sessions recorded: %v, for a TLS-RPT report: %v", req.record, tc.msg.TLSReport)
			}
			// Under a policy, the sessions are recorded under it; a failed
			// MTA-STS look-up is reported with the sessions that go ahead.
			switch {
			case req.Basis == BasisDANE || req.Basis == BasisDANEUnusable:
				if req.report.Type != tlsrpt.PolicyTypeTLSA {
					t.Errorf("sessions recorded under a %s policy, want tlsa", req.report.Type)
				}
			case req.Basis == BasisMTASTS || req.Basis == BasisPreloaded:
				if req.report.Type != tlsrpt.PolicyTypeSTS || req.STS == nil {
					t.Errorf("sessions recorded under a %s policy (STS %v), want sts", req.report.Type, req.STS)
				}
			case req.Basis == NoPolicy && tc.sts != stsFailed:
				if req.report.Type != tlsrpt.PolicyTypeNoPolicyFound {
					t.Errorf("sessions recorded under a %s policy, want no-policy-found", req.report.Type)
				}
			}
			if (req.stsErr != nil) != (tc.sts == stsFailed && tc.tlsa != tlsaUsable && tc.tlsa != tlsaUnusable) {
				t.Errorf("MTA-STS failure reported with the sessions: %v", req.stsErr)
			}
		})
	}
}

// TestDecideHostIsPure: the same facts give the same verdict, and
// deciding changes none of them.
func TestDecideHostIsPure(t *testing.T) {
	for _, tc := range decideCases {
		f := tc.facts(t)
		before := *f.d
		a, b := decideHost(f), decideHost(f)
		if (a.err == nil) != (b.err == nil) || (a.req != nil && (a.req.Level != b.req.Level || a.req.Reason != b.req.Reason)) {
			t.Errorf("%s: two verdicts on the same facts differ", tc.name)
		}
		if f.d.t != before.t || f.d.sts != before.sts || f.d.msg != before.msg {
			t.Errorf("%s: deciding changed the facts", tc.name)
		}
	}
}

// TestExplainHasNoSideEffects: Explain makes the decision a delivery
// makes, and neither logs the override it uses nor records the refusal
// it finds for TLS-RPT; the delivery does both.
func TestExplainHasNoSideEffects(t *testing.T) {
	other := tlsLeaf(t)
	dw := newDANEWorld(t, testenv.SMTPOptions{Certificate: &other})
	var log lockedBuffer
	c := dw.client(func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&log, nil))
		cfg.Policy.Domains = map[string]DomainPolicy{
			"secure.example": {Override: Override{IgnoreDANE: true, Reason: "ticket 42"}},
			"dane.only":      {DANEOnly: true},
		}
	})
	const used = "DANE not enforced by operator override"
	ex, err := c.Explain(t.Context(), "secure.example")
	if err != nil || len(ex.Hosts) != 1 || ex.Hosts[0].Requirement == nil || ex.Hosts[0].Requirement.Level != Opportunistic {
		t.Fatalf("explanation %+v, %v", ex, err)
	}
	if strings.Contains(log.String(), used) {
		t.Errorf("Explain logged the override as used:\n%s", log.String())
	}
	// A DANE-only domain without TLSA records: the host is refused, and
	// only a delivery records it.
	if err := dw.w.DNS.Zone("dane.only.", testenv.Secure); err != nil {
		t.Fatal(err)
	}
	dw.mx("dane.only", 10, "mx.dane.only", testenv.SMTPOptions{})
	if ex, _ := c.Explain(t.Context(), "dane.only"); len(ex.Hosts) != 1 || ex.Hosts[0].Err == nil {
		t.Fatalf("explanation %+v, want the host refused", ex)
	}
	if n := len(dw.rec.all()); n != 0 {
		t.Errorf("Explain recorded %d TLS-RPT sessions", n)
	}
	want(t, deliver(t, c, msg("bob@secure.example"))[0], Delivered, "")
	if n := strings.Count(log.String(), used); n != 1 {
		t.Errorf("the delivery logged the override %d times, want once:\n%s", n, log.String())
	}
	deliver(t, c, msg("bob@dane.only"))
	found := false
	for _, s := range dw.rec.all() {
		if s.Failure != nil && s.Failure.ResultType == tlsrpt.ResultDANERequired {
			found = true
		}
	}
	if !found {
		t.Errorf("the delivery did not record the dane-required refusal: %+v", dw.rec.all())
	}
}

// lockedBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
