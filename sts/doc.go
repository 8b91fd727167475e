// Package sts implements the sending side of SMTP MTA Strict Transport
// Security (MTA-STS, RFC 8461). It answers one question for the delivery
// engine: what does this recipient domain's MTA-STS policy demand right
// now? — and answers it the way the RFC says even when the domain, its DNS
// or its web server misbehave.
//
// # What it does
//
//   - Discovery (RFC 8461 §3.1): the TXT record at _mta-sts.<domain>, through
//     a TXTResolver (sealpost's *dane.Resolver or a *net.Resolver), which
//     follows CNAMEs. ParseRecord, Client.LookupRecord.
//   - The policy (§3.2): ParsePolicy, with errors that name the line.
//   - Fetching (§3.3): HTTPS GET of https://mta-sts.<domain>/.well-known/mta-sts.txt
//     with a WebPKI-valid certificate for mta-sts.<domain>, no redirects,
//     status 200 only, media type text/plain, at most MaxPolicySize bytes,
//     one timeout for the whole exchange. Client.FetchPolicy.
//   - MX matching (§4.1): Policy.Match.
//   - The MX certificate rule (§4.2): TLS 1.2 or newer, a chain to the
//     trusted roots, a DNS-ID matching the MX host, not expired.
//     Client.VerifyConnection, or Client.VerifyConnectionFunc as a
//     tls.Config hook.
//   - Caching and application (§5.1, §10.2): Client.Lookup serves a cached
//     policy while it is unexpired and its TXT id unchanged, fetches when
//     the id changes or nothing is cached, and keeps an unexpired policy
//     when DNS or the fetch fails or the record disappears. Every answer
//     says where it came from (Source). Policies live in a Store across
//     restarts; Client.Run renews those still in use before they expire;
//     Client.Refetch checks for a new policy after a delivery failed under
//     an enforced one (§5); Client.Purge forgets one domain's policy.
//   - TLS-RPT (RFC 8460 §4.3): every error has a ResultType
//     (sts-policy-fetch-error, sts-policy-invalid, sts-webpki-invalid,
//     certificate-host-mismatch, certificate-expired,
//     certificate-not-trusted, validation-failure), and a Policy carries its
//     lines as PolicyString and its mx patterns, as a report wants them.
//     The package does not import tlsrpt; the delivery engine converts.
//
// # Readings chosen
//
//   - TXT record: "v=STSv1" must come first, case-sensitive; a record is an
//     MTA-STS record when "v=STSv1" is followed by ";", white space or
//     nothing (so "v=STSv1 ;" counts, "v=STSv10" does not). Empty fields
//     (";;") are skipped; fields other than the first id must be
//     extensions by the ABNF (sts-ext-name "=" sts-ext-value, the grammar
//     TLS-RPT's record shares: internal/txtfield), or the record is
//     invalid, and are then ignored. The id must be 1 to 32 letters and
//     digits. When a field repeats, the first counts (§3.2, last
//     paragraph, which speaks of records and policies alike).
//   - Several TXT records, or an invalid one, mean "no policy" (§3.1); for
//     reporting they count as sts-policy-invalid, a temporary DNS failure
//     as sts-policy-fetch-error. No record at all is not a failure and has
//     no result type.
//   - Policy: white space is allowed around keys, colons and values, and
//     blank lines are ignored (real policies have them; nothing can be
//     misread). Keys and values are case-sensitive, as the ABNF's %s says.
//     Every line must still be a well-formed "key: value" line of printable
//     UTF-8, or the policy is invalid. An mx value that is not a valid
//     pattern is dropped rather than failing the policy — dropping can only
//     narrow what the policy allows — and a policy in enforce or testing
//     mode with no valid mx left (the typo "nmx:") is invalid. An mx value
//     written as an IPv4 address passes as a Domain in the ABNF, but it
//     names no host and never matches, so it is dropped like any invalid
//     value: a policy of addresses only is invalid, not one that refuses
//     every MX host. A trailing dot on an mx value is tolerated. Two flaws
//     seen in published policies are read as their authors meant, since
//     refusing the policy would leave the domain unprotected: a line whose
//     first character other than white space is "#" is a comment, and an
//     mx pattern followed by white space and more text is that pattern;
//     Policy.Deviations names each, and examples/check warns the owner.
//   - A response with a media type other than text/plain, a redirect or a
//     status other than 200 is a fetch error (sts-policy-fetch-error); a
//     body over 64 KiB is an invalid policy; a certificate failure of the
//     policy host is sts-webpki-invalid.
//   - A failed fetch is remembered for five minutes per domain and TXT id
//     (§3.3: "limit further attempts to a period of five minutes or longer
//     per version ID"): a hung policy host then delays one delivery, not
//     all of them. A new id is fetched at once.
//   - Refreshing: a policy in use is renewed at a random time between half
//     and four fifths of its lifetime by a fetch even when its id is
//     unchanged, which restarts max_age; a policy whose TXT record has
//     disappeared is not renewed and runs out. A policy nobody looked up
//     since it was fetched is left to expire.
//   - Refetch fetches even when the TXT id is unchanged (a domain may change
//     its policy and forget the id), at most once per RefetchInterval.
//   - Domains must be ASCII (IDNs as A-labels); the package has no IDNA
//     tables.
//
// # What it does not do
//
// It does not resolve MX records, connect to MX hosts or decide what to do
// with a failure: the delivery package does, with Lookup, Match and
// VerifyConnection. It does not send TLS-RPT reports. It does not
// implement the receiving side (serving a policy). With a caller's
// HTTPClient, WebPKI validation of the policy host is that client's job.
//
// # Example
//
//	c := &sts.Client{Resolver: resolver, Store: store}
//	go c.Run(ctx) // renew policies in the background
//	r, err := c.Lookup(ctx, "example.com")
//	switch {
//	case err != nil:
//		// No policy applies; report err's ResultType if not empty.
//	case r.Policy.Mode == sts.ModeEnforce && !r.Policy.Match(mxHost):
//		// Skip this MX host.
//	}
//	// After STARTTLS: err = c.VerifyConnection(conn.ConnectionState(), mxHost)
package sts
