package zambda

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store/storetest"
	"github.com/wardhealth/ward/internal/zambda/runtime"
)

// recorder is an Invoker that records request ids and answers as told.
type recorder struct {
	mu     sync.Mutex
	ids    []string
	answer func(n int) (runtime.Result, error) // n: this replica's calls so far, from 0
}

func (r *recorder) Invoke(ctx context.Context, _ runtime.Function, inv runtime.Invocation) (runtime.Result, error) {
	r.mu.Lock()
	n := len(r.ids)
	r.ids = append(r.ids, inv.RequestID)
	r.mu.Unlock()
	if r.answer == nil {
		return runtime.Result{Payload: []byte(`{"statusCode":200,"body":"{}"}`)}, nil
	}
	return r.answer(n)
}

func (r *recorder) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

func answer500(int) (runtime.Result, error) {
	return runtime.Result{Payload: []byte(`{"statusCode":500,"body":"{\"message\":\"boom\"}"}`)}, nil
}

// TestCronTakeOver: a tick whose replica died mid-run (its lease lapsed
// with no outcome) is claimed by another replica and run again within the
// retry policy, every run counted whichever replica started it; once the
// policy's retries or event age are spent it is given up with an outcome
// saying so. The dead replicas are claims and counted runs written
// straight to the store; the clock is fake.
func TestCronTakeOver(t *testing.T) {
	const lease = 30 * time.Second // the default CronLease
	for _, tc := range []struct {
		name     string
		policy   string
		deaths   []int         // runs each dead claim had started, in order
		at       time.Duration // when the survivor checks, after the last death's claim
		answer   func(int) (runtime.Result, error)
		runs     []int // attempt numbers (0-based) the survivor runs
		attempts int   // runs counted on the tick in the end
		outcome  string
	}{
		{name: "no policy: given up", policy: `null`, deaths: []int{1}, at: lease + time.Second,
			attempts: 1, outcome: "error: 1 run(s) started and did not finish (their replica stopped or lost the tick); not run again: the retry policy allows 0 retries"},
		{name: "retried within the policy", policy: `{"maximumRetry":2}`, deaths: []int{1}, at: lease + time.Second,
			runs: []int{1}, attempts: 2, outcome: "status 200"},
		{name: "the survivor's failures count on", policy: `{"maximumRetry":2}`, deaths: []int{1}, at: lease + time.Second, answer: answer500,
			runs: []int{1, 2}, attempts: 3, outcome: "status 500: boom"},
		{name: "two deaths spend a retry each", policy: `{"maximumRetry":1}`, deaths: []int{1, 1}, at: lease + time.Second,
			attempts: 2, outcome: "error: 2 run(s) started and did not finish (their replica stopped or lost the tick); not run again: the retry policy allows 1 retries"},
		{name: "a death before the run costs nothing", policy: `null`, deaths: []int{0}, at: lease + time.Second,
			runs: []int{0}, attempts: 1, outcome: "status 200"},
		{name: "not before the lease lapses", policy: `{"maximumRetry":2}`, deaths: []int{1}, at: lease - time.Second, attempts: 1},
		{name: "maximumEventAge ends it", policy: `{"maximumRetry":5,"maximumEventAge":60}`, deaths: []int{1}, at: 61 * time.Second,
			attempts: 1, outcome: "error: 1 run(s) started and did not finish (their replica stopped or lost the tick) (not run again: the tick is older than the retry policy's maximumEventAge, 60 s)"},
	} {
		for _, b := range storetest.Backends() {
			t.Run(tc.name+"/"+b.Name, func(t *testing.T) {
				t.Parallel()
				env := newTestEnv(t, b, false)
				rec := &recorder{answer: tc.answer}
				survivor := env.replica(t, "replica-s", rec)
				f := survivor.deploy(t, `{"name":"ticker","runtime":"nodejs20.x","triggerMethod":"cron",
					"schedule":{"expression":"rate(1 hour)","retryPolicy":`+tc.policy+`}}`)
				ctx := t.Context()
				tick := env.clock.now() // the anchor is the first tick
				for i, runs := range tc.deaths {
					if i > 0 {
						env.clock.add(lease + time.Second)
					}
					claim, won, err := env.st.ClaimTick(ctx, env.project, f.ID, tick, "dead", env.clock.now(), lease)
					if err != nil || !won {
						t.Fatalf("dead claim %d: %v %v", i, won, err)
					}
					for range runs {
						if _, held, err := env.st.TickAttempt(ctx, env.project, f.ID, tick, claim.Token, env.clock.now().Add(lease)); err != nil || !held {
							t.Fatalf("dead run: %v %v", held, err)
						}
					}
				}
				env.clock.add(tc.at)
				c := survivor.NewCron()
				c.backoff = func(int) time.Duration { return 0 }
				c.Check(ctx)
				c.running.Wait()

				var want []string
				for _, a := range tc.runs {
					want = append(want, requestID(f.ID, tick.Unix(), a))
				}
				if got := rec.calls(); !slices.Equal(got, want) {
					t.Fatalf("the survivor ran %v, want %v", got, want)
				}
				ticks, err := env.st.Ticks(ctx, env.project, f.ID)
				if err != nil || len(ticks) != 1 {
					t.Fatalf("ticks %+v %v", ticks, err)
				}
				if got := ticks[0]; got.Attempts != tc.attempts || got.Outcome != tc.outcome {
					t.Fatalf("tick %+v, want %d attempts and outcome %q", got, tc.attempts, tc.outcome)
				}
			})
		}
	}
}

// TestCronStaleHolder: a replica that stalls mid-run past its lease loses
// the tick to another replica. When it resumes, it starts no retry, and
// its outcome is refused and logged whether the survivor has finished or
// is still running: the survivor's outcome stands.
func TestCronStaleHolder(t *testing.T) {
	for _, tc := range []struct {
		name        string
		staleStatus int  // the stalled run's answer
		staleFirst  bool // it resumes while the survivor's run goes on
		log         string
	}{
		{name: "a failed run resumes after the survivor finished", staleStatus: 500, log: "run abandoned: another replica took the tick over"},
		{name: "a run resumes while the survivor runs", staleStatus: 201, staleFirst: true, log: "outcome refused: another replica took the tick over"},
	} {
		for _, b := range storetest.Backends() {
			t.Run(tc.name+"/"+b.Name, func(t *testing.T) {
				env := newTestEnv(t, b, false)
				resume, started := make(chan struct{}), make(chan struct{}, 1)
				stalled := &recorder{answer: func(int) (runtime.Result, error) {
					started <- struct{}{}
					<-resume // frozen
					return runtime.Result{Payload: []byte(fmt.Sprintf(`{"statusCode":%d,"body":"{}"}`, tc.staleStatus))}, nil
				}}
				var logs syncBuf
				a := env.replica(t, "replica-a", stalled)
				a.log = slog.New(slog.NewTextHandler(&logs, nil))
				survivorRuns, survivorGo := make(chan struct{}, 1), make(chan struct{})
				survivor := &recorder{answer: func(int) (runtime.Result, error) {
					survivorRuns <- struct{}{}
					<-survivorGo
					return runtime.Result{Payload: []byte(`{"statusCode":200,"body":"{}"}`)}, nil
				}}
				s := env.replica(t, "replica-s", survivor)
				f := a.deploy(t, `{"name":"ticker","runtime":"nodejs20.x","triggerMethod":"cron",
					"schedule":{"expression":"rate(1 hour)","retryPolicy":{"maximumRetry":3}}}`)
				tick := env.clock.now()
				ca, cs := a.NewCron(), s.NewCron()
				ca.backoff = func(int) time.Duration { return 0 }
				ca.Check(t.Context())
				<-started
				env.clock.add(31 * time.Second) // past the lease: replica-a renewed nothing meanwhile
				cs.Check(t.Context())
				<-survivorRuns
				if tc.staleFirst {
					close(resume)
					ca.running.Wait()
					close(survivorGo)
					cs.running.Wait()
				} else {
					close(survivorGo)
					cs.running.Wait()
					close(resume)
					ca.running.Wait()
				}

				if got, want := survivor.calls(), []string{requestID(f.ID, tick.Unix(), 1)}; !slices.Equal(got, want) {
					t.Fatalf("the survivor ran %v, want %v", got, want)
				}
				if n := len(stalled.calls()); n != 1 {
					t.Fatalf("the stalled replica ran %d times, want 1 (no retry once it lost the tick)", n)
				}
				ticks, err := env.st.Ticks(t.Context(), env.project, f.ID)
				if err != nil || len(ticks) != 1 || ticks[0].Outcome != "status 200" || ticks[0].ClaimedBy != "replica-s" || ticks[0].Attempts != 2 {
					t.Fatalf("ticks %+v %v, want the survivor's outcome after 2 runs", ticks, err)
				}
				if !strings.Contains(logs.String(), tc.log) {
					t.Fatalf("the stalled replica did not log %q:\n%s", tc.log, logs.String())
				}
			})
		}
	}
}

// TestCronArmed: no tick earlier than the function's creation or its last
// schedule change runs, though the catch-up window reaches back over it;
// the store refuses to claim one too.
func TestCronArmed(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			env := newTestEnv(t, b, false)
			rec := &recorder{}
			r := env.replica(t, "replica-a", rec)
			ctx := t.Context()
			base := env.clock.now() // 12:00:00, a minute boundary
			env.clock.set(base.Add(30 * time.Second))
			f := r.deploy(t, `{"name":"minutely","runtime":"nodejs20.x","triggerMethod":"cron","schedule":{"expression":"cron(* * * * ? *)"}}`)
			check := func(at time.Duration) {
				env.clock.set(base.Add(at))
				c := r.NewCron() // a fresh replica: it looks back the whole catch-up window
				c.Check(ctx)
				c.running.Wait()
			}
			check(31 * time.Second) // 12:00:00 is in the window, before the creation
			if _, won, err := env.st.ClaimTick(ctx, env.project, f.ID, base, "x", env.clock.now(), time.Minute); err != nil || won {
				t.Fatalf("the store let a tick before the creation be claimed: %v %v", won, err)
			}
			check(61 * time.Second) // 12:01:00
			env.clock.set(base.Add(5*time.Minute + 30*time.Second))
			var in Input
			_ = json.Unmarshal([]byte(`{"schedule":{"expression":"cron(0/1 * * * ? *)"}}`), &in)
			if _, err := r.Update(ctx, env.project, f.ID, in); err != nil {
				t.Fatal(err)
			}
			check(5*time.Minute + 31*time.Second) // 12:05:00 is before the change
			check(6*time.Minute + time.Second)    // 12:06:00
			env.clock.set(base.Add(6*time.Minute + 30*time.Second))
			if _, err := r.Update(ctx, env.project, f.ID, Input{}); err != nil { // no schedule change
				t.Fatal(err)
			}
			check(7*time.Minute + time.Second) // 12:07:00

			var want []string
			for _, m := range []time.Duration{1, 6, 7} {
				want = append(want, requestID(f.ID, base.Add(m*time.Minute).Unix(), 0))
			}
			if got := rec.calls(); !slices.Equal(got, want) {
				t.Fatalf("ran %v, want %v (12:01, 12:06, 12:07)", got, want)
			}
		})
	}
}

// syncBuf is a log destination safe for concurrent writes.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCronTakeOverWaitsForCode: a lapsed tick of a function whose new code
// is being checked is not closed as inactive: it is taken over once the
// function is Active again; one of a function that stopped being a cron
// function is closed with an outcome saying so.
func TestCronTakeOverWaitsForCode(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			env := newTestEnv(t, b, false)
			rec := &recorder{}
			r := env.replica(t, "replica-s", rec)
			ctx := t.Context()
			tick := env.clock.now()
			var ids []string
			for _, name := range []string{"checking", "no-longer-cron"} {
				f := r.deploy(t, `{"name":"`+name+`","runtime":"nodejs20.x","triggerMethod":"cron","schedule":{"expression":"rate(1 hour)"}}`)
				ids = append(ids, f.ID)
				if _, won, err := env.st.ClaimTick(ctx, env.project, f.ID, tick, "dead", tick, 30*time.Second); err != nil || !won {
					t.Fatalf("dead claim: %v %v", won, err)
				}
			}
			setStatus := func(id, status, trigger string) {
				z, err := env.st.GetZambda(ctx, env.project, id)
				if err != nil {
					t.Fatal(err)
				}
				z.Status, z.TriggerMethod = status, trigger
				if err := env.st.UpdateZambda(ctx, z); err != nil {
					t.Fatal(err)
				}
			}
			setStatus(ids[0], "Validating", "cron")
			setStatus(ids[1], "Active", "http_auth")
			env.clock.add(31 * time.Second)
			check := func() {
				c := r.NewCron()
				c.Check(ctx)
				c.running.Wait()
			}
			check()
			outcome := func(id string) string {
				ticks, err := env.st.Ticks(ctx, env.project, id)
				if err != nil || len(ticks) != 1 {
					t.Fatalf("ticks %+v %v", ticks, err)
				}
				return ticks[0].Outcome
			}
			if got := outcome(ids[0]); got != "" || len(rec.calls()) != 0 {
				t.Fatalf("while its code was checked: outcome %q, runs %v; want neither", got, rec.calls())
			}
			if got := outcome(ids[1]); got != "error: not run again: the function is no longer an active cron function" {
				t.Fatalf("a function no longer cron: outcome %q", got)
			}
			setStatus(ids[0], "Active", "cron")
			check()
			if got, want := rec.calls(), []string{requestID(ids[0], tick.Unix(), 0)}; !slices.Equal(got, want) || outcome(ids[0]) != "status 200" {
				t.Fatalf("once Active again: runs %v, outcome %q; want %v and status 200", got, outcome(ids[0]), want)
			}
		})
	}
}
