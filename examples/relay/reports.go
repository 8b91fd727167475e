package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/sealpost/sealpost/internal/dnsname"
	"github.com/sealpost/sealpost/tlsrpt"
)

// reportSigner returns the DKIM signer for report mail from contact: the
// configured keys of contact's domain (RFC 8460 §3: report mail MUST be
// signed by the reporting domain). It returns nil when there is none.
func reportSigner(keys []tlsrpt.DKIMKey, contact string, log *slog.Logger) (tlsrpt.MailSigner, error) {
	domain := dnsname.Fold(contact[strings.LastIndexByte(contact, '@')+1:])
	var mine []tlsrpt.DKIMKey
	for _, k := range keys {
		if dnsname.Fold(k.Domain) == domain {
			mine = append(mine, k)
		}
	}
	if len(mine) == 0 {
		log.Warn("relay: no DKIM key for the TLS-RPT contact's domain: reports go to https: destinations only (RFC 8460 §3 requires DKIM on report mail)",
			"domain", domain)
		return nil, nil
	}
	s, err := tlsrpt.NewDKIMSigner(mine...)
	if err != nil {
		return nil, fmt.Errorf("DKIM keys for TLS-RPT: %w", err)
	}
	return s, nil
}
