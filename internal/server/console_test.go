package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/iam"
)

// browser is an HTTP client that reaches the test server at testURL, with
// cookies, as a browser would.
func (ts *testServer) browser(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := ts.Listener.Addr().String()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second}
}

// inviteConsoleDeveloper invites email with a role of the given policy
// and accepts the invitation.
func (ts *testServer) inviteConsoleDeveloper(t testing.TB, email, policy string) {
	t.Helper()
	status, role := ts.do(t, "POST", "/v1/iam/role", ts.token, fmt.Sprintf(`{"name":%q,"accessPolicy":%s}`, "role of "+email, policy))
	if status != 200 {
		t.Fatalf("create role: %d %v", status, role)
	}
	status, inv := ts.do(t, "POST", "/v1/developer/invite", ts.token,
		`{"email":"`+email+`","practitioner":{"resourceType":"Practitioner","name":[{"family":"Dev"}]},"roles":["`+role["id"].(string)+`"]}`)
	if status != 200 {
		t.Fatalf("invite: %d %v", status, inv)
	}
	link := strings.TrimPrefix(inv["invitationUrl"].(string), testURL)
	if status, body := ts.do(t, "POST", link, "", `{"password":"correct horse battery staple"}`); status != 200 {
		t.Fatalf("accept: %d %v", status, body)
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// consoleSignIn signs email in to the console through the authorization
// server's own sign-in form and returns the browser and the page's CSRF
// token.
func (ts *testServer) consoleSignIn(t testing.TB, email string) (*http.Client, string) {
	t.Helper()
	b := ts.browser(t)
	res, err := b.Get(testURL + "/console/signin")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Request.URL.Path != "/oauth/authorize" {
		t.Fatalf("sign-in page: %d at %s", res.StatusCode, res.Request.URL)
	}
	form := res.Request.URL.Query()
	form.Set("action", "signin")
	form.Set("email", email)
	form.Set("password", "correct horse battery staple")
	res, err = b.PostForm(testURL+"/oauth/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Request.URL.Path != "/console/dashboard" {
		t.Fatalf("after sign-in: %d at %s: %s", res.StatusCode, res.Request.URL, body)
	}
	m := csrfField.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the dashboard: %s", body)
	}
	return b, string(m[1])
}

func get(t testing.TB, b *http.Client, path string) (int, string) {
	t.Helper()
	res, err := b.Get(testURL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

func post(t testing.TB, b *http.Client, path string, form url.Values) (int, string) {
	t.Helper()
	res, err := b.PostForm(testURL+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// The console acts through the gate: what a developer's policy denies on
// the API is denied on the console (403, the API's message), audited as a
// denial of that developer, and nothing is written.
func TestConsoleActsThroughTheGate(t *testing.T) {
	ts := newTestServer(t)
	ts.inviteConsoleDeveloper(t, "reader@example.org",
		`{"rule":[{"resource":["IAM:Role:*"],"action":["IAM:ListAllRoles","IAM:GetRole"],"effect":"Allow"},{"resource":["Project:Settings"],"action":["Project:GetProjectInfo"],"effect":"Allow"}]}`)
	b, csrf := ts.consoleSignIn(t, "reader@example.org")

	if status, body := get(t, b, "/console/roles"); status != 200 || !strings.Contains(body, "role of reader@example.org") || strings.Contains(body, "New role") {
		t.Fatalf("roles page: %d %s", status, body)
	}
	status, body := post(t, b, "/console/roles/new", url.Values{"csrf": {csrf}, "name": {"forced"}, "policy": {`{"rule":[]}`}})
	if status != 403 || !strings.Contains(body, "IAM:CreateRole") {
		t.Fatalf("forced create: %d %s", status, body)
	}
	// Not in the M2M area at all: the API's 403 on the list.
	if status, body := get(t, b, "/console/m2m"); status != 403 || !strings.Contains(body, "IAM:ListAllM2MClients") {
		t.Fatalf("m2m list: %d %s", status, body)
	}
	// Switching to a project the developer is not a member of (another
	// tenant's) is refused.
	other, err := ts.iam.CreateProject(t.Context(), "Other tenant")
	if err != nil {
		t.Fatal(err)
	}
	if status, body := post(t, b, "/console/project/switch", url.Values{"csrf": {csrf}, "project": {other.ProjectID}}); status != 403 {
		t.Fatalf("switch to another tenant: %d %s", status, body)
	}
	if status, body := get(t, b, "/console/project"); status != 200 || strings.Contains(body, "Other tenant") {
		t.Fatalf("project page after a refused switch: %d %s", status, body)
	}
	roles, err := ts.iam.ListRoles(t.Context(), ts.admin.ProjectID)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(roles, func(r iam.Role) bool { return r.Name == "forced" }) {
		t.Fatalf("the forced create wrote a role: %v", roles)
	}
	events, err := ts.st.ListAudit(t.Context(), ts.admin.ProjectID, 100)
	if err != nil {
		t.Fatal(err)
	}
	denied := false
	for _, e := range events {
		if e.Action == "IAM:CreateRole" && e.Outcome == "denied" && e.PrincipalKind == "developer" {
			denied = true
		}
	}
	if !denied {
		t.Errorf("no audited denial of the developer's IAM:CreateRole: %+v", events)
	}
}

// BenchmarkConsoleRoles measures the console's roles page (1,000 roles in
// the project, one page of 50 rendered) against its peer in the same
// run, the API call the page makes (GET /v1/iam/role, all 1,000 as JSON),
// over loopback HTTP: per-request time of each, the console's p99 and the
// ratio console/API. Run: go test -run X -bench BenchmarkConsoleRoles ./internal/server/
func BenchmarkConsoleRoles(b *testing.B) {
	ts := newTestServer(b)
	ctx := context.Background()
	for i := range 1000 {
		name := fmt.Sprintf("role-%04d", i)
		if _, err := ts.iam.CreateRole(ctx, ts.admin.ProjectID, iam.RoleInput{Name: &name,
			AccessPolicy: []byte(`{"rule":[{"resource":["FHIR:Patient:*"],"action":["FHIR:Read"],"effect":"Allow"}]}`)}); err != nil {
			b.Fatal(err)
		}
	}
	ts.inviteConsoleDeveloper(b, "dev@example.org", `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`)
	br, _ := ts.consoleSignIn(b, "dev@example.org")
	api := ts.browser(b)
	apiReq := func() {
		req, _ := http.NewRequest("GET", testURL+"/v1/iam/role", nil)
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
		if status, _ := get(b, br, "/console/roles?page=7"); status != 200 {
			b.Fatalf("console: %d", status)
		}
		t1 := time.Now()
		apiReq()
		page, peer = append(page, t1.Sub(t0)), append(peer, time.Since(t1))
	}
	reportConsoleBench(b, page, peer)
}

// The roles list pages through long lists, the filter kept across pages.
func TestConsoleRolesPages(t *testing.T) {
	ts := newTestServer(t)
	for i := range 60 {
		name := fmt.Sprintf("bulk-%02d", i)
		if _, err := ts.iam.CreateRole(t.Context(), ts.admin.ProjectID, iam.RoleInput{Name: &name, AccessPolicy: []byte(`{"rule":[]}`)}); err != nil {
			t.Fatal(err)
		}
	}
	ts.inviteConsoleDeveloper(t, "dev@example.org", `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`)
	b, _ := ts.consoleSignIn(t, "dev@example.org")
	rows := regexp.MustCompile(`<tr><td><a href="/console/roles/[^"]+">([^<]+)</a>`)
	names := func(body string) []string {
		var out []string
		for _, m := range rows.FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	_, first := get(t, b, "/console/roles?q=bulk")
	if got := names(first); len(got) != 50 || !strings.Contains(first, `href="/console/roles?page=2&amp;q=bulk"`) || strings.Contains(first, "Previous page") {
		t.Fatalf("page 1: %d rows %v", len(got), got)
	}
	_, second := get(t, b, "/console/roles?page=2&q=bulk")
	if got := names(second); len(got) != 10 || !strings.Contains(second, "Previous page") || strings.Contains(second, "Next page") {
		t.Fatalf("page 2: %v", got)
	}
	seen := map[string]bool{}
	for _, n := range append(names(first), names(second)...) {
		seen[n] = true
	}
	if len(seen) != 60 {
		t.Errorf("%d distinct roles over both pages, want 60", len(seen))
	}
	// Pages out of range show the nearest page, not an error.
	for _, p := range []string{"0", "-3", "99", "x"} {
		if status, body := get(t, b, "/console/roles?q=bulk&page="+p); status != 200 || len(names(body)) == 0 {
			t.Errorf("page %s: %d, %d rows", p, status, len(names(body)))
		}
	}
}

// Names and policies come from other developers: the pages print them as
// text, never as markup.
func TestConsoleEscapesHostileNames(t *testing.T) {
	ts := newTestServer(t)
	const evil = `<img src=x onerror=alert(1)>"'`
	name, desc := evil, evil+" description"
	ro, err := ts.iam.CreateRole(t.Context(), ts.admin.ProjectID, iam.RoleInput{Name: &name, Description: &desc,
		AccessPolicy: []byte(`{"rule":[{"resource":["FHIR:Patient:</pre><script>alert(2)</script>"],"action":["FHIR:Read"],"effect":"Allow"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	ts.inviteConsoleDeveloper(t, "dev@example.org", `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`)
	b, csrf := ts.consoleSignIn(t, "dev@example.org")
	pages := map[string]string{}
	_, pages["list"] = get(t, b, "/console/roles")
	_, pages["role"] = get(t, b, "/console/roles/"+ro.ID)
	_, pages["explain"] = post(t, b, "/console/roles/"+ro.ID+"/explain", url.Values{"csrf": {csrf}, "action": {"FHIR:Read"},
		"resource": {"FHIR:Patient:</pre><script>alert(2)</script>"}})
	for which, body := range pages {
		for _, raw := range []string{"<img src=x", "<script>alert(2)", "</pre><script>"} {
			if strings.Contains(body, raw) {
				t.Errorf("%s page holds %q unescaped", which, raw)
			}
		}
		if !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
			t.Errorf("%s page does not show the name as text", which)
		}
	}
	if !strings.Contains(pages["explain"], "Allowed") {
		t.Errorf("explain: %s", pages["explain"])
	}
}

// Write controls follow the gate's decision about the developer itself,
// whatever else the policy allows (here: no IAM reads at all).
func TestConsoleControlsFollowPolicy(t *testing.T) {
	ts := newTestServer(t)
	ts.inviteConsoleDeveloper(t, "editor@example.org",
		`{"rule":[{"resource":["Project:Settings"],"action":["Project:GetProjectInfo","Project:UpdateProjectInfo"],"effect":"Allow"}]}`)
	ts.inviteConsoleDeveloper(t, "viewer@example.org",
		`{"rule":[{"resource":["Project:Settings"],"action":["Project:GetProjectInfo"],"effect":"Allow"}]}`)
	ts.inviteConsoleDeveloper(t, "denied@example.org",
		`{"rule":[{"resource":["Project:Settings"],"action":["*"],"effect":"Allow"},{"resource":["Project:Settings"],"action":["Project:UpdateProjectInfo"],"effect":"Deny"}]}`)
	for email, want := range map[string]bool{"editor@example.org": true, "viewer@example.org": false, "denied@example.org": false} {
		b, _ := ts.consoleSignIn(t, email)
		status, body := get(t, b, "/console/project")
		if status != 200 || strings.Contains(body, "Save settings") != want {
			t.Errorf("%s: %d, Save settings shown = %v, want %v", email, status, !want, want)
		}
	}
}

// reportConsoleBench reports a console page's times against its own API
// call's, measured in the same loop: means, the page's p99 and the ratio.
func reportConsoleBench(b *testing.B, page, peer []time.Duration) {
	b.Helper()
	slices.Sort(page)
	slices.Sort(peer)
	mean := func(d []time.Duration) float64 {
		var s time.Duration
		for _, x := range d {
			s += x
		}
		return float64(s) / float64(len(d))
	}
	b.ReportMetric(mean(page)/1e6, "console-ms/op")
	b.ReportMetric(mean(peer)/1e6, "api-ms/op")
	b.ReportMetric(float64(page[len(page)*99/100])/1e6, "console-p99-ms")
	b.ReportMetric(mean(page)/mean(peer), "console/api")
}
