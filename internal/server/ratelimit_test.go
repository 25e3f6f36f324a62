package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/ratelimit"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
)

// newLimitedServer is a test server whose principals get limit requests a
// minute unless their project says otherwise.
func newLimitedServer(t *testing.T, limit int) *testServer {
	t.Helper()
	ts := newTestServerWith(t, nil, func(_ *store.Store, _ *seal.Sealer, d *Deps) {
		d.Limiter = ratelimit.New(nil, ratelimit.Config{})
	})
	ts.srv.cfg.RateLimit = limit // before any request that reads it
	return ts
}

// get sends a GET and returns the answer with its body read.
func (ts *testServer) get(t *testing.T, path, token string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", ts.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

// TestRateLimitPerPrincipal: the server's default limits each principal
// on both APIs with the draft's headers; over it a Project API path
// answers the SDK's error JSON and a FHIR path an OperationOutcome, both
// 429 with Retry-After; another principal of the project and another
// project's principal are not affected.
func TestRateLimitPerPrincipal(t *testing.T) {
	ts := newLimitedServer(t, 3)
	m := ts.mustDo(t, 200, "POST", "/v1/m2m", ts.token, `{"name":"other","accessPolicy":{"rule":[{"resource":"*","action":"*","effect":"Allow"}]}}`)
	secret := ts.mustDo(t, 200, "POST", "/v1/m2m/"+m["id"].(string)+"/rotate-secret", ts.token, "")
	sibling := ts.clientToken(t, m["clientId"].(string), secret["secret"].(string))
	other, err := ts.iam.CreateProject(t.Context(), "other")
	if err != nil {
		t.Fatal(err)
	}
	tenant := ts.clientToken(t, other.ClientID, other.ClientSecret)

	// The admin's three: two above, and this one.
	res, _ := ts.get(t, "/v1/project", ts.token)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("RateLimit"), `"principal";r=0;t=`) ||
		res.Header.Get("RateLimit-Policy") != `"principal";q=3;w=60` {
		t.Fatalf("third request: %d RateLimit %q Policy %q", res.StatusCode, res.Header.Get("RateLimit"), res.Header.Get("RateLimit-Policy"))
	}
	res, body := ts.get(t, "/v1/project", ts.token)
	var apiErr struct {
		Message string
		Code    int
	}
	if err := json.Unmarshal(body, &apiErr); err != nil || res.StatusCode != 429 || apiErr.Code != 429 || !strings.Contains(apiErr.Message, "rate limit") {
		t.Fatalf("over the limit: %d %s", res.StatusCode, body)
	}
	checkThrottleHeaders(t, res)
	res, body = ts.get(t, "/fhir/Patient", ts.token)
	var oo struct {
		ResourceType string
		Issue        []struct{ Code string }
	}
	if err := json.Unmarshal(body, &oo); err != nil || res.StatusCode != 429 || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 ||
		oo.Issue[0].Code != "throttled" {
		t.Fatalf("FHIR over the limit: %d %s", res.StatusCode, body)
	}
	checkThrottleHeaders(t, res)

	for name, tok := range map[string]string{"same project": sibling, "other project": tenant} {
		if res, body := ts.get(t, "/fhir/Patient", tok); res.StatusCode != 200 || res.Header.Get("RateLimit-Policy") != `"principal";q=3;w=60` {
			t.Fatalf("%s: %d %s", name, res.StatusCode, body)
		}
	}
}

func checkThrottleHeaders(t *testing.T, res *http.Response) {
	t.Helper()
	ra := res.Header.Get("Retry-After")
	rl := res.Header.Get("RateLimit")
	if ra == "" || ra == "0" || rl != `"principal";r=0;t=`+ra {
		t.Fatalf("429 headers: Retry-After %q RateLimit %q", ra, rl)
	}
}

// TestProjectRateLimitSetting: a project's rateLimitPerMinute overrides
// the default (-1: none), takes effect on the next request, and bad
// values are refused with the reason.
func TestProjectRateLimitSetting(t *testing.T) {
	ts := newLimitedServer(t, 1000)
	for _, bad := range []string{`-2`, `1000001`, `"10"`, `1.5`, `99999999999999999999`} {
		status, body := ts.do(t, "PATCH", "/v1/project", ts.token, `{"rateLimitPerMinute":`+bad+`}`)
		if status != 400 || body["code"] != float64(400) {
			t.Fatalf("rateLimitPerMinute %s: %d %v", bad, status, body)
		}
	}
	got := ts.mustDo(t, 200, "PATCH", "/v1/project", ts.token, `{"rateLimitPerMinute":-1}`)
	if got["rateLimitPerMinute"] != float64(-1) {
		t.Fatalf("project = %v", got)
	}
	for range 20 {
		if res, _ := ts.get(t, "/v1/project", ts.token); res.StatusCode != 200 || res.Header.Get("RateLimit") != "" {
			t.Fatalf("unlimited project: %d %q", res.StatusCode, res.Header.Get("RateLimit"))
		}
	}
	// The project's own limit from the next request on: the 6 counted
	// before it went unlimited count in this window, so 4 more fit.
	ts.mustDo(t, 200, "PATCH", "/v1/project", ts.token, `{"rateLimitPerMinute":10}`)
	codes := []int{}
	for range 6 {
		res, _ := ts.get(t, "/v1/project", ts.token)
		codes = append(codes, res.StatusCode)
	}
	if want := []int{200, 200, 200, 200, 429, 429}; !equalInts(codes, want) {
		t.Fatalf("statuses %v, want %v", codes, want)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BenchmarkRateLimit is a cheap authenticated request (GET /v1/m2m/me,
// through the whole handler, no network) with and without the limiter,
// alternated in the same run; it reports the cost ratio on/off.
func BenchmarkRateLimit(b *testing.B) {
	on := newTestServerWith(b, nil, func(_ *store.Store, _ *seal.Sealer, d *Deps) {
		d.Limiter = ratelimit.New(nil, ratelimit.Config{})
	})
	on.srv.cfg.RateLimit = 1 << 30
	off := newTestServerWith(b, nil, nil)
	serve := func(ts *testServer) time.Duration {
		start := time.Now()
		for range 200 {
			req := httptest.NewRequest("GET", "/v1/m2m/me", nil)
			req.Header.Set("Authorization", "Bearer "+ts.token)
			w := httptest.NewRecorder()
			ts.srv.Handler().ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
		return time.Since(start)
	}
	var tOn, tOff time.Duration
	b.ResetTimer()
	for b.Loop() {
		tOff += serve(off)
		tOn += serve(on)
	}
	b.ReportMetric(float64(tOn)/float64(tOff), "on/off")
	b.ReportMetric(float64(tOn-tOff)/float64(b.N*200), "ns-added/req")
}
