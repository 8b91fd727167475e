package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/testenv"
	"golang.org/x/crypto/bcrypt"
)

func TestConfigCheck(t *testing.T) {
	good := func() Config {
		return Config{Hostname: "relay.example", Listen: "127.0.0.1:587"}.withDefaults()
	}
	bcryptHash := "$2a$04$7Zqz8M1c2Yk1p9uJH2C9ZO3lD4y1aK8yR0d8cJpY1w9b5d7l6QyPq"
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" means valid
	}{
		{"loopback without users is a local submission port", func(*Config) {}, ""},
		{"users on loopback without TLS may AUTH in plaintext", func(c *Config) { c.Users = map[string]string{"a": bcryptHash} }, ""},
		{"users with TLS on any address", func(c *Config) {
			c.Listen, c.TLSCert, c.TLSKey, c.Users = "0.0.0.0:587", "c.pem", "k.pem", map[string]string{"a": bcryptHash}
		}, ""},
		{"no users on a public address is an open relay", func(c *Config) { c.Listen = "0.0.0.0:587" }, "open relay"},
		{"users on a public address without TLS send passwords in the clear", func(c *Config) {
			c.Listen, c.Users = "[::]:587", map[string]string{"a": bcryptHash}
		}, "in the clear"},
		{"a certificate without a key", func(c *Config) { c.TLSCert = "c.pem" }, "go together"},
		{"a password that is not a bcrypt hash", func(c *Config) { c.Users = map[string]string{"a": "secret"} }, "not a bcrypt hash"},
		{"a hostname that is not fully qualified", func(c *Config) { c.Hostname = "relay" }, "fully qualified"},
		{"a hostname with an empty label", func(c *Config) { c.Hostname = "relay..example" }, "fully qualified"},
		{"a hostname with an underscore, which EHLO does not allow", func(c *Config) { c.Hostname = "relay_1.example" }, "fully qualified"},
		{"a hostname with a line break", func(c *Config) { c.Hostname = "relay.example\r\nRCPT TO:<x@y>" }, "fully qualified"},
		{"a listen address without a port", func(c *Config) { c.Listen = "127.0.0.1" }, "host:port"},
		{"a DKIM key without a selector", func(c *Config) { c.DKIM = []DKIMConfig{{Domain: "d.example", KeyFile: "k"}} }, "dkim[0]"},
		{"a TLS-RPT contact that is no address", func(c *Config) { c.TLSRPT.Contact = "postmaster" }, "tlsrpt.contact"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.edit(&c)
			err := c.check()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Hostname: "Relay.Example."}.withDefaults()
	if c.Listen != "127.0.0.1:587" || c.Store != "relay.db" || c.Hostname != "relay.example" ||
		c.TLSRPT.Submitter != "relay.example" || c.TLSRPT.Contact != "postmaster@relay.example" ||
		time.Duration(c.ShutdownTimeout) != 30*time.Second || c.MaxRecipients != 100 {
		t.Errorf("defaults: %+v", c)
	}
	if c := (Config{Hostname: "Relay.B\u00fccher.Example"}).withDefaults(); c.Hostname != "relay.xn--bcher-kva.example" {
		t.Errorf("internationalised hostname read as %q, want its A-labels", c.Hostname)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, []byte(text), 0o600))
		return p
	}
	cfg, err := loadConfig(write("good.json", `{"listen": "127.0.0.1:2587", "hostname": "relay.example",
		"users": {"alice": "$2a$04$x"}, "tlsrpt": {"organization": "Org"}, "shutdown_timeout": "5s"}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:2587" || cfg.Users["alice"] != "$2a$04$x" || cfg.TLSRPT.Organization != "Org" ||
		time.Duration(cfg.ShutdownTimeout) != 5*time.Second {
		t.Errorf("parsed %+v", cfg)
	}
	for _, tc := range []struct{ name, text, want string }{
		{"a misspelt field is an error, not an ignored setting", `{"user": {}}`, `unknown field "user"`},
		{"a duration without a unit", `{"shutdown_timeout": 30}`, "duration"},
		{"a negative duration", `{"shutdown_timeout": "-1s"}`, "duration"},
		{"trailing data", `{} {}`, "after the JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(write("bad.json", tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestParseArgsFlagsOverrideFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "relay.json")
	must(t, os.WriteFile(p, []byte(`{"listen": "127.0.0.1:2587", "hostname": "file.example", "store": "file.db", "policy_file": "file-policy.json"}`), 0o600))
	cfg, _, err := parseArgs([]string{"-config", p, "-hostname", "flag.example"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hostname != "flag.example" || cfg.Listen != "127.0.0.1:2587" || cfg.Store != "file.db" || cfg.PolicyFile != "file-policy.json" {
		t.Errorf("got %+v: want the flag's hostname and the file's listen, store and policy file", cfg)
	}
	cfg, _, err = parseArgs([]string{"-config", p, "-policy-file", "flag-policy.json"}, &bytes.Buffer{})
	if err != nil || cfg.PolicyFile != "flag-policy.json" {
		t.Errorf("policy file %q (%v), want -policy-file's", cfg.PolicyFile, err)
	}
}

func TestReadSigningKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	must(t, err)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	must(t, err)

	if _, err := readSigningKey(writeKey(t, dir)); err != nil {
		t.Errorf("Ed25519 PKCS #8: %v", err)
	}
	for _, tc := range []struct{ name, path, want string }{
		{"RSA under 2048 bits", write("small.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)), "1024 bits"},
		{"ECDSA, which DKIM has no algorithm for", write("ec.pem", "PRIVATE KEY", ecDER), "cannot sign DKIM"},
		{"a certificate instead of a key", write("cert.pem", "CERTIFICATE", []byte{1}), `"CERTIFICATE"`},
		{"no PEM at all", filepath.Join(dir, "dkim.pem") + ".missing", "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := readSigningKey(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestHashPassword(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-hash-password", "-hash-cost", "4"}, &Env{Stdin: strings.NewReader("s3cret\n"), Stdout: &stdout, Stderr: &stderr})
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	h := strings.TrimSpace(stdout.String())
	if bcrypt.CompareHashAndPassword([]byte(h), []byte("s3cret")) != nil {
		t.Errorf("%q is not a bcrypt hash of the password", h)
	}
	if cost, err := bcrypt.Cost([]byte(h)); err != nil || cost != 4 {
		t.Errorf("cost %d (%v), want -hash-cost's 4", cost, err)
	}
	if code := run(context.Background(), []string{"-hash-password"}, &Env{Stdin: strings.NewReader("\n"), Stderr: &stderr}); code != exitUsage {
		t.Errorf("empty password: exit %d, want %d", code, exitUsage)
	}
	if code := run(context.Background(), []string{"-hash-password", "-hash-cost", "3"}, &Env{Stdin: strings.NewReader("x\n"), Stderr: &stderr}); code != exitUsage {
		t.Errorf("-hash-cost 3: exit %d, want %d", code, exitUsage)
	}
}

// TestRun runs the program's entry: flags and a configuration file, the
// relay serving until its context ends, and the exit statuses.
func TestRun(t *testing.T) {
	w := newWorld(t, testenv.SMTPOptions{})
	cfgFile := filepath.Join(t.TempDir(), "relay.json")
	must(t, os.WriteFile(cfgFile, []byte(`{"hostname": "relay.test", "shutdown_timeout": "5s"}`), 0o600))

	t.Run("serves until the context ends, then exits 0", func(t *testing.T) {
		log := &syncBuffer{}
		env := w.env(log)
		addr := make(chan net.Addr, 1)
		env.Listen = func(network, a string) (net.Listener, error) {
			ln, err := net.Listen(network, a)
			if err == nil {
				addr <- ln.Addr()
			}
			return ln, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan int, 1)
		store := filepath.Join(t.TempDir(), "relay.db")
		go func() { done <- run(ctx, []string{"-config", cfgFile, "-listen", "127.0.0.1:0", "-store", store}, env) }()
		var a net.Addr
		select {
		case a = <-addr:
		case code := <-done:
			t.Fatalf("exit %d before listening\n%s", code, log)
		}
		if _, err := submit(t, a.String(), "", "", "alice@relay.test", []string{"bob@dest.test"}, testMessage); err != nil {
			t.Fatal(err)
		}
		waitMessages(t, w.dest, 1)
		cancel()
		select {
		case code := <-done:
			if code != exitOK {
				t.Errorf("exit %d, want 0\n%s", code, log)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("run did not return after its context ended")
		}
	})

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"an unknown flag", []string{"-lisen", ":25"}, exitUsage, "-lisen"},
		{"an argument", []string{"extra"}, exitUsage, "flags only"},
		{"a missing configuration file", []string{"-config", cfgFile + ".missing"}, exitUsage, "no such file"},
		{"an open relay", []string{"-config", cfgFile, "-listen", "0.0.0.0:0"}, exitConfig, "open relay"},
		{"a store that cannot be opened", []string{"-config", cfgFile, "-listen", "127.0.0.1:0", "-store", "/nonexistent/dir/relay.db"}, exitConfig, "opening the store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			env := w.env(nil)
			env.Stderr = &stderr
			if code := run(context.Background(), tc.args, env); code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d saying %q", code, stderr.String(), tc.code, tc.want)
			}
		})
	}
}
