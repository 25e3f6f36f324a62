package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
)

// doWith sends a request with extra headers.
func (ts *testServer) doWith(t testing.TB, method, path, token, body string, headers map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	return res.StatusCode, decodeMap(res)
}

func TestDeveloperInvitationAndProjectHeader(t *testing.T) {
	ts := newTestServer(t)
	status, role := ts.do(t, "POST", "/v1/iam/role", ts.token, `{"name":"dev","accessPolicy":{"rule":[{"resource":"IAM:Role:*","action":"IAM:ListAllRoles","effect":"Allow"}]}}`)
	if status != 200 {
		t.Fatalf("create role: %d %v", status, role)
	}
	status, inv := ts.do(t, "POST", "/v1/developer/invite", ts.token,
		`{"email":"dev@example.org","practitioner":{"resourceType":"Practitioner","name":[{"given":["Ada"],"family":"Lovelace"}]},"roles":["`+role["id"].(string)+`"]}`)
	if status != 200 || !strings.HasPrefix(inv["invitationUrl"].(string), testURL+"/invite/") {
		t.Fatalf("invite: %d %v", status, inv)
	}
	link := strings.TrimPrefix(inv["invitationUrl"].(string), testURL)
	devID := inv["id"].(string)

	// A token of the developer, as the login flow will issue it.
	iss := auth.NewIssuer(ts.keys.Ring, testURL, testURL, time.Now)
	devToken, _, err := iss.Issue(context.Background(), auth.Principal{Kind: auth.KindDeveloper, ID: devID}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	header := map[string]string{"x-oystehr-project-id": ts.admin.ProjectID}
	if status, body := ts.doWith(t, "GET", "/v1/iam/role", devToken, "", header); status != 403 {
		t.Fatalf("before accepting the invitation: %d %v, want 403", status, body)
	}
	if status, body := ts.do(t, "POST", link, "", `{"password":"short"}`); status != 400 {
		t.Fatalf("weak password: %d %v", status, body)
	}
	if status, body := ts.do(t, "POST", link, "", `{"password":"correct horse battery staple"}`); status != 200 || body["email"] != "dev@example.org" {
		t.Fatalf("accept: %d %v", status, body)
	}
	if status, _ := ts.do(t, "POST", link, "", `{"password":"correct horse battery staple"}`); status != 404 {
		t.Fatalf("second use of the link: %d, want 404", status)
	}
	cases := []struct {
		name    string
		method  string
		path    string
		headers map[string]string
		status  int
	}{
		{"member with header", "GET", "/v1/iam/role", header, 200},
		{"zapehr header twin", "GET", "/v1/iam/role", map[string]string{"x-zapehr-project-id": ts.admin.ProjectID}, 200},
		{"no project header", "GET", "/v1/iam/role", nil, 400},
		{"another project", "GET", "/v1/iam/role", map[string]string{"x-oystehr-project-id": "00000000-0000-0000-0000-000000000000"}, 403},
		{"action the role lacks", "POST", "/v1/iam/role", header, 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if status, body := ts.doWith(t, c.method, c.path, devToken, `{"name":"x"}`, c.headers); status != c.status {
				t.Fatalf("%d %v, want %d", status, body, c.status)
			}
		})
	}
	status, dev := ts.do(t, "GET", "/v1/developer/"+devID, ts.token, "")
	if status != 200 || dev["name"] != "Ada Lovelace" || dev["profile"] != "Practitioner/"+inv["practitionerId"].(string) {
		t.Fatalf("get developer: %d %v", status, dev)
	}
	if status, _ := ts.do(t, "DELETE", "/v1/iam/role/"+role["id"].(string), ts.token, ""); status != 409 {
		t.Fatalf("delete role held by developer: %d", status)
	}
	if status, _ := ts.do(t, "DELETE", "/v1/developer/"+devID, ts.token, ""); status != 204 {
		t.Fatalf("remove developer: %d", status)
	}
	if status, _ := ts.doWith(t, "GET", "/v1/iam/role", devToken, "", header); status != 403 {
		t.Fatalf("removed developer still in: %d", status)
	}
}

func TestExplain(t *testing.T) {
	ts := newTestServer(t)
	policy := `{"rule":[{"resource":"FHIR:Patient:*","action":["FHIR:Read","FHIR:History"],"effect":"Allow"},{"resource":"FHIR:Patient:vip","action":"FHIR:Read","effect":"Deny"},{"resource":"FHIR:Observation:*","action":"FHIR:History","effect":"Allow"}]}`
	cases := []struct {
		action, resource string
		allowed          bool
		index            float64
	}{
		{"FHIR:Read", "FHIR:Patient:1", true, 0},
		{"FHIR:Read", "FHIR:Patient:vip", false, 1},
		{"FHIR:History", "FHIR:Patient:1", true, 0},
		{"FHIR:History", "FHIR:Observation:1", false, -1}, // History without Read has no effect
		{"FHIR:Delete", "FHIR:Patient:1", false, -1},
	}
	for _, c := range cases {
		status, out := ts.do(t, "POST", "/v1/iam/explain", ts.token,
			`{"action":"`+c.action+`","resource":"`+c.resource+`","principal":{"accessPolicy":`+policy+`}}`)
		if status != 200 || out["allowed"] != c.allowed {
			t.Errorf("%s on %s: %d %v, want allowed=%v", c.action, c.resource, status, out, c.allowed)
			continue
		}
		rule, _ := out["decidingRule"].(map[string]any)
		if c.index >= 0 && (rule == nil || rule["index"] != c.index) {
			t.Errorf("%s on %s: deciding rule %v, want index %v", c.action, c.resource, rule, c.index)
		}
	}
}

// TestOystehrOnlyActions: a role and an M2M client granting actions Oystehr
// accepts beyond its published table (Ottehr's, issue 25) are created, a typo
// is still a 400, and explain says where such an action comes from.
func TestOystehrOnlyActions(t *testing.T) {
	ts := newTestServer(t)
	policy := `{"rule":[
		{"resource":"Terminology:Code:*","action":"Terminology:SearchCodes","effect":"Allow"},
		{"resource":"Fax:Fax:*","action":"Fax:Send","effect":"Allow"},
		{"resource":"Lab:*","action":"Lab:*","effect":"Allow"},
		{"resource":"RCM:Payer","action":["RCM:SearchPayer","RCM:GetPayer"],"effect":"Allow"},
		{"resource":"RCM:Era","action":"RCM:ProcessEra","effect":"Allow"},
		{"resource":"Telemed:Meeting:*","action":["Telemed:JoinMeeting","Telemed:EndMeeting"],"effect":"Allow"},
		{"resource":"eRx:Pharmacy","action":["eRx:SearchPharmacy","eRx:GetPharmacy"],"effect":"Allow"},
		{"resource":"eRx:Patient","action":["eRx:SyncPatient","eRx:GetMedicationHistory"],"effect":"Allow"}]}`
	ts.mustDo(t, 200, "POST", "/v1/iam/role", ts.token, `{"name":"provider","accessPolicy":`+policy+`}`)
	ts.mustDo(t, 200, "POST", "/v1/m2m", ts.token, `{"name":"zambdas","accessPolicy":`+policy+`}`)
	out := ts.mustDo(t, 400, "POST", "/v1/iam/role", ts.token,
		`{"name":"typo","accessPolicy":{"rule":[{"resource":"FHIR:Patient:*","action":"FHIR:Teleport","effect":"Allow"}]}}`)
	if msg, _ := out["message"].(string); !strings.Contains(msg, `unknown action "FHIR:Teleport"`) {
		t.Errorf("typo: %v", out)
	}
	out = ts.mustDo(t, 200, "POST", "/v1/iam/explain", ts.token,
		`{"action":"Lab:SubmitOrder","resource":"Lab:Order:*","principal":{"accessPolicy":`+policy+`}}`)
	warnings, _ := out["warnings"].([]any)
	if out["allowed"] != true || len(warnings) != 1 || warnings[0] !=
		"IAM action Lab:SubmitOrder is not in Oystehr's published action table (seed 002); it comes from @oystehr/sdk 4.2.6 lab.orderSubmit" {
		t.Errorf("explain: %v", out)
	}
}
