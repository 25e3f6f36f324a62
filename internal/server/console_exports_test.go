package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/wardhealth/ward/internal/egress"
	"github.com/wardhealth/ward/internal/fhir/bulk"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/z3"
	"github.com/wardhealth/ward/internal/z3/blob"
)

// newExportTestServer is a test server with Z3 and bulk export; jobs run
// when the test calls RunOnce on the returned service.
func newExportTestServer(t testing.TB) (*testServer, *bulk.Service) {
	t.Helper()
	pol, err := egress.New(t.Context(), egress.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		t.Fatal(err)
	}
	var exports *bulk.Service
	ts := newTestServerWith(t, pol, func(st *store.Store, sealer *seal.Sealer, d *Deps) {
		blobs, err := blob.NewFS(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		svc, err := z3.New(t.Context(), z3.Config{PublicURL: testURL}, st, sealer, blobs, time.Now, log)
		if err != nil {
			t.Fatal(err)
		}
		d.Z3 = svc
		exports = bulk.New(bulk.Config{FileResources: 2}, st, d.FHIR.Service(), svc.Exports(), time.Now, log)
		exports.Register(d.FHIR)
	})
	return ts, exports
}

// runExports runs every waiting export job to its end.
func runExports(t testing.TB, exports *bulk.Service) {
	t.Helper()
	for {
		ran, err := exports.RunOnce(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !ran {
			return
		}
	}
}

var exportJobPath = regexp.MustCompile(`^/console/exports/([0-9a-f-]{36})$`)

// The exports page: start an export (bad parameters' messages at their
// fields), follow it (the JSON exports.js polls), see its files once
// done, download one, cancel another; the list of the developer's own
// jobs; another developer's job 404 everywhere; a developer who may not
// search has no start form and a forced start is 403; CSRF 403.
func TestConsoleExports(t *testing.T) {
	ts, exports := newExportTestServer(t)
	ts.inviteConsoleDeveloper(t, "admin@example.org", `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`)
	ts.inviteConsoleDeveloper(t, "searcher@example.org", `{"rule":[{"resource":["FHIR:*"],"action":["FHIR:Search","FHIR:Read"],"effect":"Allow"},`+readProject+`]}`)
	ts.inviteConsoleDeveloper(t, "nobody@example.org", `{"rule":[`+readProject+`]}`)
	for _, body := range []string{`{"resourceType":"Patient","name":[{"family":"` + `<script>alert(1)</script>` + `"}]}`,
		`{"resourceType":"Patient"}`, `{"resourceType":"Patient"}`} {
		if status, out := ts.do(t, "POST", "/fhir/Patient", ts.token, body); status != 201 {
			t.Fatalf("create patient: %d %v", status, out)
		}
	}
	b, csrf := ts.consoleSignIn(t, "admin@example.org")
	if status, body := get(t, b, "/console/exports"); status != 200 || !strings.Contains(body, "Start export") || !strings.Contains(body, "0 exports") {
		t.Fatalf("exports page: %d %s", status, body)
	}
	for _, tc := range []struct{ name, field string }{{"since", "since"}, {"group", "group"}, {"types", "types"}} {
		form := url.Values{"csrf": {csrf}, "level": {"system"}}
		switch tc.name {
		case "since":
			form.Set("since", "yesterday")
		case "group":
			form.Set("level", "group")
			form.Set("group", "../x")
		case "types":
			form.Set("types", "Patient,NoSuchType")
		}
		status, body := post(t, b, "/console/exports", form)
		if status != 400 || !strings.Contains(body, `id="`+tc.field+`" type="text" name="`+tc.field+`"`) ||
			!regexp.MustCompile(`id="`+tc.field+`" [^>]*aria-invalid="true"`).MatchString(body) || !strings.Contains(body, `class="problem"`) {
			t.Errorf("bad %s: %d %s", tc.name, status, body)
		}
	}

	res, err := b.PostForm(testURL+"/console/exports", url.Values{"csrf": {csrf}, "level": {"patient"}, "types": {"Patient"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := exportJobPath.FindStringSubmatch(res.Request.URL.Path)
	if res.StatusCode != 200 || m == nil || !strings.Contains(string(page), `data-poll="/console/exports/`+m[1]+`"`) {
		t.Fatalf("start: %d at %s: %s", res.StatusCode, res.Request.URL, page)
	}
	job := m[1]
	req, _ := http.NewRequest("GET", testURL+"/console/exports/"+job, nil)
	req.Header.Set("Accept", "application/json")
	res, err = b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	poll, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(poll), `"status":"running"`) || !strings.Contains(string(poll), "exporting Patient") {
		t.Fatalf("poll: %s", poll)
	}
	runExports(t, exports)
	status, body := get(t, b, "/console/exports/"+job)
	if status != 200 || !strings.Contains(body, `<dd id="export-status">done</dd>`) || strings.Contains(body, "data-poll") ||
		!strings.Contains(body, `href="/console/exports/`+job+`/file/0"`) || !strings.Contains(body, `href="/console/exports/`+job+`/file/1"`) ||
		!strings.Contains(body, `<span class="j-key">&#34;transactionTime&#34;</span>`) {
		t.Fatalf("done: %d %s", status, body)
	}
	var lines int
	for _, n := range []string{"0", "1"} {
		res, err := b.Get(testURL + "/console/exports/" + job + "/file/" + n)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/fhir+ndjson" ||
			!strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment;") {
			t.Fatalf("file %s: %d %v %s", n, res.StatusCode, res.Header, data)
		}
		lines += strings.Count(string(data), "\n")
	}
	if lines != 3 {
		t.Errorf("%d lines in the files, want 3", lines)
	}
	if status, body := get(t, b, "/console/exports"); status != 200 || !strings.Contains(body, `href="/console/exports/`+job+`"`) ||
		!strings.Contains(body, "Patient/$export?_type=Patient") || !strings.Contains(body, "<td>done</td>") {
		t.Fatalf("list: %d %s", status, body)
	}

	// Another developer may search, but not see or touch this job.
	sb, scsrf := ts.consoleSignIn(t, "searcher@example.org")
	if _, body := get(t, sb, "/console/exports"); strings.Contains(body, job) || !strings.Contains(body, "Start export") {
		t.Errorf("another developer's list: %s", body)
	}
	for _, path := range []string{"/console/exports/" + job, "/console/exports/" + job + "/file/0", "/console/exports/not-a-job",
		"/console/exports/" + job + "/file/x"} {
		if status, _ := get(t, sb, path); status != 404 {
			t.Errorf("another developer's GET %s: %d", path, status)
		}
	}
	if status, _ := post(t, sb, "/console/exports/"+job+"/cancel", url.Values{"csrf": {scsrf}}); status != 404 {
		t.Errorf("another developer's cancel: %d", status)
	}
	if status, _ := get(t, b, "/console/exports/"+job); status != 200 {
		t.Errorf("the job after another's cancel: %d", status)
	}

	// Cancel a running export: gone, its page 404.
	res, err = b.PostForm(testURL+"/console/exports", url.Values{"csrf": {csrf}, "level": {"system"}, "types": {"Patient"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	second := exportJobPath.FindStringSubmatch(res.Request.URL.Path)
	if second == nil {
		t.Fatalf("second start at %s", res.Request.URL)
	}
	if status, _ := post(t, b, "/console/exports/"+second[1]+"/cancel", url.Values{}); status != 403 {
		t.Errorf("cancel without CSRF: %d", status)
	}
	if status, body := post(t, b, "/console/exports/"+second[1]+"/cancel", url.Values{"csrf": {csrf}}); status != 200 || !strings.Contains(body, "Export cancelled") ||
		strings.Contains(body, second[1]) {
		t.Fatalf("cancel: %d %s", status, body)
	}
	if status, _ := get(t, b, "/console/exports/"+second[1]); status != 404 {
		t.Errorf("cancelled job's page: %d", status)
	}

	// Pages of 50 over the API's pages; a page past the end shows the last;
	// a filter over the newest 1,000.
	devs, err := ts.iam.ListDevelopers(t.Context(), ts.admin.ProjectID)
	if err != nil {
		t.Fatal(err)
	}
	var dev string
	for _, d := range devs {
		if d.Email == "admin@example.org" {
			dev = d.ID
		}
	}
	t0 := time.Now().Add(-time.Hour)
	for i := range 120 {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		if err := ts.st.CreateExportJob(t.Context(), store.ExportJob{ProjectID: ts.admin.ProjectID, ID: uuid.NewString(),
			Principal: []byte(`{"kind":"developer","id":"` + dev + `"}`), Owner: "developer/" + dev + "/", Request: testURL + "/fhir/$export?_type=Observation",
			Params: []byte(`{"level":"system","types":["Observation"]}`), TransactionTime: at, CreatedAt: at, Cursor: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	rows := regexp.MustCompile(`<tr><td><a href="/console/exports/[0-9a-f-]{36}">`)
	for _, tc := range []struct {
		query      string
		rows       int
		prev, next bool
	}{{"", 50, false, true}, {"?page=2", 50, true, true}, {"?page=3", 21, true, false}, {"?page=99", 21, true, false}, {"?q=patient", 1, false, false}} {
		status, body := get(t, b, "/console/exports"+tc.query)
		if n := len(rows.FindAllString(body, -1)); status != 200 || n != tc.rows || strings.Contains(body, "Previous page") != tc.prev ||
			strings.Contains(body, "Next page") != tc.next || !strings.Contains(body, "121 exports") && tc.query != "?q=patient" {
			t.Errorf("exports%s: %d, %d rows, prev/next %v/%v", tc.query, status, n, strings.Contains(body, "Previous page"), strings.Contains(body, "Next page"))
		}
	}

	// No right to search: no start form, a forced start 403.
	nb, ncsrf := ts.consoleSignIn(t, "nobody@example.org")
	if status, body := get(t, nb, "/console/exports"); status != 200 || strings.Contains(body, "Start export") {
		t.Errorf("nobody's exports page: %d %s", status, body)
	}
	if status, body := post(t, nb, "/console/exports", url.Values{"csrf": {ncsrf}, "level": {"system"}, "types": {"Patient"}}); status != 403 ||
		!strings.Contains(body, "FHIR:Search") {
		t.Errorf("nobody's forced start: %d %s", status, body)
	}
}
