package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store"
)

// BenchmarkConsoleIAMPages measures the new console pages with 1,000
// items of their kind in the project (developers, users, applications,
// export jobs), each against its peer in the same run, the API call the
// page makes (as JSON, over the same loopback HTTP; for exports the page of
// 50 it asks for): per-request time of
// each, the console's p99, the ratio console/API and the page's size.
// Run: go test -run X -bench BenchmarkConsoleIAMPages -benchtime 200x ./internal/server/
func BenchmarkConsoleIAMPages(b *testing.B) {
	ts, _ := newExportTestServer(b)
	ctx := context.Background()
	project := ts.admin.ProjectID
	ts.inviteConsoleDeveloper(b, "dev@example.org", `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`)
	var dev string
	devs, err := ts.iam.ListDevelopers(ctx, project)
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range devs {
		if d.Email == "dev@example.org" {
			dev = d.ID
		}
	}
	name, empty := "Portal", []string{}
	app, err := ts.iam.CreateApplication(ctx, project, iam.ApplicationInput{Name: &name, AllowedCallbackURLs: &empty})
	if err != nil {
		b.Fatal(err)
	}
	who, _ := json.Marshal(map[string]string{"kind": string(auth.KindDeveloper), "id": dev})
	t0 := time.Now()
	for i := range 1000 {
		if _, err := ts.iam.InviteDeveloper(ctx, project, iam.DeveloperInvite{Email: fmt.Sprintf("dev%04d@example.org", i), Roles: []string{}}); err != nil {
			b.Fatal(err)
		}
		email, ref := fmt.Sprintf("user%04d@example.org", i), "Patient/p"+fmt.Sprint(i)
		if _, err := ts.iam.InviteUser(ctx, project, iam.UserInvite{ApplicationID: app.ID, Email: &email, Profile: &ref,
			AccessPolicy: json.RawMessage(`{"rule":[]}`)}); err != nil {
			b.Fatal(err)
		}
		an := fmt.Sprintf("app-%04d", i)
		if _, err := ts.iam.CreateApplication(ctx, project, iam.ApplicationInput{Name: &an, AllowedCallbackURLs: &empty}); err != nil {
			b.Fatal(err)
		}
		at := t0.Add(time.Duration(i) * time.Millisecond)
		if err := ts.st.CreateExportJob(ctx, store.ExportJob{ProjectID: project, ID: uuid.NewString(), Principal: who, Owner: "developer/" + dev + "/",
			Request: testURL + "/fhir/$export?_type=Patient", Params: []byte(`{"level":"system","types":["Patient"]}`),
			TransactionTime: at, CreatedAt: at, Cursor: []byte(`{}`)}); err != nil {
			b.Fatal(err)
		}
	}
	devToken, _, err := auth.NewIssuer(ts.keys.Ring, testURL, testURL, time.Now).Issue(ctx,
		auth.Principal{Kind: auth.KindDeveloper, ID: dev}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	br, _ := ts.consoleSignIn(b, "dev@example.org")
	api := ts.browser(b)
	for _, pc := range []struct{ name, page, api string }{
		{"developers", "/console/developers?page=7", "/v1/developer"},
		{"users", "/console/users?q=user", "/v1/user/v2/list?sort=name&limit=50&name=user"},
		{"applications", "/console/applications?page=7", "/v1/application"},
		{"exports", "/console/exports?page=7", "/fhir/$export-poll?_count=50&_offset=300"},
	} {
		b.Run(pc.name, func(b *testing.B) {
			var page, peer []time.Duration
			var size int
			for b.Loop() {
				t0 := time.Now()
				status, body := get(b, br, pc.page)
				if status != 200 {
					b.Fatalf("console %s: %d", pc.page, status)
				}
				t1 := time.Now()
				req, _ := http.NewRequest("GET", testURL+pc.api, nil)
				req.Header.Set("Authorization", "Bearer "+devToken)
				req.Header.Set("X-Oystehr-Project-Id", project)
				res, err := api.Do(req)
				if err != nil || res.StatusCode != 200 {
					b.Fatalf("api %s: %v %v", pc.api, res, err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				page, peer, size = append(page, t1.Sub(t0)), append(peer, time.Since(t1)), len(body)
			}
			slices.Sort(page)
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
			b.ReportMetric(float64(size)/1024, "page-KB")
		})
	}
}
