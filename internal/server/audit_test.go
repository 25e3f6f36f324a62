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
