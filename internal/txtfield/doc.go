// Package txtfield is the grammar the TXT records of MTA-STS (RFC 8461
// §3.1) and TLS-RPT (RFC 8460 §3) share: after the version, fields
// separated by ";" with optional white space, each a name, "=" and a
// value; and extension fields, which both RFCs define with the same ABNF:
//
//	ext-name  = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//	ext-value = 1*(%x21-3A / %x3C / %x3E-7E)  ; printable ASCII but ";" and "="
//
// The sts and tlsrpt packages both check extensions with it, so that a
// record is read by one rule whichever of the two it is.
package txtfield
