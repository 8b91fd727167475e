package boltstore_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
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

// crashKillsEnv sets how many times the crash test kills its child
// (default 3): SEALPOST_CRASH_KILLS=40 go test -run TestCrash -v ./queue/boltstore
// gives the figures a hardening round reports.
const crashKillsEnv = "SEALPOST_CRASH_KILLS"

func TestCrashLosesNoAcceptedMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	kills := 3
	if v := os.Getenv(crashKillsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", crashKillsEnv, v)
		}
		kills = n
	}
	dir := t.TempDir()
	child := func(role string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
		cmd.Env = append(os.Environ(), crashRoleEnv+"="+role, crashDirEnv+"="+dir)
		cmd.Stderr = os.Stderr
		return cmd
	}

	// Each run enqueues and delivers on the same file until it is killed
	// with SIGKILL at a random moment, once it has accepted and delivered
	// something. The logs' lengths at each kill cut them into one part per
	// run.
	accepted := map[string]bool{}
	var cuts []logCut
	for k := range kills {
		cmd := child("work")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1024)
		go func() {
			defer close(got)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if id, ok := strings.CutPrefix(sc.Text(), "accepted "); ok {
					got <- id
				}
			}
		}()
		// The first run waits for a fuller queue, so that every later run
		// starts with deliveries to make.
		want, busy := 20, time.Duration(50+rand.IntN(400))*time.Millisecond
		if k == 0 {
			want = 200
		}
		n, deadline := 0, time.After(30*time.Second)
		var kill <-chan time.Time
	wait:
		for {
			select {
			case id, ok := <-got:
				if !ok {
					t.Fatalf("run %d ended before it was killed", k+1)
				}
				accepted[id] = true
				if n++; n == want {
					kill = time.After(busy)
				}
			case <-kill:
				break wait
			case <-deadline:
				cmd.Process.Kill()
				t.Fatalf("run %d accepted %d messages in 30 s; want %d", k+1, n, want)
			}
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		for id := range got {
			accepted[id] = true // written before the kill, read after it
		}
		_ = cmd.Wait()
		cuts = append(cuts, cutLogs(t, dir))
	}

	// Then once more on the same file, until the queue is empty.
	cmd := child("drain")
	cmd.Stdout = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("restarted child: %v", err)
	}

	delivered := readDelivered(t, dir)
	var lost []string
	for tag := range accepted {
		for _, domain := range crashDomains {
			if rcpt := tag + "@" + domain; len(delivered[rcpt]) == 0 {
				lost = append(lost, rcpt)
			}
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of the %d recipients of accepted messages were never delivered, e.g. %v", len(lost), len(accepted)*len(crashDomains), lost[:min(5, len(lost))])
	}
	// A recipient delivered twice was confirmed by its "server" in the run
	// that was killed and delivered again after the restart: its
	// "delivered" mark was not yet committed at the kill. At-least-once
	// delivery makes that unavoidable for the deliveries under way at the
	// kill, and for those that ended while their mark was being
	// committed; a mark that waits for anything else (the message's other
	// domains, say) makes more. The bound is the recipients the queue can
	// have under way at once.
	dups := make([]int, kills+1) // the last: twice in the drain, which is never killed
	for _, at := range delivered {
		if len(at) > 1 {
			dups[runOf(cuts, at[0])]++
		}
	}
	if dups[kills] > 0 {
		t.Errorf("%d messages delivered twice by the run that was not killed", dups[kills])
	}
	inFlight := underWay(t, dir, cuts)
	var sumDups, sumFlight, worse int
	for k := range kills {
		sumDups += dups[k]
		sumFlight += inFlight[k]
		if dups[k] > inFlight[k] {
			worse++
			t.Logf("kill %d: %d recipients delivered twice, %d under way", k+1, dups[k], inFlight[k])
		}
	}
	t.Logf("%d kills: %d messages (%d recipients) acknowledged, %d recipients lost, %d delivered twice (%.1f per kill, at most %d), %d under way at the kills (%.1f per kill)",
		kills, len(accepted), len(accepted)*len(crashDomains), len(lost), sumDups, float64(sumDups)/float64(kills), slices.Max(dups), sumFlight, float64(sumFlight)/float64(kills))
	if sumDups > kills*crashWorkers {
		t.Errorf("%d recipients delivered twice after %d kills, more than the %d a kill can catch under way (%d workers each): delivered marks lag behind the deliveries", sumDups, kills, kills*crashWorkers, crashWorkers)
	}

	s, err := boltstore.Open(filepath.Join(dir, "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if p, ok, err := s.PolicyCache().Get(context.Background(), "example.com"); err != nil || !ok || p.Text != crashPolicy.Text || !p.Expires.Equal(crashPolicy.Expires) {
		t.Errorf("STS cache after the crash = %+v, %v, %v; want the policy cached before it", p, ok, err)
	}
	counts, err := s.DayCounts(context.Background(), crashDay, "example.com")
	if err != nil || len(counts) != 1 || counts[0].Successful != int64(7*kills) {
		t.Errorf("TLS-RPT counts after the crashes = %+v, %v; want the %d sessions recorded before them", counts, err, 7*kills)
	}
}

// logCut is where the logs ended at a kill.
type logCut struct{ delivered, attempts int64 }

func cutLogs(t *testing.T, dir string) logCut {
	size := func(name string) int64 {
		fi, err := os.Stat(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	return logCut{size("delivered.log"), size("attempts.log")}
}

// runOf returns the run whose part of delivered.log holds offset.
func runOf(cuts []logCut, offset int64) int {
	for k, c := range cuts {
		if offset < c.delivered {
			return k
		}
	}
	return len(cuts) // the drain
}

// underWay counts, per killed run, the deliveries begun and not ended when
// it was killed.
func underWay(t *testing.T, dir string, cuts []logCut) []int {
	b, err := os.ReadFile(filepath.Join(dir, "attempts.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	n := make([]int, len(cuts))
	var from int64
	for k, c := range cuts {
		open := map[string]bool{}
		for _, line := range strings.Split(string(b[from:c.attempts]), "\n") {
			if id, ok := strings.CutPrefix(line, "begin "); ok {
				open[id] = true
			} else if id, ok := strings.CutPrefix(line, "end "); ok {
				delete(open, id)
			}
		}
		n[k], from = len(open), c.attempts
	}
	return n
}

// readDelivered reads the deliveries log: message ID → the offsets of the
// lines that confirm its deliveries.
func readDelivered(t *testing.T, dir string) map[string][]int64 {
	b, err := os.ReadFile(filepath.Join(dir, "delivered.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	m := map[string][]int64{}
	var at int64
	for _, line := range strings.SplitAfter(string(b), "\n") {
		// A line cut by the kill has no end mark and is not counted: the
		// "remote server" never confirmed it.
		if id, ok := strings.CutSuffix(line, " ok\n"); ok {
			m[id] = append(m[id], at)
		}
		at += int64(len(line))
	}
	return m
}

// crashDomains are the domains of every crash-test message's recipients,
// one each; the last is slow to answer, so that the message's other
// recipients are delivered long before it is done.
var crashDomains = []string{"a.example", "b.example", "c.example", "slow.example"}

// crashWorkers is the crash test's Config.Workers.
const crashWorkers = 16

// logDeliverer stands in for the remote servers: a recipient's delivery
// is confirmed by an fsynced line in delivered.log. One recipient in ten
// fails temporarily. attempts.log has a line as each recipient's attempt
// begins and ends (written, not synced: a kill -9 does not lose what the
// kernel has).
type logDeliverer struct {
	mu       sync.Mutex
	f        *os.File
	attempts *os.File
}

func (d *logDeliverer) Deliver(ctx context.Context, m *delivery.Message) ([]delivery.Result, error) {
	for _, r := range m.Recipients {
		fmt.Fprintf(d.attempts, "begin %s\n", r.Address)
		defer fmt.Fprintf(d.attempts, "end %s\n", r.Address)
	}
	pause := time.Duration(rand.IntN(2000)) * time.Microsecond
	if strings.HasSuffix(m.Recipients[0].Address, "@slow.example") {
		pause = 5*time.Millisecond + 2*pause
	}
	time.Sleep(pause)
	var res []delivery.Result
	var ok strings.Builder
	for _, r := range m.Recipients {
		if rand.IntN(10) == 0 {
			res = append(res, delivery.Result{Recipient: r.Address, Status: delivery.TemporaryFailure, Code: 451, Enhanced: smtp.EnhancedCode{4, 3, 0}})
			continue
		}
		res = append(res, delivery.Result{Recipient: r.Address, Status: delivery.Delivered, Code: 250})
		fmt.Fprintf(&ok, "%s ok\n", r.Address)
	}
	if ok.Len() > 0 {
		d.mu.Lock()
		defer d.mu.Unlock()
		if _, err := d.f.WriteString(ok.String()); err != nil {
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
	attempts, err := os.OpenFile(filepath.Join(dir, "attempts.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.New(queue.Config{
		Store: s, Deliverer: &logDeliverer{f: f, attempts: attempts}, Workers: crashWorkers,
		Retry:        queue.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond},
		PollInterval: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	go q.Run(ctx)

	if role == "drain" {
		// A drain that cannot finish fails, saying what is left, rather
		// than hang until the test binary's timeout.
		deadline := time.Now().Add(2 * time.Minute)
		for {
			n, next, err := s.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				left, err := s.List(ctx, "", 20)
				t.Errorf("drain: %d messages still counted after 2 minutes, next due %v; listed %d (%v):", n, next, len(left), err)
				for _, env := range left {
					t.Errorf("  %s: %+v", env.ID, env.Recipients)
				}
				t.FailNow()
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
	run := strconv.Itoa(os.Getpid()) // tells the runs' messages apart
	var out sync.Mutex
	var wg sync.WaitGroup
	// Four writers of 150 messages each, a little slower than the queue
	// can deliver, so that every run has deliveries under way and the
	// drain is short (also under the race detector).
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 150 {
				time.Sleep(time.Millisecond)
				// The message's recipients are named after it, so that the
				// log says which message was delivered.
				tag := fmt.Sprintf("%s-w%d-%d", run, w, i)
				env := &queue.Envelope{From: "s@example.org"}
				for _, domain := range crashDomains {
					env.Recipients = append(env.Recipients, queue.Recipient{Addr: tag + "@" + domain})
				}
				id, err := q.Enqueue(ctx, env, []byte("Subject: crash test\r\n\r\nbody\r\n"))
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
	// Deliver until killed; the minute only bounds an orphan's life.
	time.Sleep(time.Minute)
}
