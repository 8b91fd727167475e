package main

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sealpost/sealpost/internal/testenv"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/queue/boltstore"
)

// TestRelayKeepsMTASTSPolicyAcrossRestart checks that the MTA-STS policy
// cache lives in the store file: a policy fetched before a restart is
// enforced after it, while the policy server is down and an attacker
// strips STARTTLS. A relay that forgot its policies would find none after
// the restart and hand the message to the attacker in plaintext: the
// trust-on-first-use window of RFC 8461 §10.2.
func TestRelayKeepsMTASTSPolicyAcrossRestart(t *testing.T) {
	w := newWorld(t, testenv.SMTPOptions{})
	must(t, w.DNS.Zone("sts.test", testenv.Insecure, "@ 300 IN MX 10 mx.sts.test."))
	cert := w.CA.MustLeaf(testenv.LeafOptions{}, "mx.sts.test")
	mx, ip, err := w.MX("mx.sts.test", testenv.SMTPOptions{Certificate: &cert})
	must(t, err)
	must(t, w.PublishSTS("sts.test", "1", "version: STSv1\nmode: enforce\nmx: mx.sts.test\nmax_age: 86400\n"))
	log := &syncBuffer{}
	cfg := config(t)

	// Before the restart: the policy is fetched and the message delivered
	// over TLS.
	r := start(t, cfg, w.env(log))
	if _, err := submit(t, r.Addr().String(), "", "", "alice@relay.test", []string{"bob@sts.test"}, testMessage); err != nil {
		t.Fatalf("submission: %v\n%s", err, log)
	}
	if m := waitMessages(t, mx, 1)[0]; m.TLS == nil {
		t.Fatal("delivered in plaintext under an enforced policy")
	}
	if n := w.Policies.Fetches("sts.test"); n != 1 {
		t.Fatalf("policy fetched %d times before the restart, want 1", n)
	}
	must(t, r.stop(t))

	// The restart happens under attack: the policy host is unreachable,
	// the TXT record announces a new policy id (so the relay tries to
	// fetch and fails) and STARTTLS is stripped on the way to the MX host.
	policyHost := w.PolicyAddr("sts.test") + ":443"
	w.Dialer.Refuse(policyHost)
	w.DNS.Remove("_mta-sts.sts.test", dns.TypeTXT)
	must(t, w.DNS.Add(`_mta-sts.sts.test. 300 IN TXT "v=STSv1; id=2"`))
	attacker, err := w.Attack(ip, testenv.AttackerOptions{Mode: testenv.StripSTARTTLS})
	must(t, err)

	r = start(t, cfg, w.env(log))
	if _, err := submit(t, r.Addr().String(), "", "", "alice@relay.test", []string{"bob@sts.test"}, testMessage); err != nil {
		t.Fatalf("submission after the restart: %v\n%s", err, log)
	}
	waitFor(t, "a delivery attempt through the attacker", func() bool { return attacker.Connections() > 0 })
	must(t, r.stop(t)) // lets the attempt finish and stores its result

	if w.Dialer.Dials(policyHost) == 0 {
		t.Error("the relay did not try to fetch the new policy: the test did not take the policy server down")
	}
	if n := attacker.Transactions(); n != 0 {
		t.Errorf("%d mail transactions went through the attacker, want none", n)
	}
	if n := len(mx.Messages()); n != 1 {
		t.Errorf("the MX host received %d messages, want only the one from before the restart", n)
	}
	contains(t, "log", log.String(), "sts: using the cached policy")

	st, err := boltstore.Open(cfg.Store, &boltstore.Options{LockTimeout: 100 * time.Millisecond})
	must(t, err)
	defer st.Close()
	envs, err := st.List(context.Background(), "", 10)
	must(t, err)
	if len(envs) != 1 || len(envs[0].Recipients) != 1 {
		t.Fatalf("store holds %d messages, want the one deferred after the restart", len(envs))
	}
	rc := envs[0].Recipients[0]
	if rc.State != queue.StatePending || rc.Attempts != 1 || rc.Last.Enhanced != [3]int{4, 7, 10} {
		t.Errorf("recipient %s after %d attempts, last %+v; want pending after one attempt with 4.7.10", rc.State, rc.Attempts, rc.Last)
	}
}

// waitFor polls cond until it holds, for up to 15 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
