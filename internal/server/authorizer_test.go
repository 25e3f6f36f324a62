package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/seal/sealtest"
	"github.com/wardhealth/ward/internal/smart/authorizer"
	"github.com/wardhealth/ward/internal/store/storetest"
	"github.com/wardhealth/ward/internal/tokens"
)

// TestForeignTokens drives the FHIR gate with tokens Ward did not issue,
// decided by a project authorizer. The function itself is replaced by a Go
// runner here; e2e runs a real Node zambda.
func TestForeignTokens(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, storetest.Backends()[0])
	keys, _ := tokens.LoadKeys(ctx, st, sealtest.Setup(t, st), time.Now)
	revoked, _ := tokens.LoadRevocations(ctx, st, time.Now)
	svc := iam.New(st, testURL+"/invite/", time.Now, iam.Deps{})
	admin, _, err := svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	role, err := svc.CreateRole(ctx, admin.ProjectID, iam.RoleInput{Name: ptr("reader"),
		AccessPolicy: json.RawMessage(`{"rule":[{"resource":"FHIR:*","action":["FHIR:Read","FHIR:Search"],"effect":"Allow"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := st.GetProject(ctx, admin.ProjectID)
	p.AuthorizerZambdaID = "authz"
	if err := st.UpdateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	var lastOp atomic.Value
	run := func(_ context.Context, projectID, zambdaID string, in authorizer.Input, _ time.Duration) ([]byte, error) {
		calls.Add(1)
		lastOp.Store(in.OperationName)
		if zambdaID != "authz" || projectID != admin.ProjectID {
			return nil, fmt.Errorf("wrong function %s/%s", projectID, zambdaID)
		}
		now := time.Now().Unix()
		authorized := in.BearerToken == "good" || in.BearerToken == "patient"
		scope, patient := "user/*.rs", ""
		if in.BearerToken == "patient" {
			scope, patient = "patient/*.rs", "p1"
		}
		return json.Marshal(map[string]any{"authPayload": map[string]any{"iss": "https://idp", "aud": in.DatastoreEndpoint,
			"nbf": now, "exp": now + 60, "isAuthorized": authorized, "scope": scope, "patient": patient}, "roleId": role.ID})
	}
	authz := authorizer.New(run, authorizer.Config{})
	fhirSvc := fhir.New(st, svc, fhir.Config{}, time.Now)
	srv := New(Config{PublicURL: testURL, MaxBodyBytes: 64 << 10, RequestTimeout: 10 * time.Second},
		Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), IAM: svc, Now: time.Now,
			OAuth: newTestOAuth(t, st, svc, keys, revoked, fhirSvc, nil),
			FHIR:  fhir.NewHandler(fhirSvc, testURL+"/fhir", slog.New(slog.NewTextHandler(io.Discard, nil))), Authorizer: authz})
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	adminP := auth.Principal{ProjectID: admin.ProjectID, Kind: auth.KindM2M}
	if c, err := st.GetM2MByClientID(ctx, admin.ClientID); err == nil {
		adminP.ID = c.ID
	}
	for _, id := range []string{"p1", "p2"} {
		if _, _, err := fhirSvc.Update(ctx, adminP, "Patient", id, []byte(`{"resourceType":"Patient","id":"`+id+`"}`), ""); err != nil {
			t.Fatal(err)
		}
	}
	get := func(path, token string, project bool) int {
		req, _ := http.NewRequest("GET", hs.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if project {
			req.Header.Set("x-oystehr-project-id", admin.ProjectID)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	tests := []struct {
		name, path, token string
		project           bool
		want              int
		op                string
	}{
		{"authorized read", "/fhir/Patient/p1", "good", true, 200, "ReadResource"},
		{"authorized search (cached decision)", "/fhir/Patient?_id=p2", "good", true, 200, ""},
		{"refused", "/fhir/Patient/p1", "bad", true, 401, "ReadResource"},
		{"no project header", "/fhir/Patient/p1", "good", false, 401, ""},
		{"patient context", "/fhir/Patient/p1", "patient", true, 200, "ReadResource"},
		{"another patient", "/fhir/Patient/p2", "patient", true, 403, ""},
	}
	for _, tt := range tests {
		if got := get(tt.path, tt.token, tt.project); got != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.want)
		}
		if tt.op != "" && lastOp.Load() != tt.op {
			t.Errorf("%s: operation %v, want %s", tt.name, lastOp.Load(), tt.op)
		}
	}
	// "good", "bad" and "patient" were each decided once: the rest came
	// from the cache.
	if n := calls.Load(); n != 3 {
		t.Errorf("authorizer calls = %d, want 3", n)
	}
	// The role's policy still applies: no write through a read-only role.
	req, _ := http.NewRequest("DELETE", hs.URL+"/fhir/Patient/p1", nil)
	req.Header.Set("Authorization", "Bearer good")
	req.Header.Set("x-oystehr-project-id", admin.ProjectID)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 {
		t.Errorf("delete with a read role: %d", res.StatusCode)
	}
}

func ptr[T any](v T) *T { return &v }

func TestOperationName(t *testing.T) {
	tests := []struct{ method, path, want string }{
		{"POST", "/fhir/Patient", "CreateResource"},
		{"GET", "/fhir/Patient/1", "ReadResource"},
		{"GET", "/fhir/Patient/1/_history/2", "ReadResource"},
		{"GET", "/fhir/Patient/1/_history", "ReadHistory"},
		{"GET", "/fhir/_history", "ReadHistory"},
		{"PUT", "/fhir/Patient/1", "UpdateResource"},
		{"PATCH", "/fhir/Patient/1", "PatchResource"},
		{"DELETE", "/fhir/Patient/1", "DeleteResource"},
		{"GET", "/fhir/Patient", "SearchWithGet"},
		{"POST", "/fhir/Patient/_search", "SearchWithPost"},
		{"POST", "/fhir", "ProcessBundle"},
		{"POST", "/fhir/$export", "StartFHIRExportJobWithPost"},
		{"GET", "/fhir/Patient/$export", "StartFHIRExportJobWithGet"},
		{"POST", "/fhir/Subscription/1/$events", "InvokeOperation"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.path, nil)
		if got := operationName(r, "/fhir"); got != tt.want {
			t.Errorf("%s %s = %s, want %s", tt.method, tt.path, got, tt.want)
		}
	}
}
