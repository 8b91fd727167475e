package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
	"github.com/sealpost/sealpost/dane"
	"github.com/sealpost/sealpost/internal/dnsname"
	"github.com/sealpost/sealpost/tlsrpt"
)

// checkTLSRPT looks at the _smtp._tls record (RFC 8460 §3) through the
// tlsrpt package, and at whether mail reports can reach their addresses.
func checkTLSRPT(ctx context.Context, env *Env, domain string, rep *Report) {
	name := "_smtp._tls." + domain
	lctx, cancel := context.WithTimeout(ctx, env.timeout())
	defer cancel()
	rec, err := tlsrpt.LookupRecord(lctx, env.resolver(), domain)
	switch {
	case errors.Is(err, tlsrpt.ErrNoRecord):
		rep.add(AreaTLSRPT, name, Warning,
			"no TLS-RPT record: you will not hear from senders that fail to reach your MX hosts securely",
			fmt.Sprintf("publish one, naming an address that reads reports:\n%s. TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@%s\"", name, domain))
		return
	case errors.Is(err, tlsrpt.ErrMultipleRecords):
		// RFC 8460 §3: with more than one record, the domain is treated
		// as not implementing TLS-RPT.
		rep.add(AreaTLSRPT, name, Error, "several TXT records start with v=TLSRPTv1: senders send no reports at all",
			"keep exactly one v=TLSRPTv1 record; one record may list several rua URIs, separated by commas")
		return
	case errors.Is(err, tlsrpt.ErrInvalidRecord):
		reason := err.Error()
		var re *tlsrpt.RecordError
		if errors.As(err, &re) {
			reason = fmt.Sprintf("%s: %s", re.Record, re.Reason)
		}
		rep.add(AreaTLSRPT, name, Error, "invalid record, senders send no reports: "+reason,
			fmt.Sprintf(`write it as "v=TLSRPTv1; rua=mailto:tlsrpt@%s" (mailto: and https: URIs, separated by commas)`, domain))
		return
	case err != nil:
		rep.add(AreaTLSRPT, name, Error, "look-up failed: "+dnsProblem(err), dnsFix(err, name))
		return
	}
	uris := make([]string, len(rec.RUA))
	for i, r := range rec.RUA {
		uris[i] = r.URI
	}
	rep.add(AreaTLSRPT, name, OK, "reports go to "+strings.Join(uris, ", "), "")
	for _, r := range rec.RUA {
		if r.IsMail() {
			checkReportAddress(ctx, env, name, r.Address, rep)
		}
	}
}

// checkReportAddress warns when the domain of a mailto: destination
// cannot receive mail, so every report would bounce.
func checkReportAddress(ctx context.Context, env *Env, subject, addr string, rep *Report) {
	at := strings.LastIndexByte(addr, '@')
	domain := dnsname.Fold(addr[at+1:])
	lctx, cancel := context.WithTimeout(ctx, env.timeout())
	defer cancel()
	ans, err := env.resolver().Lookup(lctx, domain, dns.TypeMX)
	switch {
	case ans == nil:
		return // a passing DNS failure says nothing about the address
	case errors.Is(err, dane.ErrNXDomain):
		rep.add(AreaTLSRPT, subject, Error, fmt.Sprintf("reports to %s cannot be delivered: %s does not exist", addr, domain),
			"name an address whose domain receives mail")
	case err == nil && len(ans.MX()) == 1 && ans.MX()[0].Mx == ".":
		rep.add(AreaTLSRPT, subject, Error, fmt.Sprintf("reports to %s cannot be delivered: %s has a null MX", addr, domain),
			"name an address whose domain receives mail")
	}
}
