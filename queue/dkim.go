package queue

import (
	"bufio"
	"bytes"
	"net/mail"
	"net/textproto"
	"strings"
)

// Signer adds a DKIM signature (RFC 6376) by one domain to a message.
// DKIMSigner is the implementation on go-msgauth.
type Signer interface {
	// Domain is the signing domain (the d= tag).
	Domain() string
	// Sign returns msg, which has CRLF line ends, with a DKIM-Signature
	// header field prepended.
	Sign(msg []byte) ([]byte, error)
}

// signingDomain returns the domain of the first address in the From header
// field of msg, lower-case, or "" when there is none to be found.
func (q *Queue) signingDomain(msg []byte) string {
	if len(q.cfg.DKIM) == 0 {
		return ""
	}
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(headerOf(msg)))).ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return ""
	}
	list, err := mail.ParseAddressList(h.Get("From"))
	if err != nil || len(list) == 0 {
		return ""
	}
	return addrDomain(list[0].Address)
}

// headerOf returns the header section of msg, through its empty line.
func headerOf(msg []byte) []byte {
	for _, sep := range []string{"\r\n\r\n", "\n\n"} {
		if i := bytes.Index(msg, []byte(sep)); i >= 0 {
			return msg[:i+len(sep)]
		}
	}
	return msg
}

// sign returns msg with a DKIM signature (RFC 6376) by every configured key
// of domain, or msg itself when there is none. A signed message has CRLF
// line ends throughout: the bytes signed must be the bytes sent, and SMTP
// sends CRLF.
func (q *Queue) sign(msg []byte, domain string) ([]byte, error) {
	if domain == "" {
		return msg, nil
	}
	signed := false
	for _, s := range q.cfg.DKIM {
		if !strings.EqualFold(strings.TrimSuffix(s.Domain(), "."), domain) {
			continue
		}
		if !signed {
			msg = toCRLF(msg)
			signed = true
		}
		var err error
		if msg, err = s.Sign(msg); err != nil {
			return nil, err
		}
	}
	return msg, nil
}

// toCRLF turns bare LFs into CRLFs.
func toCRLF(msg []byte) []byte {
	n := bytes.Count(msg, []byte("\n")) - bytes.Count(msg, []byte("\r\n"))
	if n == 0 {
		return msg
	}
	out := make([]byte, 0, len(msg)+n)
	for i, c := range msg {
		if c == '\n' && (i == 0 || msg[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}
