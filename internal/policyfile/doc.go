// Package policyfile reads an operator's local policy file — the JSON form
// of a delivery.LocalPolicy — for the programs under examples/ (send and
// relay), so that both read one format with one set of rules and messages.
//
// A file names per-domain rules. Rules only ever tighten what a domain
// publishes; the one way to loosen it is an override, which must give a
// reason:
//
//	{
//	  "default": {"require_tls": true},
//	  "domains": {
//	    "example.com": {
//	      "require_authenticated": true,
//	      "mta_sts": {"mode": "enforce", "mx": ["mx1.example.com", "*.mail.example.com"]}
//	    },
//	    ".example.net": {"dane_only": true},
//	    "broken.example": {
//	      "override": {"ignore_dane": true, "reason": "TLSA records stale, ticket 4711",
//	                   "until": "2025-07-01T00:00:00Z"}
//	    }
//	  }
//	}
//
// A domain key applies to that domain; a key starting with a dot applies to
// every subdomain (the longest key wins); "default" applies to every domain
// no key names. The fields of a domain's rules, all optional:
//
//	require_tls            TLS is mandatory for every host of the domain
//	require_authenticated  TLS with a server authenticated by DANE, or else
//	                       by the WebPKI as MTA-STS checks it (RFC 8461 §4.2)
//	dane_only              use only hosts with usable DNSSEC-secure TLSA records
//	mta_sts                a preloaded MTA-STS-style policy, "mode" (enforce
//	                       or testing) and "mx" patterns (RFC 8461 §4.1),
//	                       applied while the domain's own policy is unknown
//	next_hop               send the domain's mail through a smart host:
//	                       "relay.example" (its MX records) or "[host]:port"
//	source_ipv4, source_ipv6  local address to send from
//	override               "ignore_dane", "ignore_mta_sts", "reason"
//	                       (required) and "until" (RFC 3339; optional)
//
// # Strictness
//
// A rule that is silently dropped is a rule that does not protect, so the
// file is read strictly, and every error names the line and column and the
// setting at fault ("relay.json:7:9: domains[\"a.example\"].mta_sts.mx[1]:
// ..."): an unknown or misspelt field (field names match exactly, unlike
// encoding/json's case-insensitive matching), a key given twice in one
// object (encoding/json would keep the last), a value of the wrong type
// (null stands for "none" only where a value is optional: mta_sts,
// override, the two maps and lists), data after the object, a domain that
// is not written in ASCII (internationalised names as A-labels, which is
// what delivery compares against), an mx pattern that RFC 8461 §4.1 does
// not allow (sts.ParsePolicy would drop it from a published policy; an
// operator's own file is better told), an MTA-STS mode other than enforce
// or testing, a source address of the wrong family, and an override that
// ignores nothing or gives no reason (delivery ignores such an override; a
// file that has one is a mistake worth stopping for). A preloaded policy's
// max_age is not written: delivery ignores it.
//
// # What it does not do
//
// It reads a file once; reloading on change is the program's business. It
// does not check next_hop beyond trimming spaces: delivery parses it when a
// message is routed through it.
//
// # Example
//
//	lp, err := policyfile.Read("policy.json")
//	if err != nil {
//		log.Fatal(err) // policy.json:3:5: domains["a.example"]: unknown field "requre_tls" ...
//	}
//	client, err := delivery.NewClient(delivery.Config{Policy: lp})
package policyfile
