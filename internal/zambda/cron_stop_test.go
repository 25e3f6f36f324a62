package zambda

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/zambda/runtime"
)

// TestCronStop: a run in flight when the stop comes finishes while
// inflight lasts and records its outcome; one still running when inflight
// ends records none and its tick is released (the cut run uncounted), so
// the next check of any replica (this one, restarted) runs it again.
func TestCronStop(t *testing.T) {
	for _, tc := range []struct {
		name    string
		finish  bool // the run ends between the stop and the cut
		runs    int  // after a restarted cron's check
		outcome string
	}{
		{"finished within the grace", true, 1, "status 200"},
		{"cut at the end of the grace", false, 2, "status 200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var runs atomic.Int32
			started, answer := make(chan struct{}, 1), make(chan struct{})
			var ts *testService
			ts = newTestService(t, invokerFunc(func(ctx context.Context, _ runtime.Function, _ runtime.Invocation) (runtime.Result, error) {
				if runs.Add(1) == 1 {
					started <- struct{}{}
					select {
					case <-answer:
					case <-ctx.Done():
						return runtime.Result{}, ctx.Err()
					}
				}
				return runtime.Result{Payload: []byte(`{"statusCode":200,"body":"{}"}`)}, nil
			}))
			f := ts.deploy(t, `{"name":"ticker","runtime":"nodejs20.x","triggerMethod":"cron","schedule":{"expression":"rate(1 minute)"}}`)
			created := ts.clock.now()
			ts.clock.set(created.Add(61 * time.Second)) // the tick at created+60s is due
			stop, stopNow := context.WithCancel(t.Context())
			inflight, cut := context.WithCancel(context.WithoutCancel(t.Context()))
			defer cut()
			c := ts.NewCron()
			c.check(stop, inflight)
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				t.Fatal("the tick did not run")
			}
			stopNow()
			if tc.finish {
				close(answer)
			} else {
				cut()
			}
			c.running.Wait()
			ticks, err := ts.st.Ticks(t.Context(), ts.project, f.ID)
			if err != nil {
				t.Fatal(err)
			}
			// Released: no outcome, the cut run uncounted, the lease
			// lapsed so that any replica takes the tick over.
			released := len(ticks) == 1 && ticks[0].Outcome == "" && ticks[0].Attempts == 0 && ticks[0].LeaseUntil.Before(created)
			recorded := len(ticks) == 1 && ticks[0].Outcome == "status 200"
			if tc.finish && !recorded || !tc.finish && !released {
				t.Fatalf("ticks after the stop: %+v, want the tick %s", ticks, map[bool]string{true: "recorded", false: "released"}[tc.finish])
			}
			restarted := ts.NewCron()
			restarted.Check(t.Context())
			restarted.running.Wait()
			ticks, err = ts.st.Ticks(t.Context(), ts.project, f.ID)
			if err != nil || len(ticks) != 1 || ticks[0].Outcome != tc.outcome || int(runs.Load()) != tc.runs {
				t.Fatalf("after a restart: ticks %+v %v, runs %d; want one tick with outcome %q after %d runs", ticks, err, runs.Load(), tc.outcome, tc.runs)
			}
		})
	}
}
