package store

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// A database written before migration 0014 (current versions in a rowid
// table), 0015 (index rows in rowid tables) and 0017 (every version in
// fhir_history) keeps its resources, versions and index when it is
// upgraded; a row held twice is kept once.
func TestUpgradeClustersResources(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ward.db")
	old, err := openSQLite(ctx, path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := old.migrateUpTo(ctx, "0013_index_rows"); err != nil {
		t.Fatal(err)
	}
	// The rows the code of that time wrote for a create and an update.
	put := func(v int64, method, family string) {
		t.Helper()
		content := `{"resourceType":"Patient","id":"a","name":[{"family":"` + family + `"}]}`
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO fhir_resources (` + resourceCols + `) VALUES ('p1', 'Patient', 'a', ?, ?, 0, ?)
				ON CONFLICT (project_id, resource_type, id) DO UPDATE SET version_id = excluded.version_id, last_updated = excluded.last_updated, content = excluded.content`,
				[]any{v, 1000 * v, content}},
			{`INSERT INTO fhir_history (` + historyCols + `) VALUES ('p1', 'Patient', 'a', ?, ?, 0, ?, ?)`, []any{v, 1000 * v, method, content}},
			{`DELETE FROM fhir_idx_string WHERE id = 'a'`, nil},
			{`INSERT INTO fhir_idx_string (project_id, resource_type, id, param, value, exact) VALUES ('p1', 'Patient', 'a', 'name', ?, ?), ('p1', 'Patient', 'a', 'name', ?, ?)`,
				[]any{strings.ToLower(family), family, strings.ToLower(family), family}},
		} {
			if _, err := old.write.ExecContext(ctx, q.sql, q.args...); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(1, "POST", "Old")
	put(2, "PUT", "New")
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var schema string
	if err := s.read.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE name = 'fhir_resources'`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(schema, "WITHOUT ROWID") {
		t.Fatalf("fhir_resources after the upgrade: %s", schema)
	}
	for _, table := range indexTables {
		if err := s.read.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE name = ?`, table).Scan(&schema); err != nil || !strings.Contains(schema, "WITHOUT ROWID") {
			t.Fatalf("%s after the upgrade: %s, %v", table, schema, err)
		}
	}
	cur, err := s.GetResource(ctx, "p1", "Patient", "a")
	if err != nil || cur.VersionID != 2 || !strings.Contains(string(cur.Content), "New") {
		t.Fatalf("current version after the upgrade: %+v, %v", cur, err)
	}
	v1, err := s.GetVersion(ctx, "p1", "Patient", "a", 1)
	if err != nil || !strings.Contains(string(v1.Content), "Old") {
		t.Fatalf("version 1 after the upgrade: %+v, %v", v1, err)
	}
	v2, err := s.GetVersion(ctx, "p1", "Patient", "a", 2)
	if err != nil || !strings.Contains(string(v2.Content), "New") {
		t.Fatalf("version 2 after the upgrade: %+v, %v", v2, err)
	}
	var kept int
	if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM fhir_history`).Scan(&kept); err != nil || kept != 1 {
		t.Fatalf("history rows after the upgrade: %d, %v (want the superseded version only)", kept, err)
	}
	hist, total, err := s.History(ctx, "p1", HistoryFilter{Type: "Patient", ID: "a", Count: 10})
	if err != nil || total != 2 || len(hist) != 2 || hist[0].VersionID != 2 || hist[0].Method != "PUT" || hist[1].Method != "POST" {
		t.Fatalf("history after the upgrade: %d %+v, %v", total, hist, err)
	}
	var n int
	if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM fhir_resources r JOIN fhir_idx_string i ON i.project_id = r.project_id AND i.resource_type = r.resource_type AND i.id = r.id WHERE i.param = 'name' AND i.value = 'new'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("indexed current version after the upgrade: %d, %v", n, err)
	}
}
