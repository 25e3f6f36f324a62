package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// batchIndex are a create's index rows, one or more in every index table,
// with values that name the resource (so a row under the wrong resource
// shows).
func batchIndex(id string) []store.IndexRow {
	return []store.IndexRow{
		{Param: "code", Kind: "token", System: "http://loinc.org", Code: "8867-4"},
		{Param: "identifier", Kind: "token", System: "urn:x", Code: id},
		{Param: "name", Kind: "string", Value: "n-" + id, Exact: "N-" + id},
		{Param: "subject", Kind: "reference", RefType: "Patient", RefID: "p-" + id},
		{Param: "date", Kind: "date", Low: t0.UnixMilli(), High: t0.UnixMilli() + 999},
		{Param: "value-quantity", Kind: "quantity", Number: 72, System: "http://unitsofmeasure.org", Code: "/min"},
		{Param: "url", Kind: "uri", URI: "urn:" + id},
		{Param: "code-value-quantity", Kind: "composite", Components: []store.IndexRow{
			{Kind: "token", System: "http://loinc.org", Code: id}, {Kind: "quantity", Number: 72}}},
		{Param: "code-value-quantity", Kind: "composite", Components: []store.IndexRow{
			{Kind: "token", System: "http://loinc.org", Code: id}, {Kind: "quantity", Number: 73}}},
	}
}

func batchResource(id string) store.Resource {
	return store.Resource{ProjectID: "p", Type: "Observation", ID: id, VersionID: 1, LastUpdated: t0, Method: "POST",
		Content: []byte(`{"resourceType":"Observation","id":"` + id + `"}`)}
}

func batchAudit(id string) *store.PendingAudit {
	return &store.PendingAudit{Event: store.AuditEvent{ProjectID: "p", At: t0, RequestID: "req-" + id,
		PrincipalKind: "developer", PrincipalID: "d1", Action: "FHIR:Create", Resource: "FHIR:Observation", Outcome: "allowed"}}
}

// checkStoredOnce asserts that each of ids is stored once, with its outbox
// event, its audit row and its own index rows, and that the project holds
// want resources, outbox events and audit rows in all.
func checkStoredOnce(t *testing.T, s *store.Store, ids []string, want int) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{
		`SELECT count(*) FROM fhir_resources WHERE project_id = 'p'`,
		`SELECT count(*) FROM outbox WHERE project_id = 'p' AND interaction = 'create' AND version_id = 1`,
		`SELECT count(*) FROM audit_events WHERE project_id = 'p'`,
		`SELECT count(DISTINCT request_id) FROM audit_events WHERE project_id = 'p'`,
	} {
		if n, err := s.QueryInt(ctx, q); err != nil || n != int64(want) {
			t.Fatalf("%s: %d, %v; want %d", q, n, err, want)
		}
	}
	perTable := map[string]int64{"fhir_idx_token": 2, "fhir_idx_string": 1, "fhir_idx_reference": 1, "fhir_idx_date": 1,
		"fhir_idx_number": 1, "fhir_idx_uri": 1, "fhir_idx_composite": 2}
	for _, id := range ids {
		if n, err := s.QueryInt(ctx, `SELECT count(*) FROM fhir_resources WHERE project_id = 'p' AND id = ? AND content LIKE ?`, id, `%"`+id+`"%`); err != nil || n != 1 {
			t.Fatalf("%s stored %d times (%v), want once", id, n, err)
		}
		if n, err := s.QueryInt(ctx, `SELECT count(*) FROM outbox WHERE project_id = 'p' AND id = ?`, id); err != nil || n != 1 {
			t.Fatalf("%s: %d outbox events (%v), want 1", id, n, err)
		}
		if n, err := s.QueryInt(ctx, `SELECT count(*) FROM audit_events WHERE project_id = 'p' AND request_id = ?`, "req-"+id); err != nil || n != 1 {
			t.Fatalf("%s: %d audit rows (%v), want 1", id, n, err)
		}
		for table, rows := range perTable {
			if n, err := s.QueryInt(ctx, `SELECT count(*) FROM `+table+` WHERE project_id = 'p' AND resource_type = 'Observation' AND id = ?`, id); err != nil || n != rows {
				t.Fatalf("%s: %d rows in %s (%v), want %d", id, n, table, err, rows)
			}
		}
		// The rows whose values name a resource sit under that resource.
		for _, c := range []struct {
			q    string
			want int64
		}{
			{`SELECT count(*) FROM fhir_idx_token WHERE id = ? AND param = 'identifier' AND code = id`, 1},
			{`SELECT count(*) FROM fhir_idx_string WHERE id = ? AND value = 'n-' || id AND exact = 'N-' || id`, 1},
			{`SELECT count(*) FROM fhir_idx_reference WHERE id = ? AND ref_id = 'p-' || id`, 1},
			{`SELECT count(*) FROM fhir_idx_uri WHERE id = ? AND uri = 'urn:' || id`, 1},
			{`SELECT count(*) FROM fhir_idx_composite WHERE id = ? AND c1 = id AND seq IN (1, 2)`, 2},
		} {
			if n, err := s.QueryInt(ctx, c.q, id); err != nil || n != c.want {
				t.Fatalf("%s: %s: %d, %v; want %d", id, c.q, n, err, c.want)
			}
		}
	}
}

// TestCreateResourceConcurrent: many creates at once (on PostgreSQL they
// share statements and commits) are each stored exactly once with their
// index rows, outbox event and audit row, and one whose id is taken fails
// alone with ErrConflict.
func TestCreateResourceConcurrent(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := storetest.Open(t, b)
			mkProject(t, s, "p")
			ctx := context.Background()
			if err := s.CreateResource(store.WithAudit(ctx, batchAudit("taken")), batchResource("taken"), batchIndex("taken")); err != nil {
				t.Fatal(err)
			}
			const n = 200
			ids := make([]string, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				ids[i] = fmt.Sprintf("o%03d", i)
				if i == n/2 {
					ids[i] = "taken"
				}
				wg.Go(func() {
					// A request audit of its own: the taken id's second
					// request has "req-taken-2".
					a := batchAudit(ids[i])
					if ids[i] == "taken" {
						a.Event.RequestID = "req-taken-2"
					}
					errs[i] = s.CreateResource(store.WithAudit(ctx, a), batchResource(ids[i]), batchIndex(ids[i]))
				})
			}
			wg.Wait()
			var stored []string
			for i, err := range errs {
				if ids[i] == "taken" {
					if !errors.Is(err, store.ErrConflict) {
						t.Fatalf("create of a taken id: %v, want ErrConflict", err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("create %s: %v", ids[i], err)
				}
				stored = append(stored, ids[i])
			}
			// The refused create wrote nothing, not even its audit row (the
			// server audits a failed request on its own).
			checkStoredOnce(t, s, append(stored, "taken"), n)
			if b.Name == "postgres" {
				// How many commits the creates shared: informative only, as
				// it depends on the scheduling.
				txs, err := s.QueryInt(ctx, `SELECT count(DISTINCT xmin::text) FROM fhir_resources WHERE project_id = 'p'`)
				t.Logf("%d creates in %d transactions (%v)", n, txs, err)
			}
		})
	}
}

// TestFlushCreates: a batch of creates on PostgreSQL is one statement in
// one transaction; when one of them is refused (its id is taken), the
// others are written each on its own and only that one fails.
func TestFlushCreates(t *testing.T) {
	for _, b := range storetest.Backends() {
		if b.Name != "postgres" {
			continue // SQLite shares commits in its writer (group commit) instead
		}
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			for _, tc := range []struct {
				name    string
				ids     []string
				taken   string // created before the batch
				unaudit int    // the create at this place has no audit event
				wantTxs int64  // transactions the batch's rows were written in
			}{
				{name: "all new", ids: []string{"a1", "a2", "a3", "a4", "a5"}, unaudit: 2, wantTxs: 1},
				{name: "one taken", ids: []string{"b1", "b2", "taken", "b4", "b5"}, taken: "taken", unaudit: -1, wantTxs: 4},
			} {
				t.Run(tc.name, func(t *testing.T) {
					s := storetest.Open(t, b)
					mkProject(t, s, "p")
					if tc.taken != "" {
						if err := s.CreateResource(store.WithAudit(ctx, batchAudit(tc.taken)), batchResource(tc.taken), batchIndex(tc.taken)); err != nil {
							t.Fatal(err)
						}
					}
					var rs []store.Resource
					var index [][]store.IndexRow
					var audits []*store.PendingAudit
					for i, id := range tc.ids {
						rs, index = append(rs, batchResource(id)), append(index, batchIndex(id))
						a := batchAudit(id)
						if id == tc.taken {
							a.Event.RequestID = "req-taken-2"
						}
						if i == tc.unaudit {
							a = nil
							if err := s.InsertAudit(ctx, batchAudit(id).Event); err != nil { // as the server would
								t.Fatal(err)
							}
						}
						audits = append(audits, a)
					}
					errs := s.FlushCreates(ctx, rs, index, audits)
					var fresh []string
					for i, err := range errs {
						if tc.ids[i] == tc.taken {
							if !errors.Is(err, store.ErrConflict) || audits[i].Written() {
								t.Fatalf("create of the taken id: %v (audit written %v), want ErrConflict and no audit row", err, audits[i].Written())
							}
							continue
						}
						if err != nil {
							t.Fatalf("create %s: %v", tc.ids[i], err)
						}
						if audits[i] != nil && !audits[i].Written() {
							t.Errorf("%s: audit event not marked written", tc.ids[i])
						}
						fresh = append(fresh, tc.ids[i])
					}
					all := fresh
					if tc.taken != "" {
						all = append(all, tc.taken)
					}
					checkStoredOnce(t, s, all, len(all))
					txs, err := s.QueryInt(ctx, `SELECT count(DISTINCT xmin::text) FROM fhir_resources WHERE project_id = 'p' AND id <> 'taken'`)
					if err != nil || txs != tc.wantTxs {
						t.Fatalf("the batch's resources were written in %d transactions (%v), want %d", txs, err, tc.wantTxs)
					}
				})
			}
		})
	}
}

// TestFlushCreatesTenants: a batch may hold several projects' creates,
// even of one id; each row lands under its own project.
func TestFlushCreatesTenants(t *testing.T) {
	for _, b := range storetest.Backends() {
		if b.Name != "postgres" {
			continue // SQLite shares commits in its writer (group commit) instead
		}
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s := storetest.Open(t, b)
			mkProject(t, s, "p")
			mkProject(t, s, "q")
			inQ := func(r store.Resource) store.Resource {
				r.ProjectID = "q"
				r.Content = []byte(`{"resourceType":"Observation","id":"` + r.ID + `","note":"q"}`)
				return r
			}
			qIndex := batchIndex("x1")
			qIndex[1].Code = "q-x1"
			qAudit := batchAudit("x1")
			qAudit.Event.ProjectID = "q"
			rs := []store.Resource{batchResource("x1"), inQ(batchResource("x1")), batchResource("x2")}
			errs := s.FlushCreates(ctx, rs, [][]store.IndexRow{batchIndex("x1"), qIndex, batchIndex("x2")},
				[]*store.PendingAudit{batchAudit("x1"), qAudit, batchAudit("x2")})
			for i, err := range errs {
				if err != nil {
					t.Fatalf("create %d: %v", i, err)
				}
			}
			checkStoredOnce(t, s, []string{"x2"}, 2)
			for _, c := range []struct {
				q    string
				want int64
			}{
				{`SELECT count(*) FROM fhir_resources WHERE project_id = 'q' AND id = 'x1' AND content LIKE '%"q"%'`, 1},
				{`SELECT count(*) FROM fhir_resources WHERE project_id = 'p' AND id = 'x1' AND content NOT LIKE '%"q"%'`, 1},
				{`SELECT count(*) FROM fhir_idx_token WHERE project_id = 'q' AND param = 'identifier' AND code = 'q-x1'`, 1},
				{`SELECT count(*) FROM fhir_idx_token WHERE project_id = 'p' AND param = 'identifier' AND code = 'x1'`, 1},
				{`SELECT count(*) FROM fhir_idx_token WHERE code = 'q-x1' AND project_id <> 'q'`, 0},
				{`SELECT count(*) FROM outbox WHERE project_id = 'q'`, 1},
				{`SELECT count(*) FROM audit_events WHERE project_id = 'q' AND request_id = 'req-x1'`, 1},
				{`SELECT count(DISTINCT xmin::text) FROM fhir_resources WHERE project_id IN ('p', 'q')`, 1},
			} {
				if n, err := s.QueryInt(ctx, c.q); err != nil || n != c.want {
					t.Errorf("%s: %d, %v; want %d", c.q, n, err, c.want)
				}
			}
		})
	}
}
