package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A database written before migration 0014 (current versions in a rowid
// table) and 0015 (index rows in rowid tables) keeps its resources,
// versions and index when it is upgraded; a row held twice is kept once.
func TestUpgradeClustersResources(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ward.db")
	old, err := openSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.migrateUpTo(ctx, "0013_index_rows"); err != nil {
		t.Fatal(err)
	}
	put := func(v int64, family string) {
		t.Helper()
		err := old.WithTx(ctx, func(tx *Tx) error {
			return tx.PutResource(ctx, Resource{ProjectID: "p1", Type: "Patient", ID: "a", VersionID: v,
				LastUpdated: time.UnixMilli(1000 * v), Method: "PUT",
				Content: []byte(`{"resourceType":"Patient","id":"a","name":[{"family":"` + family + `"}]}`)},
				[]IndexRow{{Param: "name", Kind: "string", Value: strings.ToLower(family), Exact: family},
					{Param: "name", Kind: "string", Value: strings.ToLower(family), Exact: family}})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	put(1, "Old")
	put(2, "New")
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path)
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
	var n int
	if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM fhir_resources r JOIN fhir_idx_string i ON i.project_id = r.project_id AND i.resource_type = r.resource_type AND i.id = r.id WHERE i.param = 'name' AND i.value = 'new'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("indexed current version after the upgrade: %d, %v", n, err)
	}
}
