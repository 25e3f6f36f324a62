// Package ratelimit limits requests per key (a principal) in fixed
// windows, counted across replicas without a database write per request:
// each replica counts locally and adds its counts to a shared total in
// batches (Flush, every ~100 ms), limiting on the shared total it last
// saw plus what it has not flushed yet. With no shared store (one
// process) the local count is exact.
package ratelimit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Shared holds the counts every replica adds to (store.Store).
type Shared interface {
	// AddRateCounts adds each count to its key's window and returns the
	// totals after; a count of 0 only reads.
	AddRateCounts(ctx context.Context, window time.Time, counts map[string]int64) (map[string]int64, error)
	// PruneRateCounts drops windows that started before before.
	PruneRateCounts(ctx context.Context, before time.Time) error
}

// Config tunes a Limiter.
type Config struct {
	Window time.Duration // 0: a minute
	// FlushEvery is how often Run adds local counts to the shared ones;
	// 0: DefaultFlushEvery. A replica may let through up to what all
	// replicas accept in one period over the limit.
	FlushEvery time.Duration
	Now        func() time.Time // nil: time.Now
	Log        *slog.Logger     // nil: discard
}

// DefaultFlushEvery bounds how stale a replica's view of the others'
// counts is.
const DefaultFlushEvery = 100 * time.Millisecond

// Decision is a request's outcome and what the RateLimit headers say.
type Decision struct {
	Allowed   bool
	Limit     int           // requests per window
	Remaining int           // requests left in this window after this one
	Reset     time.Duration // until the window ends
	Window    time.Duration
}

// Limiter counts requests per key. Safe for concurrent use.
type Limiter struct {
	shared Shared
	window time.Duration
	every  time.Duration
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	start   time.Time // the current window's start
	entries map[string]*entry
	// flushMu keeps flushes in order: a slow batch must not overwrite the
	// totals of a later one.
	flushMu sync.Mutex

	refused, flushFailures atomic.Int64
}

// WritePrometheus writes the limiter's counters in the Prometheus text
// format.
func (l *Limiter) WritePrometheus(w io.Writer) error {
	_, err := fmt.Fprintf(w, `# HELP ward_rate_limited_total Requests refused with 429 over a principal's rate limit.
# TYPE ward_rate_limited_total counter
ward_rate_limited_total %d
# HELP ward_rate_limit_flush_failures_total Failed additions of this replica's counts to the shared totals.
# TYPE ward_rate_limit_flush_failures_total counter
ward_rate_limit_flush_failures_total %d
`, l.refused.Load(), l.flushFailures.Load())
	return err
}

type entry struct {
	shared    int64 // the shared total last seen (this replica's flushed counts included)
	unflushed int64 // accepted here, not yet added to the shared total
	inflight  int64 // being added by a Flush now
	limit     int64 // the limit last asked for
}

// New returns a limiter; shared nil counts in this process only.
func New(shared Shared, cfg Config) *Limiter {
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = DefaultFlushEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Limiter{shared: shared, window: cfg.Window, every: cfg.FlushEvery, now: cfg.Now, log: cfg.Log,
		entries: map[string]*entry{}}
}

// windowOf is the start of the fixed window holding t: windows are
// aligned on the Unix epoch, so every replica agrees on them.
func (l *Limiter) windowOf(t time.Time) time.Time { return t.Truncate(l.window) }

// roll starts a new window when now has left the current one; the old
// window's counts no longer matter. Holds l.mu.
func (l *Limiter) roll(now time.Time) {
	if w := l.windowOf(now); !w.Equal(l.start) {
		l.start = w
		clear(l.entries)
	}
}

// Take counts one request of key against limit (requests per window)
// and says whether it may go on. A refused request is not counted.
func (l *Limiter) Take(key string, limit int) Decision {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	e := l.entries[key]
	if e == nil {
		e = &entry{}
		l.entries[key] = e
	}
	e.limit = int64(limit)
	d := Decision{Limit: limit, Reset: l.start.Add(l.window).Sub(now), Window: l.window}
	used := e.shared + e.unflushed + e.inflight
	if used >= int64(limit) {
		l.refused.Add(1)
		return d
	}
	e.unflushed++
	d.Allowed, d.Remaining = true, limit-int(used)-1
	return d
}

// Flush adds the local counts of the current window to the shared ones
// and learns the totals (other replicas' counts included). On failure the
// counts stay local and go with the next flush.
func (l *Limiter) Flush(ctx context.Context) error {
	if l.shared == nil {
		return nil
	}
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	l.roll(l.now())
	window := l.start
	batch := make(map[string]int64)
	for k, e := range l.entries {
		switch {
		case e.unflushed > 0:
			batch[k], e.inflight, e.unflushed = e.unflushed, e.unflushed, 0
		case e.shared < e.limit:
			// Idle here but maybe busy on another replica: read its
			// total (a read, no write), so the next request here
			// is limited on it. A key refused here stays refused.
			batch[k] = 0
		}
	}
	l.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	totals, err := l.shared.AddRateCounts(ctx, window, batch)
	l.mu.Lock()
	defer l.mu.Unlock()
	current := l.start.Equal(window)
	for k, n := range batch {
		e := l.entries[k]
		if !current || e == nil {
			continue // the window ended meanwhile: its counts no longer matter
		}
		e.inflight -= n
		if err != nil {
			e.unflushed += n
			continue
		}
		e.shared = max(e.shared, totals[k])
	}
	return err
}

// Run flushes every period until ctx ends, and prunes past windows'
// shared rows once per window.
func (l *Limiter) Run(ctx context.Context) {
	if l.shared == nil {
		return
	}
	t := time.NewTicker(l.every)
	defer t.Stop()
	var pruned time.Time
	failures := 0
	for {
		select {
		case <-ctx.Done():
			// What is still local is lost with the process; the next
			// window starts afresh anyway.
			return
		case <-t.C:
		}
		if err := l.Flush(ctx); err != nil && ctx.Err() == nil {
			l.flushFailures.Add(1)
			// One line per failing streak, not one per tick.
			if failures == 0 {
				l.log.WarnContext(ctx, "rate limits: add counts to the shared totals (limiting on this replica's counts until it works)", "err", err)
			}
			failures++
		} else if failures > 0 {
			l.log.InfoContext(ctx, "rate limits: shared totals reachable again", "failed_flushes", failures)
			failures = 0
		}
		if w := l.windowOf(l.now()); !w.Equal(pruned) {
			if err := l.shared.PruneRateCounts(ctx, w.Add(-l.window)); err == nil {
				pruned = w
			}
		}
	}
}
