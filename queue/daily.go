package queue

import (
	"cmp"
	"context"
	"math/rand/v2"
	"time"
)

// dailyState runs Config.Daily once per UTC day, for the day before, at a
// random time within the first DailyWindow of the day.
type dailyState struct {
	q       *Queue
	fn      func(ctx context.Context, day time.Time) error
	window  time.Duration
	lastDay time.Time // the last day it ran for
	next    time.Time // when it runs next
	busy    chan struct{}
}

func (d *dailyState) init(q *Queue) {
	d.q, d.fn = q, q.cfg.Daily
	if d.fn == nil {
		return
	}
	d.window = cmp.Or(q.cfg.DailyWindow, 4*time.Hour)
	d.busy = make(chan struct{}, 1)
	// A start after today's slot catches up at once: the job is safe to
	// run twice, and a node that restarts every night must still report.
	d.next = d.slot(q.now())
}

// slot returns the run time on the UTC day of t.
func (d *dailyState) slot(t time.Time) time.Time {
	midnight := t.UTC().Truncate(24 * time.Hour)
	return midnight.Add(rand.N(d.window))
}

// until returns how long until the next run is due.
func (d *dailyState) until(now time.Time) time.Duration {
	if d.fn == nil {
		return time.Duration(1<<63 - 1)
	}
	return max(d.next.Sub(now), 0)
}

// maybeRun starts the job in the background when it is due and not
// already running.
func (d *dailyState) maybeRun(ctx context.Context, now time.Time) {
	if d.fn == nil || now.Before(d.next) {
		return
	}
	select {
	case d.busy <- struct{}{}:
	default:
		return // the previous run is still going
	}
	today := now.UTC().Truncate(24 * time.Hour)
	day := today.Add(-24 * time.Hour)
	d.lastDay = day
	d.next = d.slot(today.Add(24 * time.Hour))
	go func() {
		defer func() { <-d.busy }()
		if err := d.fn(ctx, day); err != nil {
			d.q.log.Error("queue: daily job", "day", day.Format(time.DateOnly), "err", err)
		}
	}()
}
