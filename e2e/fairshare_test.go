package e2e

import (
	"encoding/json"
	"io"
	"net/http"
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
func (w *ward) execute(t *testing.T, token, id, payload string) execResult {
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

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// measureB calls B's function one call after another, at least once and
// for d, and returns the latencies, sorted; every call must answer 200.
func measureB(t *testing.T, w *ward, token, id string, d time.Duration) []time.Duration {
	t.Helper()
	var took []time.Duration
	for end := time.Now().Add(d); ; {
		r := w.execute(t, token, id, `{"mode":"echo"}`)
		if r.status != 200 {
			t.Fatalf("project B's call: %d %s", r.status, r.body)
		}
		took = append(took, r.took)
		if !time.Now().Before(end) {
			break
		}
	}
	slices.Sort(took)
	return took
}

// TestProjectFairShare: on a server of 4 workers, 2 per project, project A
// floods a slow function through execute and execute-public; its calls
// past two workers get 429 with Retry-After and the Project API error
// shape, while project B's function keeps answering 200. B's latencies
// before and during the flood are logged (reported, never asserted).
func TestProjectFairShare(t *testing.T) {
	requireNode(t)
	slow := zipFiles(t, map[string]string{"index.js": sleeper}, nil)
	probe := zipFiles(t, map[string]string{"index.js": "testdata/probe/index.js"}, nil)
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			w := startWardWith(t, b, "--zambda-max-workers", "4", "--zambda-project-workers", "2")
			tokA := w.token(t, w.Admin)
			tokB := w.token(t, w.createProject(t, "tenant-b"))
			slowID := w.deployZambda(t, tokA, `{"name":"slow","runtime":"nodejs20.x","triggerMethod":"http_open","timeoutInSeconds":20}`, slow)
			fastID := w.deployZambda(t, tokB, `{"name":"fast","runtime":"nodejs20.x","triggerMethod":"http_auth"}`, probe)

			measureB(t, w, tokB, fastID, 0) // one call, to warm it
			quiet := measureB(t, w, tokB, fastID, 2*time.Second)

			// The flood: 12 callers, each calling again as soon as it is
			// answered, half through execute-public, until stopped.
			var (
				mu       sync.Mutex
				ok       int
				refused  = map[string][]execResult{} // by path: "execute", "execute-public"
				stop     = make(chan struct{})
				flooders sync.WaitGroup
			)
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
						r := w.execute(t, tok, slowID, `{"ms":3000}`)
						mu.Lock()
						switch r.status {
						case 200:
							ok++
						case 429:
							refused[path] = append(refused[path], r)
						default:
							t.Errorf("project A's %s: %d %s", path, r.status, r.body)
						}
						mu.Unlock()
					}
				})
			}
			// Let the flood fill A's share (two workers busy, the rest
			// waiting) before measuring B.
			waitFor(t, "A's first refused call", 30*time.Second, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(refused["execute"])+len(refused["execute-public"]) > 0
			})
			flood := measureB(t, w, tokB, fastID, 4*time.Second)
			waitFor(t, "429s through both execute paths", 60*time.Second, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(refused["execute"]) > 0 && len(refused["execute-public"]) > 0 && ok > 0
			})
			close(stop)
			flooders.Wait()

			projectLimit := 0
			for path, rs := range refused {
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
				t.Errorf("no 429 named the per-project limit: %v", refused)
			}
			t.Logf("project A: %d answered, %d refused through execute, %d through execute-public (%d at the project limit)",
				ok, len(refused["execute"]), len(refused["execute-public"]), projectLimit)
			t.Logf("project B alone:         p50 %v, p99 %v (%d calls)", percentile(quiet, 0.5), percentile(quiet, 0.99), len(quiet))
			t.Logf("project B during flood:  p50 %v, p99 %v (%d calls)", percentile(flood, 0.5), percentile(flood, 0.99), len(flood))
		})
	}
}
