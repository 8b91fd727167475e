package queue_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/sealpost/sealpost/delivery"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/queue/boltstore"
)

// A message is durable once Enqueue returns: the application's SMTP
// server can then answer 250 to the final dot.
func ExampleQueue_Enqueue() {
	dir, _ := os.MkdirTemp("", "sealpost")
	defer os.RemoveAll(dir)
	store, err := boltstore.Open(filepath.Join(dir, "state.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	q, err := queue.New(queue.Config{Store: store, Hostname: "mta.example.org"})
	if err != nil {
		log.Fatal(err)
	}

	notify, _ := queue.ParseNotify("FAILURE,DELAY")
	id, err := q.Enqueue(context.Background(), &queue.Envelope{
		From:  "alice@example.org",
		EnvID: "QQ314159",
		Recipients: []queue.Recipient{
			{Addr: "bob@example.com", Notify: notify, ORcpt: "rfc822;bob@example.com"},
			{Addr: "carol@example.net"},
		},
	}, []byte("From: alice@example.org\r\nSubject: hello\r\n\r\nHi!\r\n"))
	if err != nil {
		log.Fatal(err) // a *queue.RejectError is permanent (5xx), anything else temporary (4xx)
	}
	env, _ := q.Inspect(context.Background(), id)
	for _, r := range env.Recipients {
		fmt.Println(r.Addr, r.State, r.Attempts)
	}
	// Output:
	// bob@example.com pending 0
	// carol@example.net pending 0
}

// Running a queue: one bbolt file for the queue (and the MTA-STS cache and
// TLS-RPT counts), a delivery client, and Run until the process is told to
// stop; Shutdown lets the deliveries under way finish.
func ExampleQueue_Run() {
	dir, _ := os.MkdirTemp("", "sealpost")
	defer os.RemoveAll(dir)
	store, err := boltstore.Open(filepath.Join(dir, "state.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	client, err := delivery.NewClient(delivery.Config{Hostname: "mta.example.org"})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	q, err := queue.New(queue.Config{
		Store:         store,
		Deliverer:     client,
		Hostname:      "mta.example.org",
		Workers:       100,
		DomainWorkers: 10,
		Retry:         queue.Backoff{Initial: 5 * time.Minute, Max: 4 * time.Hour},
		MaxAge:        5 * 24 * time.Hour,
		DelayWarning:  4 * time.Hour,
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()

	// ... the application enqueues mail; at SIGTERM:
	grace, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := q.Shutdown(grace); err != nil {
		log.Print("deliveries cut short: ", err)
	}
	if err := <-done; err != nil && !errors.Is(err, queue.ErrClosed) {
		log.Fatal(err)
	}
	stop()
	fmt.Println("stopped")
	// Output:
	// stopped
}
