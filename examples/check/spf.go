package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
	"github.com/sealpost/sealpost/dane"
)

// checkSPF looks for an SPF record on the MTA-STS policy host
// mta-sts.<domain>.
//
// RFC 8461 says nothing about SPF. The host exists only to serve the
// policy over HTTPS and never sends mail, but it has an address, so a
// forger can use its name in MAIL FROM or HELO, where receivers check SPF
// (RFC 7208 §2.3, §2.4). "v=spf1 -all" says the name sends no mail (RFC
// 7208 §5.1: "-all" fails every client); it is the common advice for
// every name that has an address and sends no mail. Its absence is a
// warning, not an error: DMARC on the parent domain covers forged From
// headers anyway, and mail delivery to the domain does not depend on it.
func checkSPF(ctx context.Context, env *Env, domain string, rep *Report) {
	host := "mta-sts." + domain
	lctx, cancel := context.WithTimeout(ctx, env.timeout())
	defer cancel()
	ans, err := env.resolver().Lookup(lctx, host, dns.TypeTXT)
	switch {
	case ans == nil:
		rep.add(AreaSPF, host, Warning, "TXT look-up failed: "+dnsProblem(err), dnsFix(err, host))
		return
	case errors.Is(err, dane.ErrNXDomain):
		return // no policy host: nothing anyone could forge
	}
	if len(ans.Chain) > 0 {
		target := strings.TrimSuffix(ans.Canonical, ".")
		// RFC 1034 §3.6.2: a CNAME has no other data beside it; SPF
		// evaluators follow it (RFC 7208 §4.4) to the target's record.
		if spf := spfRecords(ans.TXT()); len(spf) == 1 {
			rep.add(AreaSPF, host, OK, fmt.Sprintf("a CNAME for %s, whose SPF record applies: %s", target, spf[0]), "")
		} else {
			rep.add(AreaSPF, host, OK, fmt.Sprintf("a CNAME for %s (with no single SPF record); no record can sit beside a CNAME", target), "")
		}
		return
	}
	spf := spfRecords(ans.TXT())
	switch {
	case len(spf) == 0:
		rep.add(AreaSPF, host, Warning, "no SPF record: the policy host's name can be forged as a mail sender",
			fmt.Sprintf("say that the name sends no mail:\n%s. TXT \"v=spf1 -all\"", host))
	case len(spf) > 1:
		// RFC 7208 §4.5: more than one record is a permanent error.
		rep.add(AreaSPF, host, Error, fmt.Sprintf("%d SPF records: receivers treat that as a permanent error (RFC 7208 §4.5)", len(spf)),
			`keep one: "v=spf1 -all"`)
	case strings.EqualFold(strings.Join(strings.Fields(spf[0]), " "), "v=spf1 -all"):
		rep.add(AreaSPF, host, OK, `"v=spf1 -all": the policy host sends no mail`, "")
	default:
		rep.add(AreaSPF, host, OK, fmt.Sprintf("SPF record %q", spf[0]), "")
	}
}

// spfRecords returns the TXT records that are SPF records: RFC 7208 §4.5
// keeps those whose version section is exactly "v=spf1" (ABNF strings are
// case-insensitive), ended by a space or the end of the record.
func spfRecords(txts []string) []string {
	var out []string
	for _, t := range txts {
		if len(t) >= 6 && strings.EqualFold(t[:6], "v=spf1") && (len(t) == 6 || t[6] == ' ') {
			out = append(out, t)
		}
	}
	return out
}
