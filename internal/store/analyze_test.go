package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// AnalyzeStale refreshes a table's statistics once its rows changed by
// more than it had at its last ANALYZE (at least 500): not at a fifth, which made
// PostgreSQL re-analyze the index tables every few seconds under a steady
// write load.
func TestAnalyzeStaleWaitsForTheTableToDouble(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, storetest.Backend{Name: "postgres", DSN: storetest.PostgresDSN})
	stat := func(col string) int64 {
		t.Helper()
		n, err := s.QueryInt(ctx, `SELECT `+col+` FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = 'outbox'`)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	add := func(n int) {
		t.Helper()
		if err := s.Exec(ctx, `INSERT INTO outbox (project_id, resource_type, id, version_id, interaction, created_at)
			SELECT 'p', 'Patient', 'x' || g, 1, 'create', 0 FROM generate_series(1, ?) g`, n); err != nil {
			t.Fatal(err)
		}
	}
	// The counters reach pg_stat_user_tables a moment after the
	// transaction (each backend reports at most once a second).
	waitMods := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for stat("n_mod_since_analyze") < want {
			if time.Now().After(deadline) {
				t.Fatalf("n_mod_since_analyze still %d, want %d", stat("n_mod_since_analyze"), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	analyze := func() {
		t.Helper()
		if err := s.AnalyzeStale(ctx); err != nil {
			t.Fatal(err)
		}
	}

	add(400)
	waitMods(400)
	analyze()
	if n := stat("analyze_count"); n != 0 {
		t.Fatalf("400 rows (under 500): analyzed %d times", n)
	}
	add(2600)
	waitMods(3000)
	analyze()
	if n := stat("analyze_count"); n != 1 {
		t.Fatalf("3,000 new rows: analyzed %d times, want 1", n)
	}
	add(2000) // two thirds of the table: a fifth used to be enough
	waitMods(2000)
	analyze()
	if n := stat("analyze_count"); n != 1 {
		t.Fatalf("table grown by two thirds: analyzed %d times, want still 1", n)
	}
	add(1500) // 3,500 changes since the table had 3,000 rows
	waitMods(3500)
	analyze()
	if n := stat("analyze_count"); n != 2 {
		t.Fatalf("table more than doubled: analyzed %d times, want 2", n)
	}
}
