// Package sts implements the sending side of SMTP MTA Strict Transport
// Security (MTA-STS, RFC 8461).
package sts
