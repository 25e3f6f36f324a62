package zambda

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store/storetest"
	"github.com/wardhealth/ward/internal/z3"
	"github.com/wardhealth/ward/internal/zambda/runtime"
)

// deploy creates a function from spec (the create request's JSON) and
// uploads a Node zip for it, so it is Active.
func (ts *testService) deploy(t *testing.T, spec string) Function {
	t.Helper()
	ctx := context.Background()
	var in Input
	if err := json.Unmarshal([]byte(spec), &in); err != nil {
		t.Fatal(err)
	}
	f, err := ts.Create(ctx, ts.project, in)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("index.js")
	w.Write([]byte("exports.index = async () => ({ statusCode: 200, body: '{}' });\n"))
	zw.Close()
	if _, _, err := ts.z3.Presign(ctx, ts.project, CodeBucket, f.ID+"/code.zip", z3.Upload); err != nil {
		t.Fatal(err) // makes the code bucket
	}
	if _, err := ts.z3.Put(ctx, ts.project, CodeBucket, f.ID+"/code.zip", "application/zip", &buf); err != nil {
		t.Fatalf("upload: %v", err)
	}
	if f, err = ts.Get(ctx, ts.project, f.ID); err != nil || f.Status != "Active" {
		t.Fatalf("after upload: %+v %v", f, err)
	}
	return f
}

// TestCronRetryPolicy: a failed tick is run again as many times as the
// stored retry policy says, and no re-run starts after maximumEventAge.
// The clock is fake and backoff zero: Check claims one due tick, and the
// test waits for the runs it started.
func TestCronRetryPolicy(t *testing.T) {
	for _, tc := range []struct {
		name        string
		retryPolicy string        // schedule.retryPolicy as the client sends it
		answer      string        // the handler's answer; "" throws
		busy        bool          // no worker is free: the run is refused before it starts
		runTakes    time.Duration // fake time each run takes
		runs        int
		outcome     string // the tick's recorded outcome starts so
	}{
		{name: "maximumRetry 2", retryPolicy: `{"maximumRetry":2}`, runs: 3, outcome: "status 500: boom"},
		{name: "EventBridge alias", retryPolicy: `{"maximumRetryAttempts":1}`, runs: 2},
		{name: "no policy", retryPolicy: `null`, runs: 1},
		{name: "maximumRetry 0", retryPolicy: `{"maximumRetry":0}`, runs: 1},
		{name: "success is not retried", retryPolicy: `{"maximumRetry":2}`, answer: `{"statusCode":200,"body":"{}"}`, runs: 1, outcome: "status 200"},
		{name: "a 4xx answer is not retried", retryPolicy: `{"maximumRetry":2}`, answer: `{"statusCode":418,"body":"{}"}`, runs: 1},
		{name: "a 5xx answer is retried", retryPolicy: `{"maximumRetry":2}`, answer: `{"statusCode":503,"body":"{}"}`, runs: 3},
		{name: "a refused run is tried 3 more times without a policy", retryPolicy: `null`, busy: true, runs: 4, outcome: "error: "},
		{name: "maximumEventAge ends retries", retryPolicy: `{"maximumRetry":5,"maximumEventAge":120}`, runTakes: 50 * time.Second, runs: 3,
			outcome: "status 500: boom (not run again: the tick is older than the retry policy's maximumEventAge, 120 s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var ids []string
			var ts *testService
			ts = newTestService(t, invokerFunc(func(_ context.Context, _ runtime.Function, inv runtime.Invocation) (runtime.Result, error) {
				mu.Lock()
				ids = append(ids, inv.RequestID)
				mu.Unlock()
				ts.clock.add(tc.runTakes)
				if tc.busy {
					return runtime.Result{}, &runtime.Error{Kind: runtime.KindBusy, Message: "no free worker"}
				}
				if tc.answer == "" {
					return runtime.Result{}, &runtime.Error{Kind: runtime.KindHandler, Message: "boom"}
				}
				return runtime.Result{Payload: []byte(tc.answer)}, nil
			}))
			f := ts.deploy(t, `{"name":"ticker","runtime":"nodejs20.x","triggerMethod":"cron",
				"schedule":{"expression":"rate(1 minute)","retryPolicy":`+tc.retryPolicy+`}}`)
			c := ts.NewCron()
			c.backoff = func(int) time.Duration { return 0 }
			created := ts.clock.now()
			ts.clock.set(created.Add(61 * time.Second)) // the tick at created+60s is due
			c.Check(t.Context())
			c.running.Wait()

			tick := created.Add(time.Minute).Unix()
			var want []string
			for i := range tc.runs {
				want = append(want, requestID(f.ID, tick, i))
			}
			if !slices.Equal(ids, want) {
				t.Fatalf("runs %v, want %v", ids, want)
			}
			ticks, err := ts.st.Ticks(t.Context(), ts.project, f.ID)
			if err != nil || len(ticks) != 1 || !strings.HasPrefix(ticks[0].Outcome, tc.outcome) {
				t.Fatalf("ticks %+v %v, want one with outcome %q", ticks, err, tc.outcome)
			}
		})
	}
}

func requestID(zambdaID string, tick int64, attempt int) string {
	return fmt.Sprintf("cron-%s-%d-%d", zambdaID[:8], tick, attempt)
}

// TestCronClaim: every due tick runs exactly once however many replicas
// check for it, only the last minute's ticks are caught up after an
// outage, and a schedule's start and end bound its ticks. Runs on both
// databases: the claim is the unique key on (function, tick).
func TestCronClaim(t *testing.T) {
	type check struct {
		at       time.Duration // after the function's creation
		replicas string        // which replicas check then ("ab": both at once)
	}
	type run struct {
		at time.Duration // the tick, after the function's creation
		by string        // the replica that claimed it; "" any
	}
	for _, tc := range []struct {
		name     string
		startEnd [2]time.Duration // schedule start and end after creation; 0 none
		noCode   bool             // the function stays a Draft
		checks   []check
		want     []run
	}{
		{name: "two replicas at once, one run", checks: []check{{61 * time.Second, "ab"}}, want: []run{{time.Minute, ""}}},
		{name: "each tick once over many checks", checks: []check{
			{61 * time.Second, "a"}, {62 * time.Second, "ab"}, {121 * time.Second, "b"}, {125 * time.Second, "a"}, {126 * time.Second, "ab"},
		}, want: []run{{time.Minute, "a"}, {2 * time.Minute, "b"}}},
		{name: "after an outage only the last minute", checks: []check{{10*time.Minute + time.Second, "a"}},
			want: []run{{10 * time.Minute, "a"}}},
		{name: "no tick after the end", startEnd: [2]time.Duration{0, 90 * time.Second},
			checks: []check{{61 * time.Second, "a"}, {121 * time.Second, "a"}, {181 * time.Second, "b"}}, want: []run{{time.Minute, "a"}}},
		{name: "ticks counted from the start", startEnd: [2]time.Duration{100 * time.Second, 0},
			checks: []check{{61 * time.Second, "a"}, {101 * time.Second, "a"}, {161 * time.Second, "b"}},
			want:   []run{{100 * time.Second, "a"}, {160 * time.Second, "b"}}},
		{name: "a draft does not run", noCode: true, checks: []check{{61 * time.Second, "ab"}}},
	} {
		for _, b := range storetest.Backends() {
			t.Run(tc.name+"/"+b.Name, func(t *testing.T) {
				t.Parallel() // each case has its own store and clock
				env := newTestEnv(t, b, false)
				var mu sync.Mutex
				var ids []string
				run := invokerFunc(func(_ context.Context, _ runtime.Function, inv runtime.Invocation) (runtime.Result, error) {
					mu.Lock()
					ids = append(ids, inv.RequestID)
					mu.Unlock()
					return runtime.Result{Payload: []byte(`{"statusCode":200,"body":"{}"}`)}, nil
				})
				replicas := map[byte]*testService{'a': env.replica(t, "replica-a", run), 'b': env.replica(t, "replica-b", run)}
				crons := map[byte]*Cron{'a': replicas['a'].NewCron(), 'b': replicas['b'].NewCron()}

				created := env.clock.now()
				sc := map[string]any{"expression": "rate(1 minute)"}
				if d := tc.startEnd[0]; d != 0 {
					sc["start"] = created.Add(d)
				}
				if d := tc.startEnd[1]; d != 0 {
					sc["end"] = created.Add(d)
				}
				spec, _ := json.Marshal(map[string]any{"name": "ticker", "runtime": "nodejs20.x", "triggerMethod": "cron", "schedule": sc})
				var f Function
				if tc.noCode {
					var in Input
					_ = json.Unmarshal(spec, &in)
					var err error
					if f, err = replicas['a'].Create(t.Context(), env.project, in); err != nil {
						t.Fatal(err)
					}
				} else {
					f = replicas['a'].deploy(t, string(spec))
				}

				for _, c := range tc.checks {
					env.clock.set(created.Add(c.at))
					var wg sync.WaitGroup
					for _, r := range []byte(c.replicas) {
						wg.Go(func() { crons[r].Check(t.Context()) })
					}
					wg.Wait()
					for _, c := range crons {
						c.running.Wait()
					}
				}

				var want []string
				for _, r := range tc.want {
					want = append(want, requestID(f.ID, created.Add(r.at).Unix(), 0))
				}
				slices.Sort(ids)
				if !slices.Equal(ids, want) {
					t.Fatalf("runs %v, want %v", ids, want)
				}
				ticks, err := env.st.Ticks(t.Context(), env.project, f.ID)
				if err != nil || len(ticks) != len(tc.want) {
					t.Fatalf("ticks %+v %v, want %d", ticks, err, len(tc.want))
				}
				for i, r := range tc.want {
					by := ticks[i].ClaimedBy
					if !ticks[i].At.Equal(created.Add(r.at)) || r.by != "" && by != "replica-"+r.by || r.by == "" && by != "replica-a" && by != "replica-b" {
						t.Errorf("tick %d: %+v, want at +%v by %q", i, ticks[i], r.at, r.by)
					}
				}
			})
		}
	}
}
