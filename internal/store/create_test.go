package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestCreateResource: a create writes the resource, its outbox event and
// the request's audit event together (on PostgreSQL as one statement
// outside a transaction), and a second create of the id writes nothing.
func TestCreateResource(t *testing.T) {
	index := []store.IndexRow{
		{Param: "code", Kind: "token", System: "http://loinc.org", Code: "8867-4"},
		{Param: "subject", Kind: "reference", RefType: "Patient", RefID: "p1"},
		{Param: "date", Kind: "date", Low: t0.UnixMilli(), High: t0.UnixMilli() + 999},
		{Param: "value-quantity", Kind: "quantity", Number: 72, System: "http://unitsofmeasure.org", Code: "/min"},
	}
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			for _, tc := range []struct {
				name    string
				inTx    bool // inside a caller's transaction (a bundle)
				audited bool
			}{
				{"alone, audited", false, true},
				{"alone, no audit", false, false},
				{"in a transaction, audited", true, true},
			} {
				t.Run(tc.name, func(t *testing.T) {
					s := storetest.Open(t, b)
					mkProject(t, s, "p")
					ctx := context.Background()
					var pending *store.PendingAudit
					if tc.audited {
						pending = &store.PendingAudit{Event: store.AuditEvent{ProjectID: "p", At: t0, RequestID: "req-1",
							PrincipalKind: "developer", PrincipalID: "d1", Action: "FHIR:Create", Resource: "FHIR:Observation", Outcome: "allowed"}}
						ctx = store.WithAudit(ctx, pending)
					}
					r := store.Resource{ProjectID: "p", Type: "Observation", ID: "o1", VersionID: 1, LastUpdated: t0, Method: "POST",
						Content: []byte(`{"resourceType":"Observation","id":"o1"}`)}
					create := func(r store.Resource) error {
						if !tc.inTx {
							return s.CreateResource(ctx, r, index)
						}
						return s.WithTx(ctx, func(tx *store.Tx) error { return tx.CreateResource(ctx, r, index) })
					}
					if err := create(r); err != nil {
						t.Fatal(err)
					}
					got, err := s.GetResource(ctx, "p", "Observation", "o1")
					if err != nil || got.VersionID != 1 || string(got.Content) != string(r.Content) || !got.LastUpdated.Equal(t0) {
						t.Fatalf("stored %+v, %v", got, err)
					}
					if err := create(r); !errors.Is(err, store.ErrConflict) {
						t.Fatalf("second create of the id: %v, want ErrConflict", err)
					}
					events, err := s.OutboxAfter(ctx, 0, 10)
					if err != nil || len(events) != 1 || events[0].ID != "o1" || events[0].Interaction != "create" || events[0].VersionID != 1 {
						t.Fatalf("outbox %+v, %v: want one create event", events, err)
					}
					audit, err := s.ListAudit(ctx, "p", 10)
					if err != nil {
						t.Fatal(err)
					}
					want := 0
					if tc.audited {
						want = 1
						if !pending.Written() {
							t.Error("the pending audit event is not marked written")
						}
					}
					if len(audit) != want {
						t.Fatalf("audit rows %+v, want %d", audit, want)
					}
					if want == 1 && (audit[0].RequestID != "req-1" || audit[0].Action != "FHIR:Create" || !audit[0].At.Equal(t0)) {
						t.Errorf("audit row %+v", audit[0])
					}
				})
			}
		})
	}
}
