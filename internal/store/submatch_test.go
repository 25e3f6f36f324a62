package store_test

import (
	"context"
	"database/sql"
	"net/url"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// putPatient writes version v of Patient id with one family name, indexed
// as the FHIR service would index it.
func putPatient(t *testing.T, s *store.Store, id string, v int64, family string) {
	t.Helper()
	method := "PUT"
	if v == 1 {
		method = "POST"
	}
	r := store.Resource{ProjectID: "p1", Type: "Patient", ID: id, VersionID: v, LastUpdated: t0.Add(time.Duration(v) * time.Second),
		Method: method, Content: []byte(`{"resourceType":"Patient","id":"` + id + `","name":[{"family":"` + family + `"}]}`)}
	if err := s.WithTx(t.Context(), func(tx *store.Tx) error { return tx.PutResource(t.Context(), r, familyIndex(family)) }); err != nil {
		t.Fatal(err)
	}
}

func familyIndex(family string) []store.IndexRow {
	return []store.IndexRow{{Param: "family", Kind: "string", Value: search.NormalizeString(family), Exact: family}}
}

func familyQuery(t *testing.T, family string) *search.Query {
	t.Helper()
	q, err := search.ParseQuery("Patient", url.Values{"family": {family}}, false)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestMatchVersions: MatchCurrent judges current versions, MatchPast past
// ones on their own index rows, and leaves the current ones as they were.
func TestMatchVersions(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := t.Context()
			s := storetest.Open(t, b)
			mkProject(t, s, "p1")
			putPatient(t, s, "a", 1, "Lag")
			putPatient(t, s, "a", 2, "Other")
			putPatient(t, s, "b", 1, "Lag")
			queries := []*search.Query{familyQuery(t, "Lag"), familyQuery(t, "Other")}
			current := func() map[string]store.Verdict {
				t.Helper()
				var out map[string]store.Verdict
				if err := s.WithTx(ctx, func(tx *store.Tx) (err error) {
					out, err = tx.MatchCurrent(ctx, "p1", "Patient", queries, []string{"a", "b", "nope"}, t0)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				return out
			}
			got := current()
			if len(got) != 2 || got["a"].VersionID != 2 || got["a"].Match[0] || !got["a"].Match[1] || got["b"].VersionID != 1 || !got["b"].Match[0] {
				t.Fatalf("current verdicts %+v", got)
			}
			var past map[string][]bool
			if err := s.WithTx(ctx, func(tx *store.Tx) error {
				rs, err := tx.PastVersions(ctx, "p1", "Patient", []store.VersionKey{{ID: "a", VersionID: 1}, {ID: "a", VersionID: 2}})
				if err != nil {
					return err
				}
				if len(rs) != 1 || rs[0].VersionID != 1 {
					t.Errorf("past versions %+v, want version 1 only (2 is current)", rs)
				}
				past, err = tx.MatchPast(ctx, "p1", "Patient", queries,
					[]store.PastVersion{{ID: "a", VersionID: 1, LastUpdated: t0, Index: familyIndex("Lag")}}, t0)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if !past["a"][0] || past["a"][1] {
				t.Fatalf("version 1 of a judged %v, want [true false]", past["a"])
			}
			if after := current(); after["a"].VersionID != 2 || after["a"].Match[0] || !after["a"].Match[1] {
				t.Fatalf("after MatchPast the current version reads %+v", after["a"])
			}
		})
	}
}

// TestMatchPastWaitsForWriter: on PostgreSQL, MatchPast on several
// resources, one of them locked by a writer, neither fails nor deadlocks:
// it judges them one at a time, waiting for the writer's commit.
func TestMatchPastWaitsForWriter(t *testing.T) {
	b := storetest.Backends()[1]
	dsn := b.DSN(t)
	ctx := t.Context()
	s, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mkProject(t, s, "p1")
	for _, id := range []string{"a", "b"} {
		putPatient(t, s, id, 1, "Lag")
		putPatient(t, s, id, 2, "Other")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	writer, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Rollback()
	if _, err := writer.ExecContext(ctx, `SELECT 1 FROM fhir_resources WHERE id = 'b' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	var writerPID int
	if err := writer.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&writerPID); err != nil {
		t.Fatal(err)
	}
	type result struct {
		got map[string][]bool
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.err = s.WithTx(context.Background(), func(tx *store.Tx) (err error) {
			r.got, err = tx.MatchPast(context.Background(), "p1", "Patient", []*search.Query{familyQuery(t, "Lag")}, []store.PastVersion{
				{ID: "a", VersionID: 1, LastUpdated: t0, Index: familyIndex("Lag")},
				{ID: "b", VersionID: 1, LastUpdated: t0, Index: familyIndex("Lag")},
			}, t0)
			return err
		})
		done <- r
	}()
	// Commit once MatchPast waits for the lock (the state it must reach
	// without failing), or at once if it is already done.
	deadline := time.Now().Add(30 * time.Second)
	waiting := 0
	for waiting == 0 && len(done) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("MatchPast neither finished nor waited for the lock")
		}
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, writerPID).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("MatchPast waited for the writer: %v", waiting > 0)
	if err := writer.Commit(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !r.got["a"][0] || !r.got["b"][0] {
		t.Fatalf("verdicts %v, want both versions 1 matched", r.got)
	}
}
