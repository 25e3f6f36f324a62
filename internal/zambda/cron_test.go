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
