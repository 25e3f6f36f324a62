package server

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var savedPatient = regexp.MustCompile(`<h1>Patient/([A-Za-z0-9\-.]+)</h1>`)

// The FHIR pages: create from the template with $validate's issues shown
// inline, then valid; search; edit; the history diff. Resource content is
// printed as text; another tenant's ids are 404; a form without the
// session's CSRF token changes nothing.
func TestConsoleFHIR(t *testing.T) {
	ts := newTestServer(t)
	ts.inviteConsoleDeveloper(t, "dev@example.org", `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`)
	b, csrf := ts.consoleSignIn(t, "dev@example.org")

	if status, body := get(t, b, "/console/fhir?q=patient"); status != 200 || !strings.Contains(body, `href="/console/fhir/Patient"`) || strings.Contains(body, `href="/console/fhir/Observation"`) {
		t.Fatalf("types page: %d %s", status, body)
	}
	if status, body := get(t, b, "/console/fhir/Patient/new"); status != 200 || !strings.Contains(body, "&#34;resourceType&#34;: &#34;Patient&#34;") {
		t.Fatalf("new page: %d %s", status, body)
	}
	// Invalid: $validate's issue next to the editor, the draft kept, nothing written.
	invalid := `{"resourceType":"Patient","gender":"robot","name":[{"family":"Doe"}]}`
	status, body := post(t, b, "/console/fhir/Patient/new", url.Values{"csrf": {csrf}, "resource": {invalid}})
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "The resource is not valid") || !strings.Contains(body, "Patient.gender") ||
		!strings.Contains(body, "robot") {
		t.Fatalf("invalid create: %d %s", status, body)
	}
	if n := ts.patientCount(t, ts.token); n != 0 {
		t.Fatalf("an invalid create wrote %d patients", n)
	}
	// Valid, with markup in its content: shown as text.
	hostile := `{"resourceType":"Patient","name":[{"family":"</pre><script>alert(1)</script>","given":["Zed"]}]}`
	status, body = post(t, b, "/console/fhir/Patient/new", url.Values{"csrf": {csrf}, "resource": {hostile}})
	m := savedPatient.FindStringSubmatch(body)
	if status != 200 || m == nil || !strings.Contains(body, "Saved as version 1") {
		t.Fatalf("valid create: %d %s", status, body)
	}
	id := m[1]
	if strings.Contains(body, "<script>alert(1)") || !strings.Contains(body, "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatalf("resource content not escaped: %s", body)
	}
	// Search with Ward's syntax, and its own message for a bad query.
	status, body = get(t, b, "/console/fhir/Patient?q="+url.QueryEscape("given=zed&_sort=-_lastUpdated"))
	if status != 200 || !strings.Contains(body, `href="/console/fhir/Patient/`+id+`"`) || !strings.Contains(body, "Zed") {
		t.Fatalf("search: %d %s", status, body)
	}
	if status, body := get(t, b, "/console/fhir/Patient?q="+url.QueryEscape("given=nobody")); status != 200 || strings.Contains(body, id) {
		t.Fatalf("search for nobody: %d %s", status, body)
	}
	if status, body := get(t, b, "/console/fhir/Patient?q="+url.QueryEscape("nosuchparam=1")); status != 400 || !strings.Contains(body, `class="problem"`) {
		t.Fatalf("bad search: %d %s", status, body)
	}
	// Edit: invalid first (nothing saved), then valid.
	status, body = post(t, b, "/console/fhir/Patient/"+id, url.Values{"csrf": {csrf}, "resource": {`{"resourceType":"Patient","id":"` + id + `","birthDate":"yesterday"}`}})
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "Patient.birthDate") {
		t.Fatalf("invalid update: %d %s", status, body)
	}
	roe := `{"resourceType":"Patient","id":"` + id + `","name":[{"family":"Roe","given":["Zed"]}]}`
	status, body = post(t, b, "/console/fhir/Patient/"+id, url.Values{"csrf": {csrf}, "version": {"1"}, "resource": {roe}})
	if status != 200 || !strings.Contains(body, "Saved as version 2") {
		t.Fatalf("update: %d %s", status, body)
	}
	// A form loaded at version 1 does not overwrite version 2.
	status, body = post(t, b, "/console/fhir/Patient/"+id, url.Values{"csrf": {csrf}, "version": {"1"}, "resource": {roe}})
	if status < 400 || strings.Contains(body, "Saved as version 3") {
		t.Fatalf("update: %d %s", status, body)
	}
	// History: both versions, the diff of 1 -> 2 by default.
	status, body = get(t, b, "/console/fhir/Patient/"+id+"/_history")
	if status != 200 || !regexp.MustCompile(`<span class="del">−\s+&#34;family&#34;: &#34;&lt;/pre&gt;&lt;script&gt;`).MatchString(body) ||
		!regexp.MustCompile(`<span class="add">\+\s+&#34;family&#34;: &#34;Roe&#34;`).MatchString(body) ||
		!regexp.MustCompile(`<span>\s+&#34;Zed&#34;</span>`).MatchString(body) {
		t.Fatalf("history diff: %d %s", status, body)
	}
	if status, body := get(t, b, "/console/fhir/Patient/"+id+"/_history?a=1&b=x"); status != 200 || !strings.Contains(body, "not a version number") {
		t.Fatalf("bad version: %d %s", status, body)
	}
	// No CSRF token: 403, nothing changed.
	if status, _ := post(t, b, "/console/fhir/Patient/"+id, url.Values{"resource": {`{"resourceType":"Patient","id":"` + id + `"}`}}); status != 403 {
		t.Fatalf("update without CSRF: %d", status)
	}
	if status, _ := post(t, b, "/console/fhir/Patient/new", url.Values{"csrf": {"x" + csrf[1:]}, "resource": {`{"resourceType":"Patient"}`}}); status != 403 {
		t.Fatalf("create with a wrong CSRF token: %d", status)
	}
	if n := ts.patientCount(t, ts.token); n != 1 {
		t.Fatalf("%d patients, want 1", n)
	}
	// Another tenant's patient: not found on every page, and not changed.
	other, err := ts.iam.CreateProject(t.Context(), "Other tenant")
	if err != nil {
		t.Fatal(err)
	}
	otherToken := ts.clientToken(t, other.ClientID, other.ClientSecret)
	st, created := ts.do(t, "POST", "/fhir/Patient", otherToken, `{"resourceType":"Patient","name":[{"family":"Theirs"}]}`)
	if st != 201 {
		t.Fatalf("other tenant's patient: %d %v", st, created)
	}
	theirs := created["id"].(string)
	for _, p := range []string{"/console/fhir/Patient/" + theirs, "/console/fhir/Patient/" + theirs + "/_history"} {
		if status, body := get(t, b, p); status != 404 || strings.Contains(body, "Theirs") {
			t.Errorf("%s: %d %s", p, status, body)
		}
	}
	if status, _ := post(t, b, "/console/fhir/Patient/"+theirs, url.Values{"csrf": {csrf}, "version": {"1"}, "resource": {`{"resourceType":"Patient","id":"` + theirs + `","name":[{"family":"Mine"}]}`}}); status == 200 {
		t.Errorf("update of another tenant's patient: %d", status)
	}
	if n := ts.patientCount(t, otherToken); n != 1 {
		t.Errorf("the other tenant has %d patients", n)
	}
	if _, read := ts.do(t, "GET", "/fhir/Patient/"+theirs, otherToken, ""); !strings.Contains(strings.ToLower(strings.Join(names(read), " ")), "theirs") {
		t.Errorf("the other tenant's patient changed: %v", read)
	}
	// Paths that are no resource type or id: 404 before the API.
	for _, p := range []string{"/console/fhir/NotAType", "/console/fhir/patient", "/console/fhir/Patient/a%20b", "/console/fhir/Patient/" + strings.Repeat("a", 65)} {
		if status, _ := get(t, b, p); status != 404 {
			t.Errorf("%s: %d, want 404", p, status)
		}
	}
}

func names(res map[string]any) []string {
	var out []string
	ns, _ := res["name"].([]any)
	for _, n := range ns {
		if m, ok := n.(map[string]any); ok {
			if f, ok := m["family"].(string); ok {
				out = append(out, f)
			}
		}
	}
	return out
}

// patientCount is how many Patients the token's project holds.
func (ts *testServer) patientCount(t *testing.T, token string) int {
	t.Helper()
	status, bundle := ts.do(t, "GET", "/fhir/Patient?_summary=count", token, "")
	if status != 200 {
		t.Fatalf("count: %d %v", status, bundle)
	}
	return int(bundle["total"].(float64))
}

// A developer who may only read FHIR sees no write controls, and a forced
// write is the API's 403.
func TestConsoleFHIRReadOnly(t *testing.T) {
	ts := newTestServer(t)
	st, created := ts.do(t, "POST", "/fhir/Patient", ts.token, `{"resourceType":"Patient","name":[{"family":"Kept"}]}`)
	if st != 201 {
		t.Fatalf("create: %d %v", st, created)
	}
	id := created["id"].(string)
	ts.inviteConsoleDeveloper(t, "reader@example.org",
		`{"rule":[{"resource":["FHIR:*"],"action":["FHIR:Read","FHIR:Search","FHIR:History"],"effect":"Allow"},{"resource":["Project:Settings"],"action":["Project:GetProjectInfo"],"effect":"Allow"}]}`)
	b, csrf := ts.consoleSignIn(t, "reader@example.org")
	if status, body := get(t, b, "/console/fhir/Patient"); status != 200 || !strings.Contains(body, id) || strings.Contains(body, "New Patient") {
		t.Fatalf("search page: %d %s", status, body)
	}
	if status, body := get(t, b, "/console/fhir/Patient/"+id); status != 200 || !strings.Contains(body, "Kept") || strings.Contains(body, "<textarea") {
		t.Fatalf("resource page: %d %s", status, body)
	}
	if status, _ := get(t, b, "/console/fhir/Patient/new"); status != 403 {
		t.Fatalf("new page: %d", status)
	}
	if status, body := post(t, b, "/console/fhir/Patient/"+id, url.Values{"csrf": {csrf}, "version": {"1"}, "resource": {`{"resourceType":"Patient","id":"` + id + `","name":[{"family":"Changed"}]}`}}); status != 403 || !strings.Contains(body, "FHIR:Update") {
		t.Fatalf("forced update: %d %s", status, body)
	}
	if status, body := post(t, b, "/console/fhir/Patient/new", url.Values{"csrf": {csrf}, "resource": {`{"resourceType":"Patient"}`}}); status != 403 || !strings.Contains(body, "FHIR:Create") {
		t.Fatalf("forced create: %d %s", status, body)
	}
	if n := ts.patientCount(t, ts.token); n != 1 {
		t.Fatalf("%d patients after forced writes", n)
	}
	// Pages: the API's own next link, followed.
	for i := range 24 {
		if st, _ := ts.do(t, "POST", "/fhir/Patient", ts.token, fmt.Sprintf(`{"resourceType":"Patient","name":[{"family":"Paged%02d"}]}`, i)); st != 201 {
			t.Fatalf("create: %d", st)
		}
	}
	rows := regexp.MustCompile(`<tr><td class="scope"><a href="/console/fhir/Patient/`)
	next := regexp.MustCompile(`<a href="(/console/fhir/Patient\?q=[^"]+)" rel="next">`)
	_, first := get(t, b, "/console/fhir/Patient?q="+url.QueryEscape("_sort=_lastUpdated"))
	m := next.FindStringSubmatch(first)
	if n := len(rows.FindAllString(first, -1)); n != 20 || m == nil {
		t.Fatalf("page 1: %d rows, next %v", n, m)
	}
	_, second := get(t, b, strings.ReplaceAll(m[1], "&amp;", "&"))
	if n := len(rows.FindAllString(second, -1)); n != 5 || !strings.Contains(second, "Paged23") || strings.Contains(second, "Kept") {
		t.Fatalf("page 2: %d rows: %s", n, second)
	}
	if _, read := ts.do(t, "GET", "/fhir/Patient/"+id, ts.token, ""); strings.Join(names(read), "") != "Kept" {
		t.Fatalf("forced update changed the patient: %v", read)
	}
}

// BenchmarkConsoleFHIRSearch measures the console's Patient search page
// (1,000 Patients in the project, one page of 20 rendered) against its
// peer in the same run, the FHIR search the page makes (GET
// /fhir/Patient?_count=20) over loopback HTTP: per-request time of each,
// the console's p99 and the ratio console/API.
// Run: go test -run X -bench BenchmarkConsoleFHIRSearch ./internal/server/
func BenchmarkConsoleFHIRSearch(b *testing.B) {
	ts := newTestServer(b)
	for i := range 1000 {
		if st, _ := ts.do(b, "POST", "/fhir/Patient", ts.token, fmt.Sprintf(`{"resourceType":"Patient","name":[{"family":"Bench%04d"}]}`, i)); st != 201 {
			b.Fatalf("create: %d", st)
		}
	}
	ts.inviteConsoleDeveloper(b, "dev@example.org", `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`)
	br, _ := ts.consoleSignIn(b, "dev@example.org")
	api := ts.browser(b)
	apiReq := func() {
		req, _ := http.NewRequest("GET", testURL+"/fhir/Patient?_count=20", nil)
		req.Header.Set("Authorization", "Bearer "+ts.token)
		res, err := api.Do(req)
		if err != nil || res.StatusCode != 200 {
			b.Fatalf("api: %v", err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	var page, peer []time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if status, _ := get(b, br, "/console/fhir/Patient"); status != 200 {
			b.Fatalf("console: %d", status)
		}
		t1 := time.Now()
		apiReq()
		page, peer = append(page, t1.Sub(t0)), append(peer, time.Since(t1))
	}
	reportConsoleBench(b, page, peer)
}
