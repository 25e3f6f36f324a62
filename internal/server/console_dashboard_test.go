package server

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/activity"
	"github.com/wardhealth/ward/internal/egress"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/z3"
	"github.com/wardhealth/ward/internal/z3/blob"
	"github.com/wardhealth/ward/internal/zambda"
	"github.com/wardhealth/ward/internal/zambda/runtime"
)

// newDashboardTestServer counts activity as ward serve does, on the clock
// now (nil: time.Now).
func newDashboardTestServer(t testing.TB, now func() time.Time) *testServer {
	t.Helper()
	pol := loopbackEgress(t)
	return newTestServerWith(t, pol, func(st *store.Store, _ *seal.Sealer, d *Deps) {
		d.Activity = activity.New(now, 0)
		d.Deliveries = st.DeliveryActivity
	})
}

var (
	chartSVG = regexp.MustCompile(`(?s)<svg class="chart".*?</svg>`)
	tileRe   = regexp.MustCompile(`<li><span class="figure">([^<]*)</span> ([^<]+)`)
)

// tiles reads the dashboard's figures by label.
func tiles(body string) map[string]string {
	out := map[string]string{}
	for _, m := range tileRe.FindAllStringSubmatch(body, -1) {
		out[strings.TrimSpace(m[2])] = m[1]
	}
	return out
}

// The dashboard shows the project's own requests and errors, never
// another tenant's; its charts are well-formed SVG with a title and a
// description even when the project's name is markup; the metrics
// endpoint answers each project its own figures, and a developer without
// Project:GetProjectInfo gets 403 from it and the reason on the page.
func TestConsoleDashboard(t *testing.T) {
	ts := newDashboardTestServer(t, nil)
	const evil = `</title><script>alert(1)</script>&"'<svg onload=x>`
	if st, body := ts.do(t, "PATCH", "/v1/project", ts.token, `{"name":`+jsonString(evil)+`}`); st != 200 {
		t.Fatalf("rename: %d %v", st, body)
	}
	ts.inviteConsoleDeveloper(t, "dev@example.org", `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`)
	ts.inviteConsoleDeveloper(t, "blind@example.org", `{"rule":[{"resource":["Z3:*"],"action":["Z3:ListBuckets"],"effect":"Allow"}]}`)
	// So far: the rename, two roles and two invitations. Then three reads
	// and one 404.
	for range 3 {
		if st, _ := ts.do(t, "GET", "/v1/project", ts.token, ""); st != 200 {
			t.Fatal(st)
		}
	}
	if st, _ := ts.do(t, "GET", "/fhir/Patient/no-such-patient", ts.token, ""); st != 404 {
		t.Fatalf("missing patient: %d", st)
	}
	// Another tenant's traffic: ten 404s.
	other, err := ts.iam.CreateProject(t.Context(), "Other tenant")
	if err != nil {
		t.Fatal(err)
	}
	otherToken := ts.clientToken(t, other.ClientID, other.ClientSecret)
	for range 10 {
		ts.do(t, "GET", "/fhir/Patient/nope", otherToken, "")
	}

	b, _ := ts.consoleSignIn(t, "dev@example.org") // the console's own calls are not counted
	status, body := get(t, b, "/console/dashboard")
	if status != 200 {
		t.Fatalf("dashboard: %d %s", status, body)
	}
	got := tiles(body)
	if got["Requests"] != "9" || got["Errors"] != "1" || got["Latency p99"] == "-" || got["Zambda invocations"] != "0" {
		t.Errorf("tiles = %v, want 9 requests and 1 error (the other tenant's 10 are not here)", got)
	}
	if !strings.Contains(body, `<table class="list" id="minutes">`) || !strings.Contains(body, "<td>9</td><td>1</td><td>0</td>") {
		t.Errorf("no minute table with the figures: %s", body)
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "<svg onload") {
		t.Errorf("the project's name is markup on the page")
	}
	svgs := chartSVG.FindAllString(body, -1)
	if len(svgs) != 4 {
		t.Fatalf("%d charts, want 4", len(svgs))
	}
	for _, svg := range svgs {
		var doc struct {
			XMLName xml.Name
			Role    string `xml:"role,attr"`
			Title   string `xml:"title"`
			Desc    string `xml:"desc"`
			Groups  []struct {
				Rects []struct{} `xml:"rect"`
			} `xml:"g"`
		}
		dec := xml.NewDecoder(strings.NewReader(svg))
		dec.Strict = true
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("chart is not well-formed XML: %v\n%s", err, svg)
		}
		if _, err := dec.Token(); err != io.EOF {
			t.Errorf("content after the chart: %v", err)
		}
		if doc.XMLName.Local != "svg" || doc.Role != "img" || !strings.Contains(doc.Title, evil) || doc.Desc == "" {
			t.Errorf("chart %q role %q title %q desc %q", doc.XMLName.Local, doc.Role, doc.Title, doc.Desc)
		}
	}
	if !strings.Contains(svgs[0], `<g class="s1" data-series="Requests"><rect `) || !strings.Contains(svgs[0], `<g class="s2" data-series="Errors (4xx and 5xx)"><rect `) {
		t.Errorf("the requests chart has no bars: %s", svgs[0])
	}
	if strings.Contains(body, ` style=`) {
		t.Error("a style attribute: the CSP refuses it")
	}

	// The endpoint: each project its own hour.
	var mine, theirs activity.Report
	if st := ts.getJSON(t, "/v1/project/metrics", ts.token, &mine); st != 200 || len(mine.Minutes) != activity.Minutes || mine.Counted != "replica" {
		t.Fatalf("metrics: %d %+v", st, mine)
	}
	if st := ts.getJSON(t, "/v1/project/metrics", otherToken, &theirs); st != 200 || theirs.Totals.Requests != 10 || theirs.Totals.ClientErrors != 10 {
		t.Errorf("the other tenant's metrics: %d %+v", st, theirs.Totals)
	}
	if mine.Totals.Requests != 9 || mine.Totals.ClientErrors != 1 {
		t.Errorf("own metrics = %+v", mine.Totals)
	}

	// Without Project:GetProjectInfo: the reason on the page, 403 forced.
	bb, _ := ts.consoleSignIn(t, "blind@example.org")
	status, body = get(t, bb, "/console/dashboard")
	if status != 200 || !strings.Contains(body, `class="problem"`) || !strings.Contains(body, "Project:GetProjectInfo") || strings.Contains(body, "<svg class=\"chart\"") {
		t.Errorf("dashboard without the permission: %d %s", status, body)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// getJSON GETs path with token and decodes the answer into out.
func (ts *testServer) getJSON(t testing.TB, path, token string, out any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", ts.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return res.StatusCode
}

func loopbackEgress(t testing.TB) *egress.Policy {
	t.Helper()
	pol, err := egress.New(t.Context(), egress.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// BenchmarkConsoleDashboard times the dashboard page (its API call, the
// delivery query and four SVG charts) with every minute of the hour
// holding traffic, against its peer in the same run: the API's JSON of the
// same figures (GET /v1/project/metrics). Reports the page's size too.
func BenchmarkConsoleDashboard(b *testing.B) {
	var mu sync.Mutex
	clk := time.Now().Add(-59 * time.Minute)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clk }
	ts := newDashboardTestServer(b, now)
	// An hour of traffic: every minute some requests, errors, latencies
	// and invocations (the recorder's clock moved on minute by minute).
	for m := 0; m < 60; m++ {
		for i := 0; i < 200; i++ {
			ts.srv.activity.Request(ts.admin.ProjectID, 200+(i%50)*6, time.Duration(i)*137*time.Microsecond)
		}
		ts.srv.activity.Invocation(ts.admin.ProjectID, m%7 == 0)
		if m < 59 {
			mu.Lock()
			clk = clk.Add(time.Minute)
			mu.Unlock()
		}
	}
	ts.inviteConsoleDeveloper(b, "dev@example.org", `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`)
	br, _ := ts.consoleSignIn(b, "dev@example.org")
	api := ts.browser(b)
	apiReq := func() {
		req, _ := http.NewRequest("GET", testURL+"/v1/project/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+ts.token)
		res, err := api.Do(req)
		if err != nil || res.StatusCode != 200 {
			b.Fatalf("api: %v", err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	var page, peer []time.Duration
	size := 0
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		status, body := get(b, br, "/console/dashboard")
		if status != 200 || !strings.Contains(body, "<svg class=\"chart\"") {
			b.Fatalf("console: %d", status)
		}
		size = len(body)
		t1 := time.Now()
		apiReq()
		page, peer = append(page, t1.Sub(t0)), append(peer, time.Since(t1))
	}
	reportConsoleBench(b, page, peer)
	b.ReportMetric(float64(size), "page-bytes")
}

// failingWorker answers 500 when the event's body asks it to, else 200.
type failingWorker struct{}

func (failingWorker) Invoke(_ context.Context, _ runtime.Function, inv runtime.Invocation) (runtime.Result, error) {
	if bytes.Contains(inv.Payload, []byte(`fail`)) {
		return runtime.Result{Payload: []byte(`{"statusCode":500,"body":"failed"}`)}, nil
	}
	return runtime.Result{Payload: []byte(`{"statusCode":200,"body":"ok"}`)}, nil
}

// Zambda invocations reach the dashboard, a 5xx answer as a failure,
// whoever made them (here: the console's invoke, in process).
func TestConsoleDashboardZambdas(t *testing.T) {
	rec := activity.New(nil, 0)
	ts := newTestServerWith(t, loopbackEgress(t), func(st *store.Store, sealer *seal.Sealer, d *Deps) {
		blobs, err := blob.NewFS(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		z3Svc, err := z3.New(t.Context(), z3.Config{PublicURL: testURL}, st, sealer, blobs, time.Now, log)
		if err != nil {
			t.Fatal(err)
		}
		zs := zambda.New(zambda.Config{WorkDir: t.TempDir(), Activity: rec}, st, d.IAM, z3Svc, nil, failingWorker{}, sealer, time.Now, log)
		t.Cleanup(zs.Flush)
		d.Z3, d.Zambda, d.Activity = z3Svc, zs, rec
	})
	ts.inviteConsoleDeveloper(t, "dev@example.org", `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`)
	b, csrf := ts.consoleSignIn(t, "dev@example.org")
	status, body := post(t, b, "/console/zambdas/new", url.Values{"csrf": {csrf}, "name": {"counted"}, "runtime": {"nodejs20.x"},
		"triggerMethod": {"http_auth"}, "memorySize": {"256"}, "timeoutInSeconds": {"5"}})
	m := zambdaIDOnPage.FindStringSubmatch(body)
	if status != 200 || m == nil {
		t.Fatalf("create: %d %s", status, body)
	}
	page := "/console/zambdas/" + m[1]
	if status, _ := postZip(t, b, page+"/upload", csrf, nodeZip(t)); status != 200 {
		t.Fatalf("upload: %d", status)
	}
	for _, payload := range []string{`{"a":1}`, `{"fail":true}`, `{"b":2}`} {
		if status, body := post(t, b, page+"/invoke", url.Values{"csrf": {csrf}, "payload": {payload}}); status != 200 {
			t.Fatalf("invoke %s: %d %s", payload, status, body)
		}
	}
	_, body = get(t, b, "/console/dashboard")
	if got := tiles(body); got["Zambda invocations"] != "3" {
		t.Errorf("tiles = %v, want 3 invocations", got)
	}
	if !strings.Contains(body, `<span class="hint">1 failed</span>`) {
		t.Errorf("no failure counted: %s", body)
	}
	if !strings.Contains(chartSVG.FindAllString(body, -1)[2], `<g class="s2" data-series="Failures"><rect `) {
		t.Error("the zambda chart shows no failure bar")
	}
}
