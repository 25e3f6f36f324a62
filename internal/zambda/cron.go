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
// in the database by (function, scheduled time), so one replica at a time
// runs it. A replica only looks back catchUp for ticks it has not seen, so
// a restart runs the tick it missed but not a day's worth of them; no tick
// earlier than the function's creation or last schedule change runs.
//
// A claim is a lease, renewed while the run goes on. If its replica dies
// or stalls, the lease lapses without an outcome and another replica takes
// the tick over and runs it again, within the retry policy: every run
// started counts as an attempt, whichever replica started it. So a tick
// runs at least once (unless its policy's retries and event age run out),
// and what a stalled replica writes after losing the tick is refused.
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
// records no outcome and its tick is released: any replica takes it over
// on its next check, and the cut run does not count against the retry
// policy.
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

// Check claims and starts every tick due now, and takes over ticks whose
// lease lapsed.
func (c *Cron) Check(ctx context.Context) { c.check(ctx, ctx) }

// cronFn is an active cron function with its parsed schedule.
type cronFn struct {
	z    store.Zambda
	sc   Schedule
	expr schedule.Schedule
}

// check claims due ticks while ctx lasts and runs them under inflight.
func (c *Cron) check(ctx, inflight context.Context) {
	s := c.svc
	zs, err := s.st.ListZambdas(ctx, "", "cron")
	if err != nil {
		s.log.WarnContext(ctx, "cron: list zambdas", "err", err)
		return
	}
	now := s.now()
	active := map[string]cronFn{}
	validating := map[string]bool{}
	for _, z := range zs {
		validating[z.ID] = z.Status == "Validating"
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
		f := cronFn{z: z, sc: sc, expr: expr}
		active[z.ID] = f
		c.due(ctx, inflight, f, now)
	}
	c.takeOver(ctx, inflight, active, validating, now)
}

// due claims and starts f's ticks due by now that this replica has not
// considered yet.
func (c *Cron) due(ctx, inflight context.Context, f cronFn, now time.Time) {
	s, z, sc := c.svc, f.z, f.sc
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
	for tick := f.expr.NextFrom(anchor, from); !tick.IsZero() && !tick.After(now); tick = f.expr.NextFrom(anchor, tick) {
		last = tick
		if sc.Start != nil && tick.Before(*sc.Start) || sc.End != nil && tick.After(*sc.End) || tick.Before(z.ArmedAt) {
			continue // the store refuses a tick before ArmedAt too
		}
		claim, won, err := s.st.ClaimTick(ctx, z.ProjectID, z.ID, tick, s.cfg.ReplicaID, now, s.cfg.CronLease)
		if err != nil {
			s.log.WarnContext(ctx, "cron: claim", "zambda", z.ID, "err", err)
			last = tick.Add(-time.Nanosecond) // try this tick again next time
			break
		}
		if won {
			c.start(inflight, z, tick, limits(sc), claim)
		}
	}
	c.mu.Lock()
	c.seen[z.ID] = last
	c.mu.Unlock()
}

// takeOver claims ticks whose lease lapsed without an outcome (their
// replica died, stalled or was stopped) and runs them again as their
// retry policy allows. A tick of a function no longer an active cron
// function is closed with an outcome saying so; one whose new code is
// being checked waits for the check.
func (c *Cron) takeOver(ctx, inflight context.Context, active map[string]cronFn, validating map[string]bool, now time.Time) {
	s := c.svc
	lapsed, err := s.st.LapsedTicks(ctx, now, 100)
	if err != nil {
		s.log.WarnContext(ctx, "cron: lapsed ticks", "err", err)
		return
	}
	for _, t := range lapsed {
		if validating[t.ZambdaID] {
			continue
		}
		claim, won, err := s.st.ClaimTick(ctx, t.ProjectID, t.ZambdaID, t.At, s.cfg.ReplicaID, now, s.cfg.CronLease)
		if err != nil {
			s.log.WarnContext(ctx, "cron: take over a lapsed tick", "zambda", t.ZambdaID, "tick", t.At, "err", err)
			continue
		}
		if !won {
			continue // another replica was first
		}
		s.log.InfoContext(ctx, "cron: took over a tick whose lease lapsed", "zambda", t.ZambdaID, "tick", t.At,
			"previous_holder", t.ClaimedBy, "runs_started", claim.Attempts)
		f, ok := active[t.ZambdaID]
		if !ok {
			c.finish(ctx, store.Zambda{ProjectID: t.ProjectID, ID: t.ZambdaID}, t.At, claim,
				"error: not run again: the function is no longer an active cron function")
			continue
		}
		c.start(inflight, f.z, t.At, limits(f.sc), claim)
	}
}

// start runs a claimed tick in the background.
func (c *Cron) start(ctx context.Context, z store.Zambda, tick time.Time, l retryLimits, claim store.TickClaim) {
	c.running.Add(1)
	go func() {
		defer c.running.Done()
		c.runTick(ctx, z, tick, l, claim)
	}()
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

// errLeaseLost cuts a run whose tick another replica took over.
var errLeaseLost = errors.New("cron: the tick's lease lapsed and another replica took it over")

// runTick invokes the function (event body null, as contract 4.3 infers),
// retrying a failed run with backoff as the schedule's retry policy allows.
// The claim's earlier runs (started by replicas that died) count: the
// attempt number goes on from them. The lease is renewed meanwhile.
func (c *Cron) runTick(ctx context.Context, z store.Zambda, tick time.Time, l retryLimits, claim store.TickClaim) {
	s := c.svc
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		c.renew(ctx, cancel, z, tick, claim)
	}()
	defer func() { cancel(nil); <-renewed }()

	if claim.Attempts > 0 {
		// Runs started under an earlier claim whose replica died or
		// stalled: each failed (no outcome), and the policy decides
		// whether the tick runs again.
		outcome := fmt.Sprintf("error: %d run(s) started and did not finish (their replica stopped or lost the tick)", claim.Attempts)
		switch {
		case claim.Attempts > l.retries:
			c.finish(ctx, z, tick, claim, outcome+fmt.Sprintf("; not run again: the retry policy allows %d retries", l.retries))
			return
		case l.maxAge > 0 && s.now().Sub(tick) >= l.maxAge:
			c.finish(ctx, z, tick, claim, outcome+fmt.Sprintf(" (not run again: the tick is older than the retry policy's maximumEventAge, %d s)", int(l.maxAge.Seconds())))
			return
		}
	}
	outcome, cutRun := "", false
	for attempt := claim.Attempts; ; attempt++ {
		// Count the run before it starts: a replica that dies in it
		// leaves the count for the one taking over.
		n, held, err := s.st.TickAttempt(ctx, z.ProjectID, z.ID, tick, claim.Token, s.now().Add(s.cfg.CronLease))
		if err != nil {
			if ctx.Err() != nil {
				break // a stop: released below
			}
			// Not counted, so not run: the lease lapses and a replica
			// takes the tick over.
			s.log.WarnContext(ctx, "cron: count a run", "zambda", z.ID, "tick", tick, "err", err)
			return
		}
		if !held {
			cancel(errLeaseLost)
			break
		}
		s.log.InfoContext(ctx, "cron: run", "zambda", z.ID, "tick", tick, "attempt", n, "max_attempts", l.retries+1)
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
		cutRun = ctx.Err() != nil
		if cutRun || err == nil && out.Status < 500 || attempt >= l.retries && !(busy && attempt < busyRetries) {
			break
		}
		select {
		case <-time.After(c.backoff(attempt)):
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		if l.maxAge > 0 && s.now().Sub(tick) >= l.maxAge {
			outcome += fmt.Sprintf(" (not run again: the tick is older than the retry policy's maximumEventAge, %d s)", int(l.maxAge.Seconds()))
			break
		}
	}
	switch {
	case context.Cause(ctx) == errLeaseLost:
		s.log.WarnContext(ctx, "cron: run abandoned: another replica took the tick over (this one stalled past its lease)", "zambda", z.ID, "tick", tick)
	case ctx.Err() != nil:
		c.release(ctx, z, tick, claim, cutRun)
	default:
		c.finish(ctx, z, tick, claim, outcome)
	}
}

// renew extends the tick's lease every third of it until ctx ends; when
// the claim no longer holds the tick, it cuts the run with errLeaseLost.
func (c *Cron) renew(ctx context.Context, cancel context.CancelCauseFunc, z store.Zambda, tick time.Time, claim store.TickClaim) {
	s := c.svc
	t := time.NewTicker(s.cfg.CronLease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		held, err := s.st.RenewTick(ctx, z.ProjectID, z.ID, tick, claim.Token, s.now().Add(s.cfg.CronLease))
		if err != nil {
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "cron: renew a tick's lease", "zambda", z.ID, "tick", tick, "err", err)
			}
			continue // the lease has a margin of two more tries
		}
		if !held {
			cancel(errLeaseLost)
			return
		}
	}
}

// finish records the tick's outcome if this claim still holds it; a
// stale claim's outcome is refused and logged.
func (c *Cron) finish(ctx context.Context, z store.Zambda, tick time.Time, claim store.TickClaim, outcome string) {
	s := c.svc
	held, err := s.st.TickOutcome(ctx, z.ProjectID, z.ID, tick, claim.Token, outcome)
	switch {
	case err != nil:
		s.log.WarnContext(ctx, "cron: outcome", "zambda", z.ID, "err", err)
	case !held:
		s.log.WarnContext(ctx, "cron: outcome refused: another replica took the tick over (this one stalled past its lease)",
			"zambda", z.ID, "tick", tick, "outcome", outcome)
	}
}

// release gives back a tick whose run a stop cut (ctx has ended: the write
// gets a few seconds of its own); a run cut midway does not count.
func (c *Cron) release(ctx context.Context, z store.Zambda, tick time.Time, claim store.TickClaim, cutRun bool) {
	s := c.svc
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.st.ReleaseTick(rctx, z.ProjectID, z.ID, tick, claim.Token, cutRun); err != nil {
		s.log.WarnContext(rctx, "cron: release a tick cut by the stop", "zambda", z.ID, "tick", tick, "err", err)
		return
	}
	s.log.InfoContext(rctx, "cron: run cut by the stop, tick released", "zambda", z.ID, "tick", tick)
}
