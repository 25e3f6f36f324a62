package store_test

import (
	"context"
	"testing"

	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// On both databases, migration 0017 keeps every version of a resource
// written before it: the current one moves out of fhir_history, keeping the
// interaction that wrote it, and history still lists both.
func TestUpgradeHistorySuperseded(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.DSN(t)
			old, err := store.OpenUpTo(ctx, dsn, "0016_z3_blob_keys")
			if err != nil {
				t.Fatal(err)
			}
			deleted := "0"
			if b.Name == "postgres" {
				deleted = "FALSE"
			}
			for _, q := range []string{
				`INSERT INTO fhir_resources (project_id, resource_type, id, version_id, last_updated, deleted, content) VALUES ('p1', 'Patient', 'a', 2, 2000, ` + deleted + `, '{"v":2}')`,
				`INSERT INTO fhir_history (project_id, resource_type, id, version_id, last_updated, deleted, method, content) VALUES ('p1', 'Patient', 'a', 1, 1000, ` + deleted + `, 'POST', '{"v":1}')`,
				`INSERT INTO fhir_history (project_id, resource_type, id, version_id, last_updated, deleted, method, content) VALUES ('p1', 'Patient', 'a', 2, 2000, ` + deleted + `, 'PATCH', '{"v":2}')`,
			} {
				if err := old.Exec(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			if err := old.Close(); err != nil {
				t.Fatal(err)
			}
			s, err := store.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			hist, total, err := s.History(ctx, "p1", store.HistoryFilter{Count: 10})
			if err != nil || total != 2 || len(hist) != 2 {
				t.Fatalf("history after the upgrade: %d %+v, %v", total, hist, err)
			}
			if hist[0].VersionID != 2 || hist[0].Method != "PATCH" || string(hist[0].Content) != `{"v":2}` ||
				hist[1].VersionID != 1 || hist[1].Method != "POST" || string(hist[1].Content) != `{"v":1}` {
				t.Fatalf("history after the upgrade: %+v", hist)
			}
			for v, want := range map[int64]string{1: `{"v":1}`, 2: `{"v":2}`} {
				r, err := s.GetVersion(ctx, "p1", "Patient", "a", v)
				if err != nil || string(r.Content) != want {
					t.Fatalf("version %d after the upgrade: %+v, %v", v, r, err)
				}
			}
		})
	}
}
