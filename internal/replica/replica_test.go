package replica_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/wardhealth/ward/internal/replica"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// recorder is an Apply that notes what it was told.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) note(s string) {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *recorder) apply() replica.Apply {
	return replica.Apply{
		Revoked: func(jti string, _ time.Time) { r.note("revoked " + jti) },
		Project: func(id string) { r.note("project " + id) },
		Keys:    func(context.Context) error { r.note("keys"); return nil },
		All:     func(context.Context) error { r.note("all"); return nil },
	}
}

// waitFor polls until cond holds, failing after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, bounded by the deadline
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// twoReplicas opens two stores on one fresh PostgreSQL database and a
// Watcher on the second, as a replica that started before any change.
func twoReplicas(t *testing.T) (dsn string, st1, st2 *store.Store, w *replica.Watcher, rec *recorder) {
	t.Helper()
	ctx := context.Background()
	dsn = storetest.PostgresDSN(t)
	var err error
	if st1, err = store.Open(ctx, dsn, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st1.Close() })
	if st2, err = store.Open(ctx, dsn, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st2.Close() })
	v, err := st2.ChangeVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec = &recorder{}
	return dsn, st1, st2, replica.New(st2, v, rec.apply(), replica.Config{}, quiet), rec
}

// Without any announcement (no listener runs), the next Fresh applies
// every change committed before it, in commit order, keys reloaded once.
func TestFreshWithoutListener(t *testing.T) {
	ctx := context.Background()
	_, st1, _, w, rec := twoReplicas(t)
	for _, c := range []store.Change{
		{Kind: store.ChangeRevocation, Subject: "jti-1", ExpiresAt: time.Now().Add(time.Hour)},
		{Kind: store.ChangeProject, ProjectID: "p1"},
		{Kind: store.ChangeKeys},
		{Kind: store.ChangeKeys},
		{Kind: store.ChangeProject, ProjectID: "p2"},
	} {
		if _, err := st1.RecordChange(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if got := rec.seen(); len(got) != 0 {
		t.Fatalf("applied before Fresh: %v", got)
	}
	if err := w.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"revoked jti-1", "project p1", "project p2", "keys"}
	if got := rec.seen(); !slices.Equal(got, want) {
		t.Fatalf("applied %v, want %v", got, want)
	}
	if v, _ := st1.ChangeVersion(ctx); w.Applied() != v || v != 5 {
		t.Fatalf("applied version %d, database at %d (want 5)", w.Applied(), v)
	}
	if err := w.Fresh(ctx); err != nil || len(rec.seen()) != len(want) {
		t.Fatalf("a second Fresh applied again: %v %v", rec.seen(), err)
	}
}

// The listener applies announced changes with no request asking; when
// its connection is cut it reconnects and reloads everything.
func TestListener(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dsn, st1, _, w, rec := twoReplicas(t)
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	// Caught up by Run's first read or announced: either way applied.
	if _, err := st1.RecordChange(ctx, store.Change{Kind: store.ChangeProject, ProjectID: "p1"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first change", func() bool { return w.Applied() == 1 })
	// Run now listens: only the announcement can bring this one.
	if _, err := st1.RecordChange(ctx, store.Change{Kind: store.ChangeRevocation, Subject: "jti-9"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the announced change", func() bool { return slices.Contains(rec.seen(), "revoked jti-9") })
	if w.Reads() != 0 {
		t.Fatalf("Fresh made %d reads; none was called", w.Reads())
	}

	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// The listener holds the replica's lease on its own connection.
	waitFor(t, "the replica's lease", w.Leased)
	res, err := admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM replica_leases`)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("terminated %d listeners, want 1", n)
	}
	waitFor(t, "a reload after the lost connection", func() bool { return slices.Contains(rec.seen(), "all") })
	if _, err := st1.RecordChange(ctx, store.Change{Kind: store.ChangeProject, ProjectID: "p3"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a change announced after reconnecting", func() bool { return slices.Contains(rec.seen(), "project p3") })
}

// A replica further behind than the log reaches reloads everything.
func TestTrimmedLogReloadsAll(t *testing.T) {
	ctx := context.Background()
	dsn, st1, _, w, rec := twoReplicas(t)
	for i := range 3 {
		if _, err := st1.RecordChange(ctx, store.Change{Kind: store.ChangeProject, ProjectID: fmt.Sprint("p", i)}); err != nil {
			t.Fatal(err)
		}
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `DELETE FROM changes WHERE version <= 2`); err != nil {
		t.Fatal(err)
	}
	if err := w.Fresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rec.seen(); !slices.Equal(got, []string{"all"}) || w.Applied() != 3 {
		t.Fatalf("applied %v up to %d, want a full reload up to 3", got, w.Applied())
	}
}

// Concurrent requests share version reads, and each still sees every
// change committed before it asked.
func TestFreshConcurrent(t *testing.T) {
	ctx := context.Background()
	_, st1, _, w, _ := twoReplicas(t)
	const workers, rounds = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				v, err := st1.RecordChange(ctx, store.Change{Kind: store.ChangeProject, ProjectID: "p"})
				if err == nil {
					err = w.Fresh(ctx)
				}
				if err == nil && w.Applied() < v {
					err = fmt.Errorf("Fresh returned at version %d after change %d committed", w.Applied(), v)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d requests, %d version reads", workers*rounds, w.Reads())
	if w.Reads() >= workers*rounds {
		t.Errorf("%d reads for %d requests: none shared", w.Reads(), workers*rounds)
	}
}

// On SQLite (one server process) Fresh reads nothing; Run's poll picks
// up what `ward admin` changes.
func TestSQLite(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := storetest.Open(t, storetest.Backends()[0])
	rec := &recorder{}
	w := replica.New(st, 0, rec.apply(), replica.Config{Poll: 10 * time.Millisecond}, quiet)
	if _, err := st.RecordChange(ctx, store.Change{Kind: store.ChangeKeys}); err != nil {
		t.Fatal(err)
	}
	if err := w.Fresh(ctx); err != nil || w.Reads() != 0 {
		t.Fatalf("Fresh on SQLite: %v, %d reads", err, w.Reads())
	}
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the poll", func() bool { return slices.Contains(rec.seen(), "keys") })
}

// BenchmarkFresh is the cost a request pays to confirm freshness on
// PostgreSQL when nothing changed: one version read, shared under load.
func BenchmarkFresh(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, storetest.PostgresDSN(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	w := replica.New(st, 0, (&recorder{}).apply(), replica.Config{}, quiet)
	b.Run("serial", func(b *testing.B) {
		start := w.Reads()
		for b.Loop() {
			if err := w.Fresh(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(w.Reads()-start)/float64(b.N), "reads/op")
	})
	b.Run("parallel", func(b *testing.B) {
		start := w.Reads()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := w.Fresh(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(w.Reads()-start)/float64(b.N), "reads/op")
	})
}

// While a replica holds its lease, Fresh reads nothing, and a writer on
// another store answers only once the replica has applied its change:
// the change is there on the replica's very next request, with no wait.
func TestLeaseWritersWait(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dsn, st1, _, w, rec := twoReplicas(t)
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	waitFor(t, "the replica's lease", w.Leased)
	for i := range 20 {
		jti := fmt.Sprintf("jti-%d", i)
		if _, err := st1.RecordChange(ctx, store.Change{Kind: store.ChangeRevocation, Subject: jti}); err != nil {
			t.Fatal(err)
		}
		if err := w.Fresh(ctx); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(rec.seen(), "revoked "+jti) {
			t.Fatalf("change %d committed and answered, not applied on the leased replica", i)
		}
	}
	if w.Reads() != 0 {
		t.Fatalf("Fresh made %d version reads under a lease, want 0", w.Reads())
	}
	// A clean stop gives the lease up: Fresh reads again, writers no
	// longer wait for this replica.
	cancel()
	<-done
	if w.Leased() {
		t.Fatal("still leased after Run ended")
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var n int
	if err := admin.QueryRow(`SELECT COUNT(*) FROM replica_leases`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("lease rows after a clean stop: %d (%v), want 0", n, err)
	}
	if err := w.Fresh(context.Background()); err != nil || w.Reads() != 1 {
		t.Fatalf("Fresh after the lease: err %v, reads %d, want one read", err, w.Reads())
	}
}

// A replica that holds a lease but applies nothing (frozen, cut off)
// delays a writer until its lease runs out, not forever.
func TestLeaseOfStalledReplicaRunsOut(t *testing.T) {
	ctx := context.Background()
	dsn, st1, _, _, _ := twoReplicas(t)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// A lease for 300 ms more, of a replica at version 0.
	if _, err := admin.Exec(`INSERT INTO replica_leases (id, applied, lease_until) VALUES ('stalled', 0,
		CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) + 300)`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := st1.RecordChange(ctx, store.Change{Kind: store.ChangeProject, ProjectID: "p"})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second): // a deadline, far past the lease
		t.Fatal("the writer still waits for a replica whose lease ran out")
	}
}
