package boltstore_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/queue/boltstore"
	"github.com/sealpost/sealpost/sts"
	"github.com/sealpost/sealpost/tlsrpt"
)

// The crash test runs this test binary as a child process (the role is
// chosen by crashRoleEnv), kills it with SIGKILL while it enqueues and
// delivers, starts it again on the same file, and checks that every
// message whose Enqueue returned was delivered.
const (
	crashRoleEnv = "SEALPOST_QUEUE_CRASH_ROLE"
	crashDirEnv  = "SEALPOST_QUEUE_CRASH_DIR"
)

// crashPolicy is the MTA-STS policy whose cache entry must survive.
var crashPolicy = sts.StoredPolicy{Domain: "example.com", ID: "20250301", Text: "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n",
	FetchedAt: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), Expires: time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)}

// crashDay is the TLS-RPT day whose counts must survive the crash.
var crashDay = tlsrpt.DayOf(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC))

func TestCrashLosesNoAcceptedMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	child := func(role string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
		cmd.Env = append(os.Environ(), crashRoleEnv+"="+role, crashDirEnv+"="+dir)
		cmd.Stderr = os.Stderr
		return cmd
	}

	// Run 1: enqueue and deliver, then kill -9 in the middle of it.
	cmd := child("enqueue")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	accepted := map[string]bool{}
	sc := bufio.NewScanner(out)
	deadline := time.Now().Add(20 * time.Second)
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "accepted "); ok {
			accepted[id] = true
		}
		if len(accepted) >= 300 && len(readDelivered(t, dir)) >= 100 || time.Now().After(deadline) {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	before := readDelivered(t, dir)
	if len(accepted) < 300 || len(before) < 100 {
		t.Fatalf("child accepted %d and delivered %d messages before the kill; want at least 300 and 100", len(accepted), len(before))
	}

	// Run 2: the same file, until the queue is empty.
	cmd = child("drain")
	cmd.Stdout = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("restarted child: %v", err)
	}

	delivered := readDelivered(t, dir)
	var lost []string
	dups := 0
	for id := range accepted {
		switch n := delivered[id]; {
		case n == 0:
			lost = append(lost, id)
		case n > 1:
			dups++
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d accepted messages were never delivered, e.g. %v", len(lost), len(accepted), lost[:min(5, len(lost))])
	}
	t.Logf("%d messages accepted before the kill, %d delivered before it, %d delivered twice (at-least-once: those in flight at the kill)",
		len(accepted), len(before), dups)

	s, err := boltstore.Open(filepath.Join(dir, "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if p, ok, err := s.PolicyCache().Get(context.Background(), "example.com"); err != nil || !ok || p.Text != crashPolicy.Text || !p.Expires.Equal(crashPolicy.Expires) {
		t.Errorf("STS cache after the crash = %+v, %v, %v; want the policy cached before it", p, ok, err)
	}
	counts, err := s.DayCounts(context.Background(), crashDay, "example.com")
	if err != nil || len(counts) != 1 || counts[0].Successful != 7 {
		t.Errorf("TLS-RPT counts after the crash = %+v, %v; want the 7 sessions recorded before it", counts, err)
	}
}

// readDelivered reads the deliveries log: message ID → times delivered.
func readDelivered(t *testing.T, dir string) map[string]int {
	b, err := os.ReadFile(filepath.Join(dir, "delivered.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		// A line cut by the kill has no end mark and is not counted: the
		// "remote server" never confirmed it.
		if id, ok := strings.CutSuffix(line, " ok"); ok {
			m[id]++
		}
	}
	return m
}

// logDeliverer stands in for the remote servers: a delivery is confirmed
// by an fsynced line in delivered.log. One attempt in ten fails
// temporarily.
type logDeliverer struct {
	mu sync.Mutex
	f  *os.File
}

func (d *logDeliverer) Deliver(ctx context.Context, m *delivery.Message) ([]delivery.Result, error) {
	time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
	var res []delivery.Result
	for _, r := range m.Recipients {
		if rand.IntN(10) == 0 {
			res = append(res, delivery.Result{Recipient: r.Address, Status: delivery.TemporaryFailure, Code: 451, Enhanced: smtp.EnhancedCode{4, 3, 0}})
			continue
		}
		res = append(res, delivery.Result{Recipient: r.Address, Status: delivery.Delivered, Code: 250})
	}
	// The message ID travels in the local part of the recipient.
	id := strings.TrimSuffix(m.Recipients[0].Address, "@example.com")
	if res[0].Status == delivery.Delivered {
		d.mu.Lock()
		defer d.mu.Unlock()
		if _, err := fmt.Fprintf(d.f, "%s ok\n", id); err != nil {
			return nil, err
		}
		if err := d.f.Sync(); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func TestCrashChild(t *testing.T) {
	role, dir := os.Getenv(crashRoleEnv), os.Getenv(crashDirEnv)
	if role == "" {
		t.Skip("the child of TestCrashLosesNoAcceptedMessage")
	}
	s, err := boltstore.Open(filepath.Join(dir, "state.db"), &boltstore.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "delivered.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.New(queue.Config{
		Store: s, Deliverer: &logDeliverer{f: f}, Workers: 16,
		Retry:        queue.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond},
		PollInterval: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	go q.Run(ctx)

	if role == "drain" {
		for {
			n, _, err := s.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := q.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		s.Close()
		return
	}

	if err := s.PolicyCache().Put(ctx, crashPolicy); err != nil {
		t.Fatal(err)
	}
	p := tlsrpt.NewPolicy(tlsrpt.PolicyTypeSTS, "example.com", []string{"version: STSv1", "mode: enforce", "mx: mx.example.com", "max_age: 86400"}, []string{"mx.example.com"})
	if err := s.AddCounts(ctx, []tlsrpt.Counts{{Day: crashDay, Policy: p, Successful: 7}}); err != nil {
		t.Fatal(err)
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				// Each message's recipient names it, so that the log says
				// which message was delivered.
				tag := fmt.Sprintf("w%d-%d", w, i)
				id, err := q.Enqueue(ctx, &queue.Envelope{From: "s@example.org", Recipients: []queue.Recipient{{Addr: tag + "@example.com"}}},
					[]byte("Subject: crash test\r\n\r\nbody\r\n"))
				if err != nil {
					t.Error(err)
					return
				}
				_ = id
				out.Lock()
				fmt.Fprintf(os.Stdout, "accepted %s\n", tag)
				out.Unlock()
			}
		}()
	}
	wg.Wait()
}
