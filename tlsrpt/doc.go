// Package tlsrpt implements SMTP TLS Reporting (RFC 8460) for a sending
// MTA: the _smtp._tls record of a policy domain, the result types of
// failed TLS sessions, and the parts that turn recorded sessions into
// daily aggregate reports.
package tlsrpt
