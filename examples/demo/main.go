package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"time"
)

func main() {
	verbose := flag.Bool("v", false, "log what the queue and the delivery client do, on stderr")
	reportDomain := flag.String("report", "sts-testing.example", "the domain whose TLS-RPT report is shown")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts := options{ReportDomain: *reportDomain, Color: colorful(os.Stdout), Log: slog.New(slog.DiscardHandler)}
	if *verbose {
		opts.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if _, err := run(ctx, os.Stdout, opts); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// options are the demo's settings.
type options struct {
	// ReportDomain is the domain whose TLS-RPT report is printed; empty
	// prints none.
	ReportDomain string
	// Color writes ANSI colours.
	Color bool
	// Log receives the library's logs. Nil discards them.
	Log *slog.Logger
	// Deadline bounds the whole run. Zero means 8 seconds.
	Deadline time.Duration
}

// run builds the loopback world, sends the demo's mail through the queue
// and prints to stdout what happened. It fails when the world cannot be
// built, when the mail does not come to rest before opts.Deadline, or when
// a recipient's outcome is not the one its scenario wants.
func run(ctx context.Context, stdout io.Writer, opts options) (*outcome, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Deadline == 0 {
		opts.Deadline = 8 * time.Second
	}
	scs := scenarioTable()
	if d := opts.ReportDomain; d != "" && !slices.ContainsFunc(scs, func(sc scenario) bool { return sc.Domain == d }) {
		return nil, fmt.Errorf("no TLS-RPT report for %q: it is not one of the demo's domains", d)
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Deadline)
	defer cancel()
	out, err := send(ctx, scs, opts.ReportDomain, opts.Log)
	if err != nil {
		return nil, err
	}
	if err := render(stdout, out, opts.Color); err != nil {
		return out, err
	}
	wrong := 0
	for _, ro := range out.Recipients {
		if len(ro.unmet()) > 0 {
			wrong++
		}
	}
	if wrong > 0 {
		return out, fmt.Errorf("%s did not end as the demo expects (marked WRONG above)", plural(wrong, "recipient"))
	}
	return out, nil
}
