package delivery

import (
	"strings"
	"unicode/utf8"
)

// toASCII converts a lower-cased domain to A-labels: each label that is not
// ASCII becomes "xn--" and its Punycode (RFC 3492, RFC 5891 §4.4). It does
// not apply IDNA2008's mapping and normalisation tables (they live in
// golang.org/x/text, which this module does not require): a domain is
// expected in NFC, as mail software writes it. It reports false for a
// domain that cannot be a DNS name (empty labels, invalid UTF-8, labels
// over 63 octets once encoded).
func toASCII(domain string) (string, bool) {
	if isASCII(domain) {
		if domain == "" || strings.Contains(strings.TrimSuffix(domain, "."), "..") {
			return "", false
		}
		return domain, true
	}
	// RFC 1035 §2.3.4: 255 octets at most, 63 per label; an encoded
	// label is never shorter than its characters, so longer input is
	// refused before the quadratic encoding sees it.
	if len(domain) > 4*255 || !utf8.ValidString(domain) {
		return "", false
	}
	labels := strings.Split(strings.TrimSuffix(domain, "."), ".")
	for i, l := range labels {
		if l == "" {
			return "", false
		}
		if isASCII(l) {
			continue
		}
		if utf8.RuneCountInString(l) > 63 {
			return "", false
		}
		enc, ok := punycode(l)
		if !ok || len(enc)+4 > 63 {
			return "", false
		}
		labels[i] = "xn--" + enc
	}
	return strings.Join(labels, "."), true
}

// Punycode parameters (RFC 3492 §5).
const (
	pcBase        = 36
	pcTMin        = 1
	pcTMax        = 26
	pcSkew        = 38
	pcDamp        = 700
	pcInitialBias = 72
	pcInitialN    = 128
)

// punycode encodes a label (RFC 3492 §6.3).
func punycode(label string) (string, bool) {
	runes := []rune(label)
	var out []byte
	for _, r := range runes {
		if r < 0x80 {
			out = append(out, byte(r))
		}
	}
	basic := len(out)
	if basic > 0 {
		out = append(out, '-')
	}
	n, delta, bias := rune(pcInitialN), 0, pcInitialBias
	for h := basic; h < len(runes); {
		m := rune(utf8.MaxRune + 1)
		for _, r := range runes {
			if r >= n && r < m {
				m = r
			}
		}
		if int(m-n) > (1<<31-1-delta)/(h+1) {
			return "", false // overflow (RFC 3492 §6.4)
		}
		delta += int(m-n) * (h + 1)
		n = m
		for _, r := range runes {
			if r < n {
				delta++
			}
			if r != n {
				continue
			}
			q := delta
			for k := pcBase; ; k += pcBase {
				t := min(max(k-bias, pcTMin), pcTMax)
				if q < t {
					break
				}
				out = append(out, pcDigit(t+(q-t)%(pcBase-t)))
				q = (q - t) / (pcBase - t)
			}
			out = append(out, pcDigit(q))
			bias = pcAdapt(delta, h+1, h == basic)
			delta = 0
			h++
		}
		delta++
		n++
	}
	return string(out), true
}

func pcDigit(d int) byte {
	if d < 26 {
		return byte('a' + d)
	}
	return byte('0' + d - 26)
}

// pcAdapt is the bias adaptation of RFC 3492 §6.1.
func pcAdapt(delta, numPoints int, first bool) int {
	if first {
		delta /= pcDamp
	} else {
		delta /= 2
	}
	delta += delta / numPoints
	k := 0
	for delta > ((pcBase-pcTMin)*pcTMax)/2 {
		delta /= pcBase - pcTMin
		k += pcBase
	}
	return k + (pcBase-pcTMin+1)*delta/(delta+pcSkew)
}
