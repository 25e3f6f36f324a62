package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gatedWAL stands in for the write-ahead log's fsync: each sync waits for
// release and returns err.
type gatedWAL struct {
	release chan struct{}
	once    sync.Once
	err     error
	syncs   atomic.Int32
}

func (g *gatedWAL) open() { g.once.Do(func() { close(g.release) }) }

func (g *gatedWAL) sync() error {
	<-g.release
	g.syncs.Add(1)
	return g.err
}

func (g *gatedWAL) close() {}

// restartWithWAL swaps the store's group committer for one whose WAL
// fsync is wal's.
func restartWithWAL(t *testing.T, s *Store, path string, wal syncCloser) {
	t.Helper()
	s.stopGroupCommit()
	ckpt, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	s.startGroupCommit(ckpt, wal)
}

func openSQLiteForTest(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ward.db")
	s, err := Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func createProject(ctx context.Context, s *Store, id string) error {
	return s.WithTx(ctx, func(tx *Tx) error {
		return tx.CreateProject(ctx, Project{ID: id, Name: id, CreatedAt: time.Unix(1, 0)})
	})
}

// openGated opens a SQLite store whose WAL fsyncs wait on the returned gate.
func openGated(t *testing.T) (*Store, *gatedWAL) {
	s, path := openSQLiteForTest(t)
	wal := &gatedWAL{release: make(chan struct{})}
	// Released at the end even if the test fails early: the committer's
	// goroutines must not wait on the gate forever.
	t.Cleanup(wal.open)
	restartWithWAL(t, s, path, wal)
	return s, wal
}

// A commit is acknowledged only once the WAL's fsync has returned, and
// the transactions that arrive meanwhile share the next commit.
func TestAcknowledgedAfterWALSync(t *testing.T) {
	ctx := context.Background()
	s, wal := openGated(t)
	done := make(chan error, 10)
	go func() { done <- createProject(ctx, s, "p0") }()
	// The first commit happens (a reader sees it) but its caller waits.
	poll(t, func() bool {
		var got int
		if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM projects`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got == 1
	})
	const more = 9
	for i := range more {
		go func() { done <- createProject(ctx, s, fmt.Sprint("p", i+1)) }()
	}
	poll(t, func() bool { return s.group.ran.Load() == 1+more })
	select {
	case err := <-done:
		t.Fatalf("a transaction was answered (%v) before its WAL fsync", err)
	default:
	}
	wal.open()
	for range 1 + more {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := wal.syncs.Load(); got != 2 {
		t.Fatalf("%d fsyncs; want 2 (the first group, then the %d that ran during its fsync)", got, more)
	}
	var got int
	if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM projects`).Scan(&got); err != nil || got != 1+more {
		t.Fatalf("%d projects (%v), want %d", got, err, 1+more)
	}
}

// poll waits up to 10 s for cond.
func poll(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A failed fsync is the caller's error: the write may not survive a
// power cut, so it is not reported as done.
func TestWALSyncFailureIsReported(t *testing.T) {
	ctx := context.Background()
	s, path := openSQLiteForTest(t)
	broken := errors.New("disk gone")
	wal := &gatedWAL{release: make(chan struct{}), err: broken}
	wal.open()
	restartWithWAL(t, s, path, wal)
	if err := createProject(ctx, s, "p1"); !errors.Is(err, broken) {
		t.Fatalf("create after failed fsync: %v, want %v", err, broken)
	}
	// The real log syncs again once the disk is back.
	restartWithWAL(t, s, path, &walFile{path: path + "-wal"})
	if err := createProject(ctx, s, "p2"); err != nil {
		t.Fatal(err)
	}
}

// walFile reopens its descriptor when the path names a new file.
func TestWALFileFollowsPath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x-wal")
	w := &walFile{path: path}
	defer w.close()
	if err := w.sync(); err == nil {
		t.Fatal("sync of a missing log succeeded")
	}
	for range 2 {
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := w.sync(); err != nil {
			t.Fatal(err)
		}
		first := w.f
		if err := w.sync(); err != nil || w.f != first {
			t.Fatalf("same file: reopened or failed (%v)", err)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := w.sync(); err == nil {
			t.Fatal("sync after the log was removed succeeded")
		}
	}
}

// The writer's counters add up what it did.
func TestGroupStats(t *testing.T) {
	ctx := context.Background()
	s, _ := openSQLiteForTest(t)
	before := s.GroupStats()
	for i := range 3 {
		if err := createProject(ctx, s, fmt.Sprint("p", i)); err != nil {
			t.Fatal(err)
		}
	}
	st := s.GroupStats()
	// One at a time: each its own group, its own commit and fsync.
	if st.Transactions-before.Transactions != 3 || st.Groups-before.Groups != 3 || st.CommitSeconds <= 0 || st.SyncSeconds <= 0 {
		t.Fatalf("stats after 3 transactions: %+v (before %+v)", st, before)
	}
	var b strings.Builder
	if err := st.WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("ward_sqlite_group_commits_total %d\n", st.Groups); !strings.Contains(b.String(), want) {
		t.Fatalf("metrics lack %q:\n%s", want, b.String())
	}
}

// A replayable transaction runs without a savepoint; when one fails after
// writing, its writes are undone by rolling the group back, and the group's
// other members run again: they commit, it does not; a1's pending audit
// row is written again in the new transaction (once).
func TestReplayableFailureUndoesOnlyItself(t *testing.T) {
	ctx := context.Background()
	s, wal := openGated(t)
	// p0's commit waits on the gate; what follows shares the next commit.
	first := make(chan error, 1)
	go func() { first <- createProject(ctx, s, "p0") }()
	poll(t, func() bool { return s.group.ran.Load() == 1 })

	errRefused := errors.New("refused after writing")
	var runs [4]atomic.Int32
	type member struct {
		id         string
		replayable bool
		fail       bool
	}
	members := []member{{"a1", true, false}, {"a2", true, true}, {"a3", true, false}, {"a4", false, false}}
	done := make([]chan error, len(members))
	for i, m := range members {
		done[i] = make(chan error, 1)
		fn := func(tx *Tx) error {
			runs[i].Add(1)
			if err := tx.CreateProject(ctx, Project{ID: m.id, Name: m.id, CreatedAt: time.Unix(1, 0)}); err != nil {
				return err
			}
			if m.fail {
				return errRefused
			}
			return nil
		}
		mctx := ctx
		if m.id == "a1" {
			mctx = WithAudit(ctx, &PendingAudit{Event: AuditEvent{ProjectID: "a1", At: time.Unix(1, 0), RequestID: "r-a1", Action: "IAM:Test", Outcome: "allowed"}})
		}
		go func() {
			if m.replayable {
				done[i] <- s.WithReplayableTx(mctx, fn)
			} else {
				done[i] <- s.WithTx(ctx, fn)
			}
		}()
		// One at a time, so they run in this order.
		poll(t, func() bool { return s.group.ran.Load() == int64(2+i) })
	}
	wal.open()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, m := range members {
		err := <-done[i]
		if m.fail != (err != nil) || (m.fail && !errors.Is(err, errRefused)) {
			t.Fatalf("%s: %v", m.id, err)
		}
	}
	if got := runs[0].Load(); got != 2 {
		t.Fatalf("a1 ran %d times; want 2 (once, then again after a2's failure)", got)
	}
	if got := s.group.replays.Load(); got != 1 {
		t.Fatalf("%d replays, want 1", got)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT id FROM projects ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if got := strings.Join(ids, ","); got != "a1,a3,a4,p0" {
		t.Fatalf("projects %s; want a1,a3,a4,p0 (a2 undone)", got)
	}
	if events, err := s.ListAudit(ctx, "a1", 10); err != nil || len(events) != 1 || events[0].RequestID != "r-a1" {
		t.Fatalf("a1's audit rows: %+v %v; want its one row, written again by the replay", events, err)
	}
}

// openRestarting opens a SQLite store whose checkpointer runs every
// millisecond and restarts the log past restartFrames frames.
func openRestarting(t *testing.T, restartFrames int64) (*Store, string) {
	t.Helper()
	s, path := openSQLiteForTest(t)
	s.stopGroupCommit()
	ckpt, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)")
	if err != nil {
		t.Fatal(err)
	}
	s.startGroupCommitTuned(ckpt, &walFile{path: path + "-wal"}, time.Millisecond, restartFrames)
	return s, path
}

// writeSteadily creates writers x each projects (named after prefix) from
// writers goroutines at once, so the writer is never idle.
func writeSteadily(t *testing.T, s *Store, prefix string, writers, each int) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := createProject(ctx, s, fmt.Sprintf("%s%d-%d-%s", prefix, w, i, strings.Repeat("x", 300))); err != nil {
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
}

// Under a steady write load the writer never waits, so no checkpoint ever
// finds the whole log copied at the start of a write, the one moment
// SQLite starts the log over: without the checkpointer's restarts the log
// grew by every commit (here ~6,000 frames, 24 MiB). With them it stays
// near the bound, and nothing written is lost.
func TestWALStartsOverUnderSteadyWrites(t *testing.T) {
	const restartFrames = 64 // 256 KiB
	s, path := openRestarting(t, restartFrames)
	const writers, each = 8, 250
	writeSteadily(t, s, "w", writers, each)
	st := s.GroupStats()
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	// The bound plus what the writer added while a round ran.
	if limit := int64(restartFrames * 4096 * 16); fi.Size() > limit || st.LogRestarts == 0 {
		t.Fatalf("log is %d bytes (bound %d) after %d restarts in %d holds, %d groups", fi.Size(), limit, st.LogRestarts, st.Holds, st.Groups)
	}
	t.Logf("log %d bytes; %d groups, %d holds (%.1f ms), %d restarts", fi.Size(), st.Groups, st.Holds, st.HoldSeconds*1000, st.LogRestarts)
	projects, err := s.ListProjects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(projects) != writers*each {
		t.Fatalf("%d projects after %d writes", len(projects), writers*each)
	}
}

// A reader on an old snapshot keeps the checkpoint from reaching the log's
// end: the writer is then not held round after round (the hold could not
// restart the log), and once the reader is gone the log starts over again.
func TestWALRestartWaitsOutAnOldReader(t *testing.T) {
	ctx := context.Background()
	s, _ := openRestarting(t, 64)
	writeSteadily(t, s, "a", 4, 20)
	reader, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.QueryRow(`SELECT COUNT(*) FROM projects`).Scan(&n); err != nil { // takes the snapshot
		t.Fatal(err)
	}
	before := s.GroupStats()
	writeSteadily(t, s, "b", 4, 150)
	// A round past its check when the reader began, or one that found the
	// copy at the log's end (no write since the snapshot), may hold; not
	// round after round (70-100 holds here without the check; up to 7 with
	// it seen on a loaded 2-core machine, so the bound leaves room).
	if st := s.GroupStats(); st.Holds-before.Holds > 20 {
		t.Fatalf("writer held %d times while a reader kept the log from being copied", st.Holds-before.Holds)
	}
	if err := reader.Rollback(); err != nil {
		t.Fatal(err)
	}
	writeSteadily(t, s, "c", 4, 150)
	if st := s.GroupStats(); st.LogRestarts == before.LogRestarts {
		t.Fatalf("no restart after the reader left (%+v)", st)
	}
}
