package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// sleeper is a zambda that sleeps body.ms milliseconds, then answers.
const sleeper = `data:exports.index = async (event) => {
  const body = event.body ? JSON.parse(event.body) : {};
  await new Promise((resolve) => setTimeout(resolve, body.ms || 0));
  return { statusCode: 200, body: JSON.stringify({ slept: body.ms || 0 }) };
};`

// execResult is one execute call as the flood and the measurements see it.
type execResult struct {
	status     int
	retryAfter string
	body       []byte
	took       time.Duration
}

// execute posts payload to a zambda's execute (with token) or
// execute-public (token "").
func (w *ward) executeTimed(t *testing.T, token, id, payload string) execResult {
	path := "/v1/zambda/" + id + "/execute"
	if token == "" {
		path += "-public"
	}
	req, _ := http.NewRequest("POST", w.URL+path, strings.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return execResult{}
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return execResult{status: res.StatusCode, retryAfter: res.Header.Get("Retry-After"), body: b, took: time.Since(start)}
}

// latencies are one caller's calls: those answered 200 (sorted) and the
// count of every status.
type latencies struct {
	ok       []time.Duration
	statuses map[int]int
}

// percentile of the 200s (nearest rank).
func (l latencies) percentile(p float64) time.Duration {
	if len(l.ok) == 0 {
		return 0
	}
	i := int(p*float64(len(l.ok))+0.5) - 1
	return l.ok[min(max(i, 0), len(l.ok)-1)]
}

func (l latencies) String() string {
	return fmt.Sprintf("p50 %v, p99 %v, statuses %v", l.percentile(0.5).Round(10*time.Microsecond), l.percentile(0.99).Round(10*time.Microsecond), l.statuses)
}

// measure calls a zambda one call after another, at least once and for d.
func measure(t *testing.T, w *ward, token, id string, d time.Duration) latencies {
	t.Helper()
	l := latencies{statuses: map[int]int{}}
	for end := time.Now().Add(d); ; {
		r := w.executeTimed(t, token, id, `{"mode":"echo"}`)
		l.statuses[r.status]++
		if r.status == 200 {
			l.ok = append(l.ok, r.took)
		}
		if !time.Now().Before(end) {
			break
		}
	}
	slices.Sort(l.ok)
	return l
}

// floodRun is what floodScenario saw.
type floodRun struct {
	quiet, flood latencies               // project B's calls, before and during A's flood
	answered     int                     // A's calls answered 200
	refused      map[string][]execResult // A's 429s by path: "execute", "execute-public"
	other        []execResult            // A's other answers
}

// floodScenario deploys a slow http_open zambda in project A (the admin's)
// and a fast one in a new project B, measures B's calls for quiet, then
// again for during while 12 callers of A call the slow one (each again as
// soon as it is answered, half through execute-public), until also
// until(run) holds (nil: at once) or 60 s have passed.
func floodScenario(t *testing.T, w *ward, quiet, during time.Duration, until func(floodRun) bool) floodRun {
	t.Helper()
	slow := zipFiles(t, map[string]string{"index.js": sleeper}, nil)
	probe := zipFiles(t, map[string]string{"index.js": "testdata/probe/index.js"}, nil)
	tokA := w.token(t, w.Admin)
	tokB := w.token(t, w.createProject(t, "tenant-b"))
	slowID := w.deployZambda(t, tokA, `{"name":"slow","runtime":"nodejs20.x","triggerMethod":"http_open","timeoutInSeconds":20}`, slow)
	fastID := w.deployZambda(t, tokB, `{"name":"fast","runtime":"nodejs20.x","triggerMethod":"http_auth"}`, probe)

	measure(t, w, tokB, fastID, 0) // a cold start, left out
	run := floodRun{quiet: measure(t, w, tokB, fastID, quiet), refused: map[string][]execResult{}}
	var mu sync.Mutex
	stop := make(chan struct{})
	var flooders sync.WaitGroup
	for i := range 12 {
		tok, path := tokA, "execute"
		if i%2 == 1 {
			tok, path = "", "execute-public"
		}
		flooders.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := w.executeTimed(t, tok, slowID, `{"ms":3000}`)
				mu.Lock()
				switch r.status {
				case 200:
					run.answered++
				case 429:
					run.refused[path] = append(run.refused[path], r)
				default:
					run.other = append(run.other, r)
				}
				mu.Unlock()
			}
		})
	}
	// Let the flood fill what it can (its first calls are refused once
	// the waiting ones give up) before measuring B.
	waitFor(t, "A's first refused call", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(run.refused["execute"])+len(run.refused["execute-public"]) > 0
	})
	flood := measure(t, w, tokB, fastID, during)
	if until != nil {
		waitFor(t, "the flood's outcome", 60*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return until(run)
		})
	}
	close(stop)
	flooders.Wait()
	run.flood = flood
	return run
}

// TestProjectFairShare: on a server of 4 workers, 2 per project, project A
// floods a slow function through execute and execute-public; its calls
// past two workers get 429 with Retry-After and the Project API error
// shape, while project B's function keeps answering 200. B's latencies
// before and during the flood are logged (reported, never asserted).
func TestProjectFairShare(t *testing.T) {
	requireNode(t)
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			w := startWardWith(t, b, "--zambda-max-workers", "4", "--zambda-project-workers", "2")
			run := floodScenario(t, w, 2*time.Second, 4*time.Second, func(r floodRun) bool {
				return len(r.refused["execute"]) > 0 && len(r.refused["execute-public"]) > 0 && r.answered > 0
			})
			for _, l := range []latencies{run.quiet, run.flood} {
				if len(l.statuses) != 1 || l.statuses[200] == 0 {
					t.Fatalf("project B's calls: %v", l.statuses)
				}
			}
			if len(run.other) > 0 {
				t.Fatalf("project A's calls answered neither 200 nor 429: %d %s", run.other[0].status, run.other[0].body)
			}
			projectLimit := 0
			for path, rs := range run.refused {
				for _, r := range rs {
					var e struct {
						Message string `json:"message"`
						Code    int    `json:"code"`
					}
					if err := json.Unmarshal(r.body, &e); err != nil || e.Code != 429 || e.Message == "" {
						t.Fatalf("%s 429 body: %s", path, r.body)
					}
					if r.retryAfter != "1" {
						t.Fatalf("%s 429 Retry-After %q", path, r.retryAfter)
					}
					if strings.Contains(e.Message, "its project already runs 2 zambda workers") {
						projectLimit++
					}
				}
			}
			if projectLimit == 0 {
				t.Errorf("no 429 named the per-project limit: %v", run.refused)
			}
			t.Logf("project A: %d answered, %d refused through execute, %d through execute-public (%d at the project limit)",
				run.answered, len(run.refused["execute"]), len(run.refused["execute-public"]), projectLimit)
			t.Logf("project B alone:        %v", run.quiet)
			t.Logf("project B during flood: %v", run.flood)
		})
	}
}

// TestFairShareCompare measures the scenario of TestProjectFairShare on
// SQLite for bench/RESULTS.md: with WARD_FAIRSHARE_BASELINE naming a ward
// binary built before the per-project limit, against that binary too.
// Figures are logged, never asserted.
func TestFairShareCompare(t *testing.T) {
	baseline := os.Getenv("WARD_FAIRSHARE_BASELINE")
	if baseline == "" {
		t.Skip("WARD_FAIRSHARE_BASELINE (a ward binary without the per-project limit) is not set")
	}
	requireNode(t)
	for _, tc := range []struct {
		name, bin string
		flags     []string
	}{
		{"baseline, 4 workers", baseline, []string{"--zambda-max-workers", "4"}},
		{"4 workers, 4 per project", "", []string{"--zambda-max-workers", "4", "--zambda-project-workers", "4"}},
		{"4 workers, 2 per project", "", []string{"--zambda-max-workers", "4", "--zambda-project-workers", "2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := startWardBin(t, storetest.Backends()[0], tc.bin, nil, tc.flags...)
			run := floodScenario(t, w, 5*time.Second, 10*time.Second, nil)
			a := map[int]int{200: run.answered, 429: len(run.refused["execute"]) + len(run.refused["execute-public"])}
			for _, r := range run.other {
				a[r.status]++
			}
			t.Logf("%s: B alone %v | B during A's flood %v | A %v", tc.name, run.quiet, run.flood, a)
		})
	}
}
