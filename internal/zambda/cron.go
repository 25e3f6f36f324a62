package zambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/zambda/schedule"
)

// Cron runs scheduled zambdas. Every replica runs one; each tick is claimed
// in the database by (function, scheduled time), so exactly one replica
// runs it. A replica only looks back catchUp for ticks it has not seen, so
// a restart runs the tick it missed but not a day's worth of them.
type Cron struct {
	svc      *Service
	mu       sync.Mutex
	seen     map[string]time.Time // zambda id -> last tick time considered
	running  sync.WaitGroup
	interval time.Duration
	backoff  func(attempt int) time.Duration // wait before re-run attempt+1
}

const catchUp = time.Minute

// busyRetries is how many times a tick refused for lack of a worker is
// tried again (after 1, 2 and 4 s) whatever the retry policy.
const busyRetries = 3

// NewCron makes the scheduler; Run drives it.
func (s *Service) NewCron() *Cron {
	return &Cron{svc: s, seen: map[string]time.Time{}, interval: time.Second, backoff: backoff}
}

// backoff doubles the wait between re-runs of a tick from 1 s to 64 s.
func backoff(attempt int) time.Duration { return time.Duration(1<<min(attempt, 6)) * time.Second }

// Run checks for due ticks every second until ctx ends, then waits for the
// runs it started, which ctx's end cuts.
func (c *Cron) Run(ctx context.Context) { c.RunUntil(ctx, ctx) }

// RunUntil is Run for a graceful stop: once ctx ends no tick is claimed,
// and the runs in flight get until inflight ends to finish. A run cut then
// records no outcome and its tick is released, so that a replica starting
// within the catch-up window (this one, restarted) runs it again.
func (c *Cron) RunUntil(ctx, inflight context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		c.check(ctx, inflight)
		select {
		case <-ctx.Done():
			c.running.Wait()
			return
		case <-t.C:
		}
	}
}

// Check claims and starts every tick due now.
func (c *Cron) Check(ctx context.Context) { c.check(ctx, ctx) }

// check claims due ticks while ctx lasts and runs them under inflight.
func (c *Cron) check(ctx, inflight context.Context) {
	s := c.svc
	zs, err := s.st.ListZambdas(ctx, "", "cron")
	if err != nil {
		s.log.WarnContext(ctx, "cron: list zambdas", "err", err)
		return
	}
	now := s.now()
	for _, z := range zs {
		if z.Status != "Active" || z.Schedule == nil {
			continue
		}
		var sc Schedule
		if err := json.Unmarshal(z.Schedule, &sc); err != nil {
			continue
		}
		expr, err := schedule.Parse(sc.Expression)
		if err != nil {
			continue
		}
		anchor := z.CreatedAt
		if sc.Start != nil {
			anchor = *sc.Start
		}
		c.mu.Lock()
		from, ok := c.seen[z.ID]
		if !ok || from.Before(now.Add(-catchUp)) {
			from = now.Add(-catchUp)
		}
		c.mu.Unlock()
		last := from
		for tick := expr.NextFrom(anchor, from); !tick.IsZero() && !tick.After(now); tick = expr.NextFrom(anchor, tick) {
			last = tick
			if sc.Start != nil && tick.Before(*sc.Start) || sc.End != nil && tick.After(*sc.End) {
				continue
			}
			won, err := s.st.ClaimTick(ctx, z.ProjectID, z.ID, tick, s.cfg.ReplicaID, now)
			if err != nil {
				s.log.WarnContext(ctx, "cron: claim", "zambda", z.ID, "err", err)
				last = tick.Add(-time.Nanosecond) // try this tick again next time
				break
			}
			if won {
				c.running.Add(1)
				go func(z store.Zambda, tick time.Time, l retryLimits) {
					defer c.running.Done()
					c.runTick(inflight, z, tick, l)
				}(z, tick, limits(sc))
			}
		}
		c.mu.Lock()
		c.seen[z.ID] = last
		c.mu.Unlock()
	}
}

// retryLimits is a schedule's retry policy as runTick applies it.
type retryLimits struct {
	retries int           // re-runs after a failed first run
	maxAge  time.Duration // no re-run starts this long after the tick; 0: no limit
}

// limits reads the retry policy: no re-runs without one. Values are
// clamped because rows stored before the API checked them may hold any.
func limits(sc Schedule) retryLimits {
	var l retryLimits
	if p := sc.RetryPolicy; p != nil {
		if p.MaximumRetry != nil {
			l.retries = min(max(*p.MaximumRetry, 0), maxRetryLimit)
		}
		if p.MaximumEventAge != nil {
			l.maxAge = time.Duration(min(max(*p.MaximumEventAge, minEventAge), maxEventAge)) * time.Second
		}
	}
	return l
}

// runTick invokes the function (event body null, as contract 4.3 infers),
// retrying a failed run with backoff as the schedule's retry policy allows.
func (c *Cron) runTick(ctx context.Context, z store.Zambda, tick time.Time, l retryLimits) {
	s := c.svc
	outcome := ""
	for attempt := 0; ; attempt++ {
		out, err := s.Execute(ctx, z.ProjectID, Call{IDOrName: z.ID, Trigger: "cron", RequestID: fmt.Sprintf("cron-%s-%d-%d", z.ID[:8], tick.Unix(), attempt)})
		switch {
		case err != nil:
			outcome = "error: " + clipErr(err)
		case out.Status >= 400:
			outcome = fmt.Sprintf("status %d: %s", out.Status, failureMessage(out))
		default:
			outcome = fmt.Sprintf("status %d", out.Status)
		}
		// A run refused for lack of a worker never started, so trying it
		// again cannot run the function twice: a few tries even when the
		// policy allows no retries.
		busy := errors.Is(err, fault.ErrTooMany)
		if err == nil && out.Status < 500 || attempt >= l.retries && !(busy && attempt < busyRetries) {
			break
		}
		select {
		case <-time.After(c.backoff(attempt)):
		case <-ctx.Done():
			c.release(ctx, z, tick)
			return
		}
		if l.maxAge > 0 && s.now().Sub(tick) >= l.maxAge {
			outcome += fmt.Sprintf(" (not run again: the tick is older than the retry policy's maximumEventAge, %d s)", int(l.maxAge.Seconds()))
			break
		}
	}
	if ctx.Err() != nil {
		c.release(ctx, z, tick)
		return
	}
	if err := s.st.TickOutcome(ctx, z.ProjectID, z.ID, tick, outcome); err != nil {
		s.log.WarnContext(ctx, "cron: outcome", "zambda", z.ID, "err", err)
	}
}

// release gives back a tick whose run a stop cut (ctx has ended: the write
// gets a few seconds of its own).
func (c *Cron) release(ctx context.Context, z store.Zambda, tick time.Time) {
	s := c.svc
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.st.ReleaseTick(rctx, z.ProjectID, z.ID, tick, s.cfg.ReplicaID); err != nil {
		s.log.WarnContext(rctx, "cron: release a tick cut by the stop", "zambda", z.ID, "tick", tick, "err", err)
		return
	}
	s.log.InfoContext(rctx, "cron: run cut by the stop, tick released", "zambda", z.ID, "tick", tick)
}
