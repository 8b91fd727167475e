package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/internal/testenv"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/tlsrpt"
)

// A scenario is one recipient domain of the demo: how the loopback world
// sets it up, and what must become of mail sent to it. Every scenario has
// one MX host, "mx.<domain>", in the domain's own zone.
type scenario struct {
	// Domain is the recipient domain; the recipient is "bob@" + Domain.
	Domain string

	// Zone is how DNS presents the domain's zone: Secure (DNSSEC-signed)
	// or Insecure.
	Zone testenv.Security
	// NullMX publishes "MX 0 ." (RFC 7505) and no MX host.
	NullMX bool
	// NoSTARTTLS: the MX host offers no STARTTLS at all.
	NoSTARTTLS bool
	// Cert says how the MX host's certificate deviates from a valid one
	// issued by the world's CA for its name.
	Cert testenv.LeafOptions
	// TLSA publishes a DANE-EE "3 1 1" record pinning the MX host's key.
	TLSA bool
	// STS publishes an MTA-STS policy in this mode naming the MX host;
	// empty publishes none.
	STS string
	// TLSRPT publishes an _smtp._tls record asking for reports by mail.
	TLSRPT bool
	// RequireTLS sends the recipient a message of its own that carries
	// REQUIRETLS (RFC 8689), a property of the whole message; REQUIRETLS
	// says whether the MX host advertises the extension.
	RequireTLS, REQUIRETLS bool
	// Attack puts an on-path attacker in front of the MX host that strips
	// STARTTLS from its EHLO reply (RFC 3207 §6), or answers STARTTLS
	// itself with a self-signed certificate for the MX host's name. Zero
	// means no attacker.
	Attack testenv.AttackMode

	// Want is what must happen; run and the demo's test check it.
	Want want
}

// want is the expected outcome of a scenario's first delivery attempt.
type want struct {
	State queue.State
	// Auth is how the MX host must have been authenticated (delivered
	// mail only).
	Auth delivery.Authentication
	// Code is the enhanced status code of a refusal, "4.7.10".
	Code string
	// Failure is the TLS-RPT result type recorded for the domain, if any.
	Failure tlsrpt.ResultType
}

// sender is the domain the demo's mail comes from; its MX host receives
// the bounce.
const sender = "sender.example"

// scenarioTable returns the demo's recipient domains, one per case, in
// the order the table shows them.
func scenarioTable() []scenario {
	return []scenario{
		{
			Domain: "dane.example",
			Zone:   testenv.Secure, TLSA: true,
			// A self-signed certificate: DANE-EE pins the key, no CA is
			// involved (RFC 7672 §3.1.1).
			Cert: testenv.LeafOptions{SelfSigned: true},
			Want: want{State: queue.StateDelivered, Auth: delivery.DANEEE},
		},
		{
			Domain: "sts-enforce.example",
			Zone:   testenv.Insecure, STS: "enforce",
			Want: want{State: queue.StateDelivered, Auth: delivery.WebPKI},
		},
		{
			Domain: "sts-testing.example",
			Zone:   testenv.Insecure, STS: "testing", TLSRPT: true,
			Cert: testenv.LeafOptions{Expired: true},
			Want: want{State: queue.StateDelivered, Auth: delivery.UnauthenticatedTLS, Failure: tlsrpt.ResultCertificateExpired},
		},
		{
			Domain: "stripped-sts.example",
			Zone:   testenv.Insecure, STS: "enforce", TLSRPT: true, Attack: testenv.StripSTARTTLS,
			Want: want{State: queue.StatePending, Code: "4.7.10", Failure: tlsrpt.ResultSTARTTLSNotSupported},
		},
		{
			Domain: "stripped-dane.example",
			Zone:   testenv.Secure, TLSA: true, Attack: testenv.StripSTARTTLS,
			Want: want{State: queue.StatePending, Code: "4.7.10", Failure: tlsrpt.ResultSTARTTLSNotSupported},
		},
		{
			Domain: "forged-sts.example",
			Zone:   testenv.Insecure, STS: "enforce", TLSRPT: true, Attack: testenv.InterceptTLS,
			Want: want{State: queue.StatePending, Code: "4.7.5", Failure: tlsrpt.ResultCertificateNotTrusted},
		},
		{
			Domain: "nullmx.example",
			Zone:   testenv.Secure, NullMX: true,
			Want: want{State: queue.StateBounced, Code: "5.1.10"},
		},
		{
			Domain: "no-requiretls.example",
			Zone:   testenv.Secure, TLSA: true, RequireTLS: true,
			// DANE authenticates the host, but it does not promise to keep
			// to REQUIRETLS onwards (RFC 8689 §4.2.1).
			Want: want{State: queue.StateBounced, Code: "5.7.30"},
		},
		{
			Domain: "plain.example",
			Zone:   testenv.Insecure, NoSTARTTLS: true,
			// Opportunistic sessions are reported too, under
			// no-policy-found (RFC 8460 §4.3.1).
			Want: want{State: queue.StateDelivered, Auth: delivery.Plaintext, Failure: tlsrpt.ResultSTARTTLSNotSupported},
		},
	}
}

// unmet lists how a recipient's outcome differs from what its scenario
// wants; nil when it is as expected.
func (ro recipientOutcome) unmet() []string {
	var bad []string
	w, q := ro.Scenario.Want, ro.Queue
	if q.Attempts == 0 {
		return []string{"no delivery attempt was made"}
	}
	if q.State != w.State {
		bad = append(bad, fmt.Sprintf("state %v, want %v", q.State, w.State))
	}
	if w.State == queue.StateDelivered && ro.Result.Session.Auth != w.Auth {
		bad = append(bad, fmt.Sprintf("server authenticated by %v, want %v", ro.Result.Session.Auth, w.Auth))
	}
	// Over unauthenticated TLS under a check that was made, the session
	// must say why the check failed.
	if q.State == queue.StateDelivered && w.Auth == delivery.UnauthenticatedTLS && w.Failure != "" {
		if got := resultType(ro.Result.Session.CheckErr); got != w.Failure {
			bad = append(bad, fmt.Sprintf("the session's check error %v is of result type %q, want %s",
				ro.Result.Session.CheckErr, got, w.Failure))
		}
	}
	if got := enhanced(q.Last.Enhanced); w.Code != "" && got != w.Code {
		bad = append(bad, fmt.Sprintf("status %s, want %s", got, w.Code))
	}
	delivered := 0
	if q.State == queue.StateDelivered {
		delivered = 1
	}
	if ro.Received != delivered && !ro.Scenario.NullMX {
		bad = append(bad, fmt.Sprintf("the MX host received %d messages, want %d", ro.Received, delivered))
	}
	if a := ro.Attacker; a != nil && a.Transactions > 0 {
		bad = append(bad, fmt.Sprintf("%d mail transactions went through the attacker, want none", a.Transactions))
	}
	if a := ro.Attacker; a != nil && a.Handshakes > 0 {
		bad = append(bad, fmt.Sprintf("%d TLS handshakes with the attacker completed, want none", a.Handshakes))
	}
	if w.Failure != "" && !slices.ContainsFunc(ro.Failures, func(f tlsrpt.Failure) bool { return f.ResultType == w.Failure }) {
		bad = append(bad, fmt.Sprintf("no %s failure recorded for TLS-RPT", w.Failure))
	}
	return bad
}

// setup describes how the world publishes the scenario's domain.
func (sc scenario) setup() string {
	parts := []string{"unsigned zone"}
	if sc.Zone == testenv.Secure {
		parts[0] = "DNSSEC-signed zone"
	}
	switch {
	case sc.NullMX:
		return parts[0] + `, "MX 0 ." (null MX)`
	case sc.NoSTARTTLS:
		parts = append(parts, "MX host without STARTTLS")
	case sc.Cert.SelfSigned:
		parts = append(parts, "MX host with a self-signed certificate")
	case sc.Cert.Expired:
		parts = append(parts, "MX host with an expired certificate")
	default:
		parts = append(parts, "MX host with a valid certificate")
	}
	if sc.TLSA {
		parts = append(parts, "TLSA 3 1 1 pinning its key")
	}
	if sc.STS != "" {
		parts = append(parts, "MTA-STS policy in "+sc.STS+" mode")
	}
	if sc.TLSRPT {
		parts = append(parts, "_smtp._tls record")
	}
	if sc.RequireTLS {
		offers := "does not advertise"
		if sc.REQUIRETLS {
			offers = "advertises"
		}
		parts = append(parts, "a message with REQUIRETLS, which the MX host "+offers)
	}
	switch sc.Attack {
	case testenv.StripSTARTTLS:
		parts = append(parts, "an on-path attacker who strips STARTTLS")
	case testenv.InterceptTLS:
		parts = append(parts, "an on-path attacker who answers STARTTLS with a forged certificate")
	}
	return strings.Join(parts, ", ")
}
