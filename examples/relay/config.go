package main

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/dnsname"
	"golang.org/x/crypto/bcrypt"
)

// Config is the relay's configuration: the JSON file of -config, with
// flags overriding its fields. Every field's zero value is documented.
type Config struct {
	// Listen is the submission address. Empty means "127.0.0.1:587":
	// loopback, so that a relay started by mistake is no open relay.
	Listen string `json:"listen"`
	// Hostname names this relay: in EHLO to MX hosts, in the Received
	// field it adds, in bounces (Reporting-MTA) and as the TLS-RPT
	// submitter. Empty means the machine's fully qualified name.
	Hostname string `json:"hostname"`
	// Store is the bbolt file holding the queue, the MTA-STS policy cache
	// and the TLS-RPT counts.
	// Empty means "relay.db" in the working directory.
	Store string `json:"store"`
	// TLSCert and TLSKey are PEM files of the certificate chain and key
	// offered with STARTTLS. Empty means no STARTTLS.
	TLSCert string `json:"tls_cert"`
	TLSKey  string `json:"tls_key"`
	// Users maps a user name to a bcrypt hash of its password ("relay
	// -hash-password" makes one). AUTH PLAIN is offered, and required
	// before MAIL, when there is at least one; it is offered only over TLS
	// unless the relay listens on loopback. Empty means no AUTH: whoever
	// can connect may send, which is allowed on loopback only.
	Users map[string]string `json:"users"`
	// Resolver is the DNS resolver: "ip[:port]" or a resolv.conf(5) file.
	// Empty means /etc/resolv.conf. DANE needs one that validates DNSSEC,
	// on loopback (or marked "options trust-ad" in the file).
	Resolver string `json:"resolver"`
	// DNSSECProbe is the DNSSEC-signed name the start-up health check asks
	// the resolver for; empty means the root zone. Set it when the
	// resolver serves the mail domains but not the root (split horizon).
	// A failed probe is logged as a warning; it does not stop the relay.
	DNSSECProbe string `json:"dnssec_probe"`
	// PolicyFile is a JSON file of the operator's own rules per recipient
	// domain (delivery.LocalPolicy), in the format examples/send's -policy
	// reads ("go doc ./internal/policyfile"): TLS or authentication
	// required, DANE only, preloaded MTA-STS policies, next hops, source
	// addresses, overrides. It is read at start. Empty means no rules:
	// each domain gets what its DANE and MTA-STS records ask.
	PolicyFile string `json:"policy_file"`
	// DKIM lists the signing keys. A message is signed by the keys of
	// the domain of its From header field; TLS-RPT report mail by those of
	// the TLS-RPT contact's domain. Empty signs nothing and sends TLS-RPT
	// reports to https: destinations only.
	DKIM []DKIMConfig `json:"dkim"`
	// TLSRPT configures the daily TLS-RPT reports.
	TLSRPT TLSRPTConfig `json:"tlsrpt"`
	// MaxMessageSize is the largest message accepted, in bytes. Zero
	// means 25 MiB.
	MaxMessageSize int64 `json:"max_message_size"`
	// MaxRecipients bounds the recipients of one message. Zero means 100.
	MaxRecipients int `json:"max_recipients"`
	// ShutdownTimeout bounds the wait, on SIGINT or SIGTERM, for
	// submissions and deliveries under way. Zero means 30 seconds.
	ShutdownTimeout Duration `json:"shutdown_timeout"`
	// LogLevel is debug, info, warn or error. Empty means info.
	LogLevel string `json:"log_level"`
}

// DKIMConfig is one DKIM signing key.
type DKIMConfig struct {
	// Domain is the signing domain (d=); Selector the selector (s=).
	Domain   string `json:"domain"`
	Selector string `json:"selector"`
	// KeyFile is a PEM file with an RSA (2048 bits or more) or Ed25519
	// private key, PKCS #8 or (RSA) PKCS #1.
	KeyFile string `json:"key_file"`
}

// TLSRPTConfig configures TLS-RPT reporting (RFC 8460).
type TLSRPTConfig struct {
	// Disabled turns reporting off: sessions are still counted, no report
	// is sent.
	Disabled bool `json:"disabled"`
	// Organization is the report's organization-name. Empty means the
	// Submitter.
	Organization string `json:"organization"`
	// Submitter is the domain of this MTA in report file names and mail.
	// Empty means Hostname.
	Submitter string `json:"submitter"`
	// Contact is the contact-info address, also the From of report mail.
	// Empty means "postmaster@" + Submitter.
	Contact string `json:"contact"`
}

// Duration is a time.Duration written as "30s" in JSON.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"30s\", found %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("want a duration such as \"30s\", found %q", s)
	}
	*d = Duration(v)
	return nil
}

// Defaults.
const (
	defaultListen          = "127.0.0.1:587"
	defaultStore           = "relay.db"
	defaultMaxMessageSize  = 25 << 20
	defaultMaxRecipients   = 100
	defaultShutdownTimeout = 30 * time.Second
	maxConfigSize          = 1 << 20
)

// loadConfig reads a JSON configuration file strictly: an unknown field is
// an error, since a misspelt setting silently ignored may be a security
// setting.
func loadConfig(path string) (Config, error) {
	var cfg Config
	f, err := os.Open(path)
	if err != nil {
		return cfg, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return cfg, err
	}
	if len(data) > maxConfigSize {
		return cfg, fmt.Errorf("%s: larger than %d bytes", path, maxConfigSize)
	}
	if cfg, err = parseConfig(data); err != nil {
		return cfg, fmt.Errorf("%s: %v", path, err)
	}
	return cfg, nil
}

// parseConfig parses the JSON of a configuration file.
func parseConfig(data []byte) (Config, error) {
	var cfg Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Config{}, errors.New("unexpected data after the JSON object")
	}
	return cfg, nil
}

// withDefaults fills in the zero fields that have a fixed default.
func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = defaultListen
	}
	if c.Store == "" {
		c.Store = defaultStore
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = defaultMaxMessageSize
	}
	if c.MaxRecipients <= 0 {
		c.MaxRecipients = defaultMaxRecipients
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = Duration(defaultShutdownTimeout)
	}
	// An internationalised name becomes A-labels, as EHLO needs; one that
	// is no name is kept, folded, for check to refuse.
	if h, err := dnsname.Canonical(c.Hostname); err == nil {
		c.Hostname = h
	} else {
		c.Hostname = dnsname.Fold(c.Hostname)
	}
	if c.TLSRPT.Submitter == "" {
		c.TLSRPT.Submitter = c.Hostname
	}
	if c.TLSRPT.Organization == "" {
		c.TLSRPT.Organization = c.TLSRPT.Submitter
	}
	if c.TLSRPT.Contact == "" {
		c.TLSRPT.Contact = "postmaster@" + c.TLSRPT.Submitter
	}
	return c
}

// check refuses configurations that would make an open relay or send
// passwords in the clear, and ones that cannot work.
func (c *Config) check() error {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("listen %q: want host:port", c.Listen)
	}
	loopback := isLoopback(host)
	tls := c.TLSCert != "" || c.TLSKey != ""
	if _, err := dnsname.Canonical(c.Hostname); err != nil || !strings.Contains(c.Hostname, ".") || strings.Contains(c.Hostname, "_") {
		return fmt.Errorf("hostname %q: want this relay's fully qualified name, letters, digits and hyphens (set \"hostname\" or -hostname)", c.Hostname)
	}
	switch {
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("tls_cert and tls_key go together: give both or neither")
	case len(c.Users) == 0 && !loopback:
		return fmt.Errorf("listen %q is not a loopback address and no users are configured: refusing to be an open relay", c.Listen)
	case len(c.Users) > 0 && !loopback && !tls:
		return fmt.Errorf("listen %q is not a loopback address: AUTH would send passwords in the clear; give tls_cert and tls_key", c.Listen)
	}
	for name, hash := range c.Users {
		if name == "" || strings.ContainsAny(name, "\x00") {
			return fmt.Errorf("users: invalid user name %q", name)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return fmt.Errorf("users[%q]: not a bcrypt hash (make one with -hash-password): %v", name, err)
		}
	}
	for i, k := range c.DKIM {
		if k.Domain == "" || k.Selector == "" || k.KeyFile == "" {
			return fmt.Errorf("dkim[%d]: domain, selector and key_file are required", i)
		}
	}
	if at := strings.LastIndexByte(c.TLSRPT.Contact, '@'); at <= 0 || at == len(c.TLSRPT.Contact)-1 {
		return fmt.Errorf("tlsrpt.contact %q: want an address", c.TLSRPT.Contact)
	}
	return nil
}

// isLoopback reports whether host, the host part of a listen address, is
// a loopback address or "localhost".
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// readSigningKey reads a PEM private key for DKIM: RSA of at least 2048
// bits (RFC 8301 §3.2 forbids fewer than 1024; 2048 is what verifiers
// expect now) or Ed25519 (RFC 8463).
func readSigningKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%s: PEM block %q, want \"PRIVATE KEY\" or \"RSA PRIVATE KEY\"", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("%s: RSA key of %d bits, want 2048 or more", path, k.N.BitLen())
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("%s: %T keys cannot sign DKIM; use RSA or Ed25519", path, key)
}
