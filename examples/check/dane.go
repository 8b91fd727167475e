package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
	"github.com/sealpost/sealpost/dane"
)

// checkDANE decides, host by host, which TLSA records apply (RFC 7672
// §2.2) through the dane package, and reports records that cannot work:
// records in an unsigned zone, unusable records, look-ups that fail. It
// returns the requirements of the hosts DANE applies to, by host name,
// for the connection checks to verify the presented certificates against.
//
// validating says whether the resolver validates DNSSEC; without that
// every zone looks unsigned, so nothing is concluded.
func checkDANE(ctx context.Context, env *Env, set *mxSet, validating bool, rep *Report) map[string]*dane.Requirement {
	if !validating {
		rep.add(AreaDANE, "", Warning, "not checked: the resolver does not validate DNSSEC, so every zone looks unsigned",
			"run the check with -resolver pointing at a validating resolver")
		return nil
	}
	disc := &dane.Discovery{Resolver: env.resolver()} // InsecureMXDANE: see doc.go
	reqs := make(map[string]*dane.Requirement)
	reported := make(map[string]bool) // TLSA names already described: hosts may share one
	for _, h := range set.Hosts {
		if len(h.Addrs) == 0 {
			continue // reported by the MX check; nothing to connect to
		}
		lctx, cancel := context.WithTimeout(ctx, env.timeout())
		req, err := disc.Lookup(lctx, h.Name, set.Secure)
		cancel()
		if err != nil {
			var re *dane.RequirementError
			name := h.Name
			if errors.As(err, &re) {
				name = re.Name
			}
			rep.add(AreaDANE, h.Name, Error,
				fmt.Sprintf("cannot tell whether DANE applies: look-up of %s: %s; senders that use DANE will not deliver to this host", name, dnsProblem(err)),
				dnsFix(err, name))
			continue
		}
		reqs[h.Name] = req
		if reported[tlsaName(req)] && req.Outcome != dane.NotApplicable {
			continue
		}
		reported[tlsaName(req)] = true
		switch req.Outcome {
		case dane.NotApplicable:
			tlsaOutsideDNSSEC(ctx, env, h.Name, rep)
			continue
		case dane.TLSRequired:
			// RFC 7672 §2.2: secure records, none usable: TLS is
			// mandatory but nothing can authenticate the server.
			rep.add(AreaDANE, tlsaName(req), Error,
				"no usable TLSA record: DANE senders insist on TLS but cannot authenticate the host",
				"publish a DANE-EE record for the key the host presents:\n"+tlsaFixFor(req, nil))
		case dane.AuthenticationRequired:
			rep.add(AreaDANE, tlsaName(req), OK, fmt.Sprintf("%s, DNSSEC-signed", describeTLSA(req.Records)), "")
		}
		for _, r := range req.Records {
			if err := r.Check(); err != nil {
				// RFC 7672 §3.1: usages 0 and 1 (and unknown parameters)
				// are unusable for SMTP; they are ignored, not errors.
				rep.add(AreaDANE, tlsaName(req), Warning, fmt.Sprintf("record %s is ignored: %v", shortTLSA(r), err),
					"remove it; SMTP uses DANE-EE(3) and DANE-TA(2) records only (RFC 7672 §3.1)")
			}
		}
		if !set.Secure {
			// RFC 7672 §2.2.1 lets senders ignore the TLSA records of a
			// host reached through an unsigned MX RRset; many do.
			rep.add(AreaDANE, h.Name, Warning,
				"the domain's MX records are not DNSSEC-signed: many DANE senders ignore this host's TLSA records (RFC 7672 §2.2.1)",
				"sign the domain's zone and publish its DS record at the parent")
		}
	}
	if !hasArea(rep, AreaDANE) {
		rep.add(AreaDANE, "", OK, "no TLSA records: DANE is not in use (MTA-STS alone protects the domain, if published)", "")
	}
	return reqs
}

// tlsaOutsideDNSSEC reports TLSA records that exist but are not secure:
// senders ignore them (RFC 7672 §2.2), which their publisher rarely means.
// A failing look-up says nothing here: providers that serve unsigned
// zones often fail TLSA questions, and senders never ask them.
func tlsaOutsideDNSSEC(ctx context.Context, env *Env, host string, rep *Report) {
	name := "_25._tcp." + host
	lctx, cancel := context.WithTimeout(ctx, env.timeout())
	defer cancel()
	ans, err := env.resolver().Lookup(lctx, name, dns.TypeTLSA)
	if err != nil || ans == nil || len(ans.TLSA()) == 0 || ans.Secure {
		return
	}
	// A warning: the records are ignored, so delivery is as without them;
	// what the owner loses is the protection they meant to publish.
	rep.add(AreaDANE, name, Warning,
		"TLSA records published in a zone that is not DNSSEC-signed: senders ignore them, so they protect nothing",
		"sign the zone and publish its DS record at the parent, or remove the records")
}

// verifyDANE checks the certificate chain a host presented against its
// TLSA records, through dane.Requirement.Verify.
func verifyDANE(req *dane.Requirement, subject string, certs []*x509.Certificate, env *Env, rep *Report) {
	if req.Outcome != dane.AuthenticationRequired {
		return
	}
	m, err := req.Verify(certs, env.now())
	if err != nil {
		var ve *dane.VerifyError
		detail := err.Error()
		if errors.As(err, &ve) {
			detail = ve.Kind.Error()
			if ve.Detail != "" {
				detail += " (" + ve.Detail + ")"
			}
		}
		rep.add(AreaDANE, subject, Error, "DANE authentication fails: "+detail+"; DANE senders will not deliver to this host",
			"publish a record for the key the host presents (beside the old one while a key roll-over is under way):\n"+tlsaFixFor(req, certs))
		return
	}
	how := "the leaf certificate's key"
	if m.Record.Usage == dane.DANETA {
		how = fmt.Sprintf("a trust anchor (chain depth %d), leaf names %s", m.Depth, m.Name)
	}
	rep.add(AreaDANE, subject, OK, fmt.Sprintf("certificate matches TLSA %s: %s", shortTLSA(m.Record), how), "")
}

// tlsaFixFor suggests the DANE-EE SPKI SHA-256 record ("3 1 1") for the
// key of the presented leaf, the record RFC 7672 §3.1.1 recommends.
func tlsaFixFor(req *dane.Requirement, certs []*x509.Certificate) string {
	name := tlsaName(req)
	if len(certs) == 0 || certs[0] == nil {
		return fmt.Sprintf("%s. IN TLSA 3 1 1 <SHA-256 of the server's public key>", name)
	}
	sum := sha256.Sum256(certs[0].RawSubjectPublicKeyInfo)
	rec := dane.TLSARecord{Usage: dane.DANEEE, Selector: dane.SelectorSPKI, MatchingType: dane.MatchSHA256, Data: sum[:]}
	return fmt.Sprintf("%s. IN TLSA %s", name, rec)
}

func tlsaName(req *dane.Requirement) string {
	base := req.BaseDomain
	if base == "" {
		base = req.Host
	}
	return "_25._tcp." + base
}

// describeTLSA summarises an RRset: "2 records (1 usable): 3 1 1 3f2a…".
func describeTLSA(records []dane.TLSARecord) string {
	usable := dane.UsableRecords(records)
	parts := make([]string, len(records))
	for i, r := range records {
		parts[i] = shortTLSA(r)
	}
	noun := "record"
	if len(records) != 1 {
		noun = "records"
	}
	return fmt.Sprintf("%d TLSA %s (%d usable): %s", len(records), noun, len(usable), strings.Join(parts, ", "))
}

// shortTLSA writes a record with its data cut to 12 hex digits, enough to
// tell records apart on one line.
func shortTLSA(r dane.TLSARecord) string {
	s := r.String()
	if f := strings.Fields(s); len(f) == 4 && len(f[3]) > 12 {
		return strings.Join(f[:3], " ") + " " + f[3][:12] + "…"
	}
	return s
}

func hasArea(rep *Report, area string) bool {
	for _, f := range rep.Findings {
		if f.Area == area {
			return true
		}
	}
	return false
}
