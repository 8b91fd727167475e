package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/sts"
)

// expiryWarning is how long before its end a certificate is worth a
// warning: enough to renew it by hand, more than ACME clients leave.
const expiryWarning = 14 * 24 * time.Hour

// checkHosts connects to every address of every MX host, at once, and
// judges what each presented: STARTTLS at all, the TLS version, the
// certificate under the WebPKI rules MTA-STS applies (RFC 8461 §4.2), and
// under the host's TLSA records when DANE applies (RFC 7672 §3).
func checkHosts(ctx context.Context, env *Env, set *mxSet, pol *sts.Policy, reqs map[string]*dane.Requirement, rep *Report) {
	var probes []*probe
	var wg sync.WaitGroup
	for _, h := range set.Hosts {
		sni := h.Name
		if req := reqs[h.Name]; req != nil && req.BaseDomain != "" {
			sni = req.BaseDomain // RFC 7672 §8.1
		}
		for _, addr := range h.Addrs[:min(len(h.Addrs), maxAddrsPerHost)] {
			p := &probe{}
			probes = append(probes, p)
			wg.Add(1)
			go func() {
				defer wg.Done()
				*p = probeMX(ctx, env, h.Name, addr, sni)
			}()
		}
	}
	wg.Wait()
	if len(probes) == 0 {
		return
	}
	if noneConnected(probes) {
		// Many networks block outgoing port 25; say so once rather than
		// blaming every host.
		rep.add(AreaHosts, "", Warning, "could not connect to any MX host on port 25, so STARTTLS and certificates were not checked",
			"run the check from a host that may make outgoing connections to port 25 (many home and cloud networks block it)")
		return
	}
	several := make(map[string]bool)
	for _, h := range set.Hosts {
		several[h.Name] = len(h.Addrs) > 1
	}
	for _, p := range probes {
		subject := p.Host
		if several[p.Host] {
			subject = fmt.Sprintf("%s [%s]", p.Host, p.Addr)
		}
		judgeProbe(env, p, subject, pol, reqs[p.Host], rep)
	}
}

// noRouteHere reports whether a dial failed for want of a route from this
// machine, rather than because of the host.
func noRouteHere(err error) bool {
	return errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.EADDRNOTAVAIL)
}

func noneConnected(probes []*probe) bool {
	for _, p := range probes {
		if p.Connected {
			return false
		}
	}
	return true
}

// judgeProbe turns one conversation into findings.
func judgeProbe(env *Env, p *probe, subject string, pol *sts.Policy, req *dane.Requirement, rep *Report) {
	daneHost := req != nil && req.Outcome != dane.NotApplicable
	switch {
	case !p.Connected && p.Addr.Is6() && noRouteHere(p.Err):
		// The machine running the check has no IPv6 route; senders that
		// have one may well reach the address.
		rep.add(AreaHosts, subject, Warning, "not checked: this machine cannot reach IPv6 addresses ("+describeSMTPError(p.Err)+")",
			"run the check from a host with IPv6 connectivity to cover this address")
		return
	case p.Err != nil:
		rep.add(AreaHosts, subject, Error, describeSMTPError(p.Err), "make sure the host accepts SMTP connections on port 25 from anywhere")
		return
	case !p.STARTTLS:
		msg := "does not offer STARTTLS: mail to it travels in plaintext"
		if daneHost || enforced(pol) {
			msg += ", and senders that honour the domain's DANE or MTA-STS records will not deliver to it"
		}
		rep.add(AreaHosts, subject, Error, msg, fmt.Sprintf("enable STARTTLS with a certificate for %s", p.Host))
		return
	case p.TLSErr != nil:
		rep.add(AreaHosts, subject, Error, "STARTTLS fails: "+describeSMTPError(p.TLSErr),
			"check the server's TLS configuration (certificate, key and protocol versions)")
		return
	}
	cs := *p.State
	client := &sts.Client{RootCAs: env.RootCAs, Now: env.now}
	err := client.VerifyConnection(cs, p.Host)
	switch {
	case err == nil:
		leaf := cs.PeerCertificates[0]
		rep.add(AreaHosts, subject, OK, fmt.Sprintf("STARTTLS with %s; certificate valid for %s until %s", tls.VersionName(cs.Version), p.Host, leaf.NotAfter.UTC().Format(time.DateOnly)), "")
		if left := leaf.NotAfter.Sub(env.now()); left < expiryWarning {
			rep.add(AreaHosts, subject, Warning, fmt.Sprintf("certificate expires in %s", days(left)), "renew it, and let an ACME client renew it from now on")
		}
	default:
		sev, consequence := webPKISeverity(pol, p.Host, daneHost)
		rep.add(AreaHosts, subject, sev, describeTLSProblem(err, cs, p.Host)+consequence, certFix(err, cs, p.Host))
	}
	if req != nil {
		verifyDANE(req, subject, cs.PeerCertificates, env, rep)
	}
}

// webPKISeverity says how much a certificate that fails RFC 8461 §4.2
// matters for this host: under an enforced policy that names the host,
// senders refuse it; in testing mode they report it; without MTA-STS it
// only stands in the way of deploying MTA-STS; for a DANE host it does not
// matter to DANE senders.
func webPKISeverity(pol *sts.Policy, host string, daneHost bool) (Severity, string) {
	switch {
	case pol != nil && pol.Mode == sts.ModeEnforce && pol.Match(host):
		return Error, "; senders that honour MTA-STS will not deliver to this host"
	case pol != nil && pol.Mode == sts.ModeTesting && pol.Match(host):
		return Warning, "; MTA-STS senders report this, and would refuse the host under mode enforce"
	case daneHost:
		return OK, "; DANE senders do not need it to be, MTA-STS senders would"
	}
	return Warning, "; opportunistic senders accept it, but MTA-STS needs a valid one"
}

func enforced(pol *sts.Policy) bool { return pol != nil && pol.Mode == sts.ModeEnforce }

// describeTLSProblem says, in terms a server's operator knows, why the
// session failed the RFC 8461 §4.2 rule.
func describeTLSProblem(err error, cs tls.ConnectionState, host string) string {
	if cs.Version < tls.VersionTLS12 {
		return fmt.Sprintf("negotiates %s, older than the TLS 1.2 MTA-STS requires (RFC 8461 §4.2)", tls.VersionName(cs.Version))
	}
	if len(cs.PeerCertificates) == 0 {
		return "the server sent no certificate"
	}
	leaf := cs.PeerCertificates[0]
	switch {
	case errors.Is(err, sts.ErrCertificateExpired):
		return fmt.Sprintf("certificate expired on %s", leaf.NotAfter.UTC().Format(time.DateOnly))
	case errors.Is(err, sts.ErrHostMismatch):
		return fmt.Sprintf("certificate is not valid for %s (it names %s)", host, certNames(leaf))
	case errors.Is(err, sts.ErrCertificateNotTrusted):
		return fmt.Sprintf("certificate is not trusted (issuer %q: self-signed, a private CA, or intermediate certificates missing)", leaf.Issuer.CommonName)
	}
	var serr *sts.Error
	if errors.As(err, &serr) && serr.Err != nil {
		return "certificate check fails: " + serr.Err.Error()
	}
	return "certificate check fails: " + err.Error()
}

func certFix(err error, cs tls.ConnectionState, host string) string {
	switch {
	case cs.Version < tls.VersionTLS12:
		return "enable TLS 1.2 and 1.3 on the server"
	case errors.Is(err, sts.ErrCertificateExpired):
		return "renew the certificate, and let an ACME client renew it from now on"
	case errors.Is(err, sts.ErrHostMismatch):
		return fmt.Sprintf("get a certificate whose subjectAltName includes %s", host)
	case errors.Is(err, sts.ErrCertificateNotTrusted):
		return "use a certificate from a public CA, and send the intermediate certificates with it"
	}
	return "use TLS 1.2 or newer and a certificate from a public CA that names the host"
}

// certNames lists a certificate's DNS names, or its common name when it has
// none.
func certNames(c *x509.Certificate) string {
	names := c.DNSNames
	if len(names) == 0 {
		if c.Subject.CommonName == "" {
			return "no name"
		}
		return "only the common name " + c.Subject.CommonName
	}
	if len(names) > 4 {
		return strings.Join(names[:4], ", ") + fmt.Sprintf(" and %d more", len(names)-4)
	}
	return strings.Join(names, ", ")
}

// days renders a duration in whole days ("3 days", "less than a day").
func days(d time.Duration) string {
	n := int(d / (24 * time.Hour))
	switch {
	case d < 0:
		return "no time: it has expired"
	case n == 0:
		return "less than a day"
	case n == 1:
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}
