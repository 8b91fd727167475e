package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/testenv"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/queue/boltstore"
)

// TestRelayPolicyFile checks that the rules of policy_file reach the
// deliveries: strict.test publishes neither DANE nor MTA-STS and its MX
// host presents a certificate no CA vouches for, which opportunistic TLS
// accepts; the file's require_authenticated keeps the relay from sending
// there, while dest.test, which the file does not name, is delivered as
// before.
func TestRelayPolicyFile(t *testing.T) {
	w := newWorld(t, testenv.SMTPOptions{})
	must(t, w.DNS.Zone("strict.test", testenv.Insecure, "@ 300 IN MX 10 mx.strict.test."))
	cert := w.CA.MustLeaf(testenv.LeafOptions{SelfSigned: true}, "mx.strict.test")
	strict, _, err := w.MX("mx.strict.test", testenv.SMTPOptions{Certificate: &cert})
	must(t, err)
	log := &syncBuffer{}
	cfg := config(t)
	cfg.PolicyFile = filepath.Join(t.TempDir(), "policy.json")
	must(t, os.WriteFile(cfg.PolicyFile, []byte(`{"domains": {"strict.test": {"require_authenticated": true}}}`), 0o600))

	r := start(t, cfg, w.env(log))
	if _, err := submit(t, r.Addr().String(), "", "", "alice@relay.test", []string{"bob@strict.test", "carol@dest.test"}, testMessage); err != nil {
		t.Fatalf("submission: %v\n%s", err, log)
	}
	waitMessages(t, w.dest, 1)
	waitFor(t, "a delivery attempt at mx.strict.test", func() bool { return strict.Connections() > 0 })
	must(t, r.stop(t)) // lets the attempt finish and stores its result
	contains(t, "log", log.String(), "relay: local policy read")

	if n := len(strict.Messages()); n != 0 {
		t.Errorf("mx.strict.test received %d messages over TLS it could not authenticate, want none", n)
	}
	st, err := boltstore.Open(cfg.Store, &boltstore.Options{LockTimeout: 100 * time.Millisecond})
	must(t, err)
	defer st.Close()
	envs, err := st.List(context.Background(), "", 10)
	must(t, err)
	if len(envs) != 1 {
		t.Fatalf("store holds %d messages, want the one for strict.test", len(envs))
	}
	for _, rc := range envs[0].Recipients {
		switch rc.Addr {
		case "bob@strict.test":
			if rc.State != queue.StatePending || rc.Attempts != 1 || rc.Last.Enhanced[0] != 4 || rc.Last.Enhanced[1] != 7 {
				t.Errorf("bob@strict.test %s after %d attempts, last %+v; want deferred with 4.7.x", rc.State, rc.Attempts, rc.Last)
			}
		case "carol@dest.test":
			if rc.State != queue.StateDelivered {
				t.Errorf("carol@dest.test %s, want delivered", rc.State)
			}
		}
	}
}

// TestRunPolicyFileErrors checks that a policy file the relay cannot use
// stops it before it listens, with the line, column and setting at fault.
func TestRunPolicyFileErrors(t *testing.T) {
	w := newWorld(t, testenv.SMTPOptions{})
	dir := t.TempDir()
	bad := filepath.Join(dir, "policy.json")
	must(t, os.WriteFile(bad, []byte("{\"domains\": {\n  \"a.example\": {\"requre_tls\": true}}}"), 0o600))
	cfgFile := filepath.Join(dir, "relay.json")
	must(t, os.WriteFile(cfgFile, []byte(`{"hostname": "relay.test", "policy_file": "`+filepath.ToSlash(bad)+`"}`), 0o600))
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a misspelt rule in the file named by the configuration", []string{"-config", cfgFile},
			"relay: policy_file: " + bad + `:2:17: domains["a.example"]: unknown field "requre_tls"`},
		{"a missing file named by the flag", []string{"-config", cfgFile, "-policy-file", bad + ".missing"},
			"relay: policy_file: open " + bad + ".missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			env := w.env(nil)
			env.Stderr = &stderr
			listened := false
			env.Listen = func(string, string) (net.Listener, error) {
				listened = true
				return nil, os.ErrPermission
			}
			args := append(tc.args, "-listen", "127.0.0.1:0", "-store", filepath.Join(t.TempDir(), "relay.db"))
			if code := run(context.Background(), args, env); code != exitConfig || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d saying %q", code, stderr.String(), exitConfig, tc.want)
			}
			if listened {
				t.Error("the relay listened despite its policy file")
			}
		})
	}
}
