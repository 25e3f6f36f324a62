package server

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store"
)

// corsGet sends a request from origin (a preflight when preflight is set)
// and returns the status and the Access-Control-Allow-Origin it got.
func (ts *testServer) corsRequest(t *testing.T, method, path, token, origin string) (int, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, nil)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if method == http.MethodOptions {
		req.Header.Set("Access-Control-Request-Method", "GET")
		req.Header.Set("Access-Control-Request-Headers", "authorization")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header
}

func TestCORSFollowsApplications(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	project := ts.admin.ProjectID
	// A second project whose application lists another origin.
	other, err := ts.iam.CreateProject(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	otherToken := ts.clientToken(t, other.ClientID, other.ClientSecret)
	for _, c := range []struct {
		project string
		origins []string
	}{
		{project, []string{"https://app.example", "https://*.clinic.example:8443"}},
		{other.ProjectID, []string{"https://other.example"}},
	} {
		origins := c.origins
		if _, err := ts.iam.CreateApplication(ctx, c.project, iam.ApplicationInput{Name: ptr("portal"), AllowedCallbackURLs: &[]string{"https://app.example/cb"},
			AllowedCORSOriginsURLs: &origins}); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name, method, path, token, origin string
		status                            int
		allowed                           bool
	}{
		{"listed origin, own project", "GET", "/fhir/Patient", ts.token, "https://app.example", 200, true},
		{"listed origin, other case and default port", "GET", "/fhir/Patient", ts.token, "HTTPS://App.Example:443", 200, true},
		{"preflight of a listed origin", "OPTIONS", "/fhir/Patient", "", "https://app.example", 204, true},
		{"wildcard, one label", "GET", "/v1/m2m/me", ts.token, "https://east.clinic.example:8443", 200, true},
		{"wildcard, two labels", "GET", "/v1/m2m/me", ts.token, "https://a.east.clinic.example:8443", 200, false},
		{"wildcard, other port", "GET", "/v1/m2m/me", ts.token, "https://east.clinic.example", 200, false},
		{"unlisted origin", "GET", "/fhir/Patient", ts.token, "https://evil.example", 200, false},
		{"preflight of an unlisted origin", "OPTIONS", "/fhir/Patient", "", "https://evil.example", 403, false},
		{"null origin", "GET", "/fhir/Patient", ts.token, "null", 200, false},
		{"preflight from null", "OPTIONS", "/fhir/Patient", "", "null", 403, false},
		// Listed by a project, but the token is another project's.
		{"origin of another project", "GET", "/fhir/Patient", otherToken, "https://app.example", 200, false},
		{"origin of another project, Project API", "GET", "/v1/m2m/me", otherToken, "https://app.example", 200, false},
		{"other project's own origin", "GET", "/fhir/Patient", otherToken, "https://other.example", 200, true},
		{"Ward's own origin", "GET", "/v1/m2m/me", ts.token, testURL, 200, true},
		{"no origin", "GET", "/v1/m2m/me", ts.token, "", 200, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, h := ts.corsRequest(t, tc.method, tc.path, tc.token, tc.origin)
			if status != tc.status {
				t.Fatalf("status %d, want %d", status, tc.status)
			}
			got := h.Get("Access-Control-Allow-Origin")
			if tc.allowed && got != tc.origin {
				t.Fatalf("Access-Control-Allow-Origin %q, want %q", got, tc.origin)
			}
			if !tc.allowed && (got != "" || h.Get("Access-Control-Allow-Headers") != "") {
				t.Fatalf("CORS headers for a refused origin: %v", h)
			}
		})
	}
}

// An origin added to an application works on the next request, though the
// server loaded the list a moment ago.
func TestCORSNewOriginAtOnce(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	if status, h := ts.corsRequest(t, "GET", "/v1/m2m/me", ts.token, "https://new.example"); status != 200 || h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("before: %d %v", status, h)
	}
	origins := []string{"https://new.example"}
	if _, err := ts.iam.CreateApplication(ctx, ts.admin.ProjectID, iam.ApplicationInput{Name: ptr("portal"), AllowedCallbackURLs: &[]string{}, AllowedCORSOriginsURLs: &origins}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, h := ts.corsRequest(t, "GET", "/v1/m2m/me", ts.token, "https://new.example")
		if h.Get("Access-Control-Allow-Origin") == "https://new.example" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new origin was not allowed within 5 s")
		}
		time.Sleep(50 * time.Millisecond) // polling: the miss reload waits corsMissReload
	}
}

func TestOriginIndexReloads(t *testing.T) {
	now := time.Unix(1000, 0)
	loads := 0
	lists := []store.ProjectOrigins{{ProjectID: "p", Origins: []string{"https://a.example"}}}
	ix := newOriginIndex(func(context.Context) ([]store.ProjectOrigins, error) { loads++; return lists, nil }, func() time.Time { return now }, []string{"https://ops.example"})
	ctx := context.Background()
	check := func(origin string, want bool) {
		t.Helper()
		d, err := ix.decide(ctx, origin)
		if err != nil || d.allowed() != want {
			t.Fatalf("%s: allowed %v (%v), want %v", origin, d.allowed(), err, want)
		}
	}
	check("https://a.example", true)
	check("https://ops.example", true)
	check("https://b.example", false) // fresh list: a miss does not reload
	if loads != 1 {
		t.Fatalf("%d loads, want 1", loads)
	}
	lists = []store.ProjectOrigins{{ProjectID: "p", Origins: []string{"https://b.example"}}}
	now = now.Add(corsMissReload + time.Millisecond)
	check("https://b.example", true) // a miss on an older list reloads
	now = now.Add(time.Millisecond)
	check("https://a.example", false) // removed: gone with that reload, and a fresh miss does not reload
	check("https://b.example", true)
	if loads != 2 {
		t.Fatalf("%d loads, want 2", loads)
	}
	now = now.Add(corsFresh + time.Millisecond)
	check("https://b.example", true)
	if loads != 3 {
		t.Fatalf("a stale list was not reloaded: %d loads", loads)
	}
	// An IAM change applied here (made on any replica) reloads at once.
	var changes uint64
	ix.changes = func() uint64 { return changes }
	lists = []store.ProjectOrigins{{ProjectID: "p", Origins: []string{"https://c.example"}}}
	changes++
	check("https://b.example", false)
	check("https://c.example", true)
	if loads != 4 {
		t.Fatalf("%d loads after a change, want 4", loads)
	}
}

// Answers to authenticated requests, errors included, stay out of every
// cache; public documents keep their own caching.
func TestCacheControl(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct {
		method, path, token string
		status              int
		want                string
	}{
		{"GET", "/v1/m2m/me", ts.token, 200, "no-store"},
		{"GET", "/v1/m2m/me", "", 401, "no-store"},
		{"GET", "/fhir/Patient", ts.token, 200, "no-store"},
		{"GET", "/fhir/Patient/nope", ts.token, 404, "no-store"},
		{"GET", "/fhir/Patient", "bad", 401, "no-store"},
		{"GET", "/v1/nothing-here", ts.token, 404, "no-store"},
		{"GET", "/.well-known/smart-configuration", "", 200, "public, max-age=300"},
		{"GET", "/.well-known/jwks.json", "", 200, "public, max-age=300"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			status, h := ts.corsRequest(t, tc.method, tc.path, tc.token, "")
			if status != tc.status || h.Get("Cache-Control") != tc.want {
				t.Fatalf("%d Cache-Control %q, want %d %q", status, h.Get("Cache-Control"), tc.status, tc.want)
			}
		})
	}
}
