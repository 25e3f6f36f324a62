package server

import (
	"context"
	"testing"
)

// TestFHIRWritesAudited: a FHIR write's audit row is written in the write's
// own transaction; a write that runs no transaction (a conditional create
// that finds its match) is audited on its own; a refused write is audited
// as denied and a failed one not as allowed.
func TestFHIRWritesAudited(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	count := func(action, outcome string) int {
		events, err := ts.st.ListAudit(ctx, ts.admin.ProjectID, 1000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range events {
			if e.Action == action && e.Outcome == outcome {
				n++
			}
		}
		return n
	}
	patient := `{"resourceType":"Patient","identifier":[{"system":"urn:x","value":"a1"}]}`
	ts.mustDo(t, 201, "POST", "/fhir/Patient", ts.token, patient)
	if n := count("FHIR:POST", "allowed"); n != 1 {
		t.Fatalf("after a create: %d allowed FHIR:POST rows, want 1", n)
	}
	// Conditional create that matches: no write, still audited once.
	st, _ := ts.doWith(t, "POST", "/fhir/Patient", ts.token, patient, map[string]string{"If-None-Exist": "identifier=urn:x|a1"})
	if st != 200 {
		t.Fatalf("conditional create: %d", st)
	}
	if n := count("FHIR:POST", "allowed"); n != 2 {
		t.Fatalf("after a matching conditional create: %d allowed rows, want 2", n)
	}
	// An invalid resource: no allowed row.
	if st, _ := ts.do(t, "POST", "/fhir/Patient", ts.token, `{"resourceType":"Patient","bogus":1}`); st < 400 {
		t.Fatalf("invalid create: %d", st)
	}
	if n := count("FHIR:POST", "allowed"); n != 2 {
		t.Fatalf("after a failed create: %d allowed rows, want 2", n)
	}
}

// TestProjectAPIWritesAudited: a Project API write is audited once, by
// its own transaction when it runs one (else on its own after it); a
// failed write has no allowed row.
func TestProjectAPIWritesAudited(t *testing.T) {
	ts := newTestServer(t)
	count := func(action string) int {
		events, err := ts.st.ListAudit(context.Background(), ts.admin.ProjectID, 1000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range events {
			if e.Action == action && e.Outcome == "allowed" {
				n++
			}
		}
		return n
	}
	role := ts.mustDo(t, 200, "POST", "/v1/iam/role", ts.token, `{"name":"audited","accessPolicy":{"rule":[{"action":["FHIR:Read"],"effect":"Allow","resource":["*"]}]}}`)
	ts.mustDo(t, 200, "PATCH", "/v1/iam/role/"+role["id"].(string), ts.token, `{"description":"changed"}`)
	ts.mustDo(t, 204, "DELETE", "/v1/iam/role/"+role["id"].(string), ts.token, "")
	if st, _ := ts.do(t, "POST", "/v1/iam/role", ts.token, `{"name":""}`); st < 400 {
		t.Fatalf("invalid role: %d", st)
	}
	for action, want := range map[string]int{"IAM:CreateRole": 1, "IAM:UpdateRole": 1, "IAM:DeleteRole": 1} {
		if n := count(action); n != want {
			t.Errorf("%s: %d allowed rows, want %d", action, n, want)
		}
	}
}
