package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sealpost/sealpost/sts"
)

// Thresholds for max_age. RFC 8461 §3.2 expects "weeks or greater" so that
// a policy outlives the gaps between a sender's deliveries; below a day,
// senders that see the domain rarely are back to trust on first use.
const (
	minMaxAge    = 24 * time.Hour
	suggestedAge = 7 * 24 * time.Hour
)

// checkSTS checks the MTA-STS set-up through the sts package: the
// _mta-sts TXT record (RFC 8461 §3.1), the policy and the certificate of
// its host (§3.2, §3.3), the mode, max_age, and whether the mx patterns
// cover every MX host (§4.1). It returns the policy senders would apply
// (nil for none, or for mode none).
func checkSTS(ctx context.Context, env *Env, domain string, set *mxSet, rep *Report) *sts.Policy {
	certs := &peerCertificates{}
	client := &sts.Client{
		Resolver:   env.resolver(),
		HTTPClient: certs.client(env.httpClient()),
		RootCAs:    env.RootCAs,
		Timeout:    env.timeout(),
		Now:        env.now,
	}
	recName, host := "_mta-sts."+domain, "mta-sts."+domain
	hasRecord, ok := checkSTSRecord(ctx, client, env, domain, rep)
	if !ok {
		return nil
	}
	noPolicy := func() {
		rep.add(AreaSTS, recName, OK, "no MTA-STS record: senders apply no MTA-STS policy",
			"to have senders insist on TLS with valid certificates, publish a policy (RFC 8461 §3)")
	}
	if !hasRecord && !resolves(ctx, env, host) {
		noPolicy()
		return nil
	}
	// Without a record, a policy host that serves a policy anyway is worth
	// knowing about: its owner believes MTA-STS is on.
	pol, err := client.FetchPolicy(ctx, domain)
	switch {
	case err != nil && !hasRecord:
		noPolicy()
		return nil
	case err != nil:
		reportFetchError(env, host, err, rep)
		return nil
	case !hasRecord:
		rep.add(AreaSTS, recName, Error, fmt.Sprintf("a policy is served at https://%s/.well-known/mta-sts.txt, but there is no _mta-sts TXT record, so senders never fetch it", host),
			fmt.Sprintf("publish the record:\n%s. TXT \"v=STSv1; id=%s\"", recName, newPolicyID(env)))
		return nil
	}
	judgePolicyHost(env, host, certs.leaf(), rep)
	judgePolicy(domain, pol, set, rep)
	if pol.Mode == sts.ModeNone {
		return nil
	}
	return pol
}

// reportFetchError says why the policy could not be had: a fetch failure
// (RFC 8461 §3.3), a certificate the WebPKI refuses, an invalid policy
// (§3.2). Senders without a cached policy then apply none; those with one
// keep it until it expires (§5.1).
func reportFetchError(env *Env, host string, err error, rep *Report) {
	const consequence = "; senders apply no policy (or a cached one, until it expires)"
	switch {
	case errors.Is(err, sts.ErrWebPKI):
		msg, fix := describeHostCertificate(env, host, err)
		rep.add(AreaSTS, host, Error, msg+consequence, fix)
	case errors.Is(err, sts.ErrInvalidPolicy):
		fix := "a policy has lines version: STSv1, mode: enforce|testing|none, max_age: <seconds> and mx: <host or *.domain> (RFC 8461 §3.2)"
		if strings.Contains(causeOf(err), "max_age") {
			fix = "max_age is a number of seconds, at most 31557600 (about a year); 604800 (a week) or more is usual"
		}
		rep.add(AreaSTS, host, Error, "invalid policy: "+causeOf(err)+consequence, fix)
	default:
		rep.add(AreaSTS, host, Error, "policy fetch failed: "+causeOf(err)+consequence,
			fmt.Sprintf("serve the policy at https://%s/.well-known/mta-sts.txt with status 200, Content-Type text/plain, and no redirect", host))
	}
}

// judgePolicyHost reports the policy host's certificate after a successful
// fetch: how long it has left.
func judgePolicyHost(env *Env, host string, leaf *x509.Certificate, rep *Report) {
	if leaf == nil {
		return // an injected client that does not report TLS
	}
	rep.add(AreaSTS, host, OK, fmt.Sprintf("policy served over HTTPS; certificate valid until %s", leaf.NotAfter.UTC().Format(time.DateOnly)), "")
	if left := leaf.NotAfter.Sub(env.now()); left < expiryWarning {
		rep.add(AreaSTS, host, Warning, fmt.Sprintf("certificate expires in %s: senders will then stop refreshing the policy", days(left)),
			"renew it, and let an ACME client renew it from now on")
	}
}

// describeHostCertificate explains a WebPKI failure of the policy host.
func describeHostCertificate(env *Env, host string, err error) (msg, fix string) {
	var verr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	var leaf *x509.Certificate
	if errors.As(err, &verr) && len(verr.UnverifiedCertificates) > 0 {
		leaf = verr.UnverifiedCertificates[0]
	}
	switch {
	case leaf != nil && env.now().After(leaf.NotAfter):
		return fmt.Sprintf("the policy host's certificate expired on %s", leaf.NotAfter.UTC().Format(time.DateOnly)),
			"renew it, and let an ACME client renew it from now on"
	case errors.As(err, &hostErr):
		return fmt.Sprintf("the policy host's certificate does not name %s (it names %s)", host, certNames(hostErr.Certificate)),
			fmt.Sprintf("get a certificate whose subjectAltName includes %s", host)
	case leaf != nil:
		return fmt.Sprintf("the policy host's certificate is not valid under the WebPKI: %v", verr.Err),
			"use a certificate from a public CA, and send the intermediate certificates with it"
	}
	return "the policy host's certificate is not valid: " + causeOf(err),
		"use a certificate from a public CA that names " + host
}

// resolves reports whether name has an address (so a fetch can be tried).
func resolves(ctx context.Context, env *Env, name string) bool {
	lctx, cancel := context.WithTimeout(ctx, env.timeout())
	defer cancel()
	ans, err := env.resolver().LookupHost(lctx, name)
	return err == nil && len(ans.Addrs()) > 0
}

// newPolicyID suggests an id for a new record: the time, which also tells
// the owner when the policy last changed.
func newPolicyID(env *Env) string { return env.now().UTC().Format("20060102150405") }

// judgePolicy reports the mode, max_age, mx values that can match nothing
// and the MX hosts the patterns do not cover.
func judgePolicy(domain string, pol *sts.Policy, set *mxSet, rep *Report) {
	subject := "mta-sts." + domain
	changeID := fmt.Sprintf(", then change the id in _mta-sts.%s so that senders fetch it again", domain)
	mx := "no mx"
	if len(pol.MX) > 0 {
		mx = "mx " + strings.Join(pol.MX, ", ")
	}
	rep.add(AreaSTS, subject, OK, fmt.Sprintf("policy: mode %s, max_age %d (%s), %s",
		pol.Mode, int64(pol.MaxAge/time.Second), humanDuration(pol.MaxAge), mx), "")
	for _, d := range pol.Deviations {
		// sealpost reads these as their author meant; senders that
		// follow RFC 8461 §3.2 to the letter refuse the whole policy.
		rep.add(AreaSTS, subject, Warning, "policy "+d+"; stricter senders refuse the whole policy and apply none",
			"write only \"key: value\" lines, one mx pattern per mx line"+changeID)
	}
	switch pol.Mode {
	case sts.ModeTesting:
		rep.add(AreaSTS, subject, Warning, "mode testing: senders report failures but deliver anyway, so an attacker can still strip TLS",
			"once TLS-RPT reports show no failures, set mode: enforce"+changeID)
	case sts.ModeNone:
		// RFC 8461 §8.3: mode none is how a policy is withdrawn.
		rep.add(AreaSTS, subject, Warning, "mode none: senders drop the policy and apply none",
			"if MTA-STS is being withdrawn, keep serving mode none for the old max_age, then remove the record; otherwise set mode: enforce"+changeID)
		return
	}
	if pol.MaxAge < minMaxAge {
		rep.add(AreaSTS, subject, Warning, fmt.Sprintf("max_age %d is under a day: the policy lapses between visits of senders that mail the domain rarely (RFC 8461 §3.2 expects weeks)", int64(pol.MaxAge/time.Second)),
			fmt.Sprintf("max_age: %d (a week) or more, up to 31557600", int64(suggestedAge/time.Second))+changeID)
	}
	for _, v := range mxValues(pol) {
		switch {
		case isAddress(strings.Trim(v, "[]")):
			// RFC 8461 §4.1 matches MX host names, and an MX record
			// names a host: an address never matches.
			rep.add(AreaSTS, subject, Warning, fmt.Sprintf("mx value %q is an address, which never matches an MX host", v),
				"name the MX host instead"+changeID)
		case !validMXValue(v):
			rep.add(AreaSTS, subject, Warning, fmt.Sprintf("mx value %q is not a host name or *.domain pattern and is ignored", v),
				"write host names (mx.example.com) or one-label wildcards (*.example.com)"+changeID)
		}
	}
	sev := Error
	if pol.Mode == sts.ModeTesting {
		sev = Warning
	}
	for _, h := range set.Hosts {
		if pol.Match(h.Name) {
			continue
		}
		// RFC 8461 §4.1: a host that matches no pattern fails the policy.
		consequence := "senders that honour the policy will not deliver to it"
		if pol.Mode == sts.ModeTesting {
			consequence = "senders report it now and will refuse it under mode enforce"
		}
		rep.add(AreaSTS, h.Name, sev, "MX host not covered by the policy's mx patterns: "+consequence,
			fmt.Sprintf("add \"mx: %s\" to the policy", h.Name)+changeID)
	}
}

// mxValues returns the values of the policy's mx lines, as written.
func mxValues(pol *sts.Policy) []string {
	var out []string
	for _, line := range pol.PolicyString {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "mx" {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// validMXValue reports whether sts.ParsePolicy takes v as an mx pattern:
// the parser itself judges it, in a policy with nothing else to fail.
func validMXValue(v string) bool {
	_, err := sts.ParsePolicy("version: STSv1\nmode: enforce\nmax_age: 86400\nmx: " + v + "\n")
	return err == nil
}

// humanDuration writes a max_age the way people think of it.
func humanDuration(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d >= 365*day:
		return "about a year"
	case d >= 2*7*day && d%(7*day) == 0:
		return fmt.Sprintf("%d weeks", d/(7*day))
	case d >= 2*day:
		return fmt.Sprintf("%d days", d/day)
	case d >= day:
		return "1 day"
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", d/time.Hour)
	}
	return d.String()
}

// checkSTSRecord looks up the _mta-sts TXT record through
// sts.Client.LookupRecord, which applies RFC 8461 §3.1: records not
// starting with v=STSv1 are discarded, and exactly one valid record must
// remain. hasRecord says whether it does; ok is false when the record is
// broken or the look-up failed, which ends the MTA-STS check.
func checkSTSRecord(ctx context.Context, client *sts.Client, env *Env, domain string, rep *Report) (hasRecord, ok bool) {
	name := "_mta-sts." + domain
	lctx, cancel := context.WithTimeout(ctx, env.timeout())
	defer cancel()
	rec, err := client.LookupRecord(lctx, domain)
	switch {
	case err == nil:
		rep.add(AreaSTS, name, OK, "record v=STSv1, policy id "+rec.ID, "")
		return true, true
	case errors.Is(err, sts.ErrNoRecord):
		return false, true
	case errors.Is(err, sts.ErrSeveralRecords):
		rep.add(AreaSTS, name, Error, causeOf(err)+": senders see no policy at all (RFC 8461 §3.1)",
			"keep exactly one v=STSv1 record")
	case errors.Is(err, sts.ErrInvalidRecord):
		rep.add(AreaSTS, name, Error, "invalid record, so senders see no policy: "+strings.TrimPrefix(causeOf(err), "TXT record "),
			fmt.Sprintf(`write it as "v=STSv1; id=%s" (id: 1 to 32 letters and digits)`, newPolicyID(env)))
	case errors.Is(err, sts.ErrTemporaryDNS):
		rep.add(AreaSTS, name, Error, "TXT look-up failed: "+dnsProblem(err), dnsFix(err, name))
	default:
		rep.add(AreaSTS, name, Error, causeOf(err), "")
	}
	return false, false
}

// causeOf returns the message of an sts error's cause, without the
// package's and the domain's prefixes, which the finding's subject says.
func causeOf(err error) string {
	var serr *sts.Error
	if errors.As(err, &serr) && serr.Err != nil {
		return serr.Err.Error()
	}
	return err.Error()
}
