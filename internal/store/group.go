package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SQLite has one writer and each commit costs an fsync (1-2 ms here), so
// concurrent transactions share commits: one goroutine drains the queue of
// waiting transactions into a single SQLite transaction, runs each inside
// its own savepoint (a failing one rolls back alone) and commits once.
//
// The commit writes the WAL without syncing it (the writer runs with
// synchronous=NORMAL); the syncer then fsyncs the WAL and only then answers
// the group's callers, while the writer already runs the next group. The
// fsync thus overlaps the next group's work instead of stalling the only
// writer. Nothing is acknowledged before it is on disk. (A reader may see a
// commit a moment before its fsync ends; after a power cut, not a crash of
// the process, such an unacknowledged commit can be gone.)

// maxGroup bounds how many transactions share one commit.
const maxGroup = 128

// maxInFlight bounds the committed groups waiting for the syncer: a full
// group commits without waiting for the last fsync, but no further. (The
// syncer's channels hold that many, so it never blocks on the writer.)
const maxInFlight = 2

type txRequest struct {
	ctx  context.Context
	fn   func(tx *Tx) error
	done chan error
	// single marks one lone statement: SQLite undoes a failed statement
	// by itself, so it needs no savepoint (whose page copies cost).
	single bool
	// replayable marks a function that may run again (WithReplayableTx):
	// it runs without a savepoint, and should it fail, the group's
	// transaction is rolled back and its other members run again.
	replayable bool
}

// groupCommitter owns the single SQLite write connection.
type groupCommitter struct {
	log  *slog.Logger
	reqs chan *txRequest
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
	// ckpt is the checkpointer's connection; committed wakes it.
	ckpt      *sql.DB
	committed chan struct{}
	// syncs carries committed groups from the writer to the syncer, which
	// makes the WAL durable (wal) before answering them.
	syncs  chan syncJob
	synced chan struct{} // the syncer has answered the group it had
	wal    syncCloser
	ran    atomic.Int64 // transactions run, committed or not
	// replays counts groups rolled back and run again after a replayable
	// transaction failed.
	replays atomic.Int64
	// Counters for GroupStats.
	groups, commitNanos, syncNanos atomic.Int64
	// hold carries, from the checkpointer to the writer, a channel the
	// writer waits on, out of any transaction, until it is closed
	// (restartLog).
	hold   chan chan struct{}
	dbPath string // the database file ("" in tests without one)
	// wal bounds: how often the checkpointer runs, and the log length
	// (frames) past which it restarts the log.
	checkpointEvery time.Duration
	restartFrames   int64
	// holds counts the writer's pauses for a log restart, holdNanos their
	// length; restarts counts the pauses after which every frame had been
	// copied (the writer's next transaction then starts the log over,
	// unless a reader still uses an older snapshot).
	holds, holdNanos, restarts atomic.Int64
}

// GroupStats counts the SQLite writer's work since the store opened.
type GroupStats struct {
	Transactions  int64   // run in the writer, committed or not
	Groups        int64   // commits, each shared by a group of transactions
	CommitSeconds float64 // in COMMIT (writing the WAL)
	SyncSeconds   float64 // in the WAL's fsync (overlapping the next group)
	// Log restarts: the writer's pauses so that a checkpoint could copy
	// the whole WAL, their total length, and how many copied it all.
	Holds       int64
	HoldSeconds float64
	LogRestarts int64
}

// GroupStats reports the writer's counters; zero on PostgreSQL.
func (s *Store) GroupStats() GroupStats {
	g := s.group
	if g == nil {
		return GroupStats{}
	}
	return GroupStats{Transactions: g.ran.Load(), Groups: g.groups.Load(),
		CommitSeconds: time.Duration(g.commitNanos.Load()).Seconds(), SyncSeconds: time.Duration(g.syncNanos.Load()).Seconds(),
		Holds: g.holds.Load(), HoldSeconds: time.Duration(g.holdNanos.Load()).Seconds(), LogRestarts: g.restarts.Load()}
}

// WritePrometheus writes the counters in the Prometheus text format.
func (st GroupStats) WritePrometheus(w io.Writer) error {
	_, err := fmt.Fprintf(w, `# HELP ward_sqlite_transactions_total Transactions run by the SQLite writer.
# TYPE ward_sqlite_transactions_total counter
ward_sqlite_transactions_total %d
# HELP ward_sqlite_group_commits_total Commits, each shared by the transactions that were waiting.
# TYPE ward_sqlite_group_commits_total counter
ward_sqlite_group_commits_total %d
# HELP ward_sqlite_commit_seconds_total Time in COMMIT (writing the WAL).
# TYPE ward_sqlite_commit_seconds_total counter
ward_sqlite_commit_seconds_total %g
# HELP ward_sqlite_wal_fsync_seconds_total Time in the WAL's fsync before answering a group.
# TYPE ward_sqlite_wal_fsync_seconds_total counter
ward_sqlite_wal_fsync_seconds_total %g
# HELP ward_sqlite_wal_holds_total Pauses of the writer so that a checkpoint could copy the whole WAL and the log start over.
# TYPE ward_sqlite_wal_holds_total counter
ward_sqlite_wal_holds_total %d
# HELP ward_sqlite_wal_hold_seconds_total Time the writer spent in those pauses.
# TYPE ward_sqlite_wal_hold_seconds_total counter
ward_sqlite_wal_hold_seconds_total %g
# HELP ward_sqlite_wal_restarts_total Pauses after which the whole WAL had been copied, so that the next write starts the log over.
# TYPE ward_sqlite_wal_restarts_total counter
ward_sqlite_wal_restarts_total %d
`, st.Transactions, st.Groups, st.CommitSeconds, st.SyncSeconds, st.Holds, st.HoldSeconds, st.LogRestarts)
	return err
}

// dbPathOf names the database file whose log w is.
func dbPathOf(w syncCloser) string {
	if f, ok := w.(*walFile); ok {
		return strings.TrimSuffix(f.path, "-wal")
	}
	return ""
}

// syncCloser makes the WAL durable (walFile; tests substitute their own).
type syncCloser interface {
	sync() error
	close()
}

// syncJob is a committed group waiting for its fsync.
type syncJob struct {
	batch   []*txRequest
	results []error
}

// checkpointEvery bounds how often the WAL is copied into the database
// file: often enough to keep the WAL small, rarely enough that each copy
// writes many commits' pages at once.
const checkpointEvery = 200 * time.Millisecond

// walRestartFrames is the log length (frames of 4 KiB: 256 MiB) past which
// the checkpointer makes the log start over (restartLog). Without it a
// steady write load grows the log without end (1.4 GB in 10 s of FHIR
// creates), taking the disk and making the recovery after a crash, which
// reads the whole log, ever longer. Each restart holds the writer for one
// checkpoint pass (12-40 ms on the benchmark VM's disk), hence a bound
// this large: at full speed that is a pause every ~2 s.
const walRestartFrames = 65536

// walSizeLimit is the writer's journal_size_limit: the first commit after
// a restart truncates a log left longer than this (by a reader that kept
// the log from restarting) back to it.
const walSizeLimit = 2 * walRestartFrames * 4096

// startGroupCommit starts the writer, the syncer and the checkpointer.
// wal is the database's write-ahead log, which the syncer fsyncs.
func (s *Store) startGroupCommit(ckpt *sql.DB, wal syncCloser) {
	s.startGroupCommitTuned(ckpt, wal, checkpointEvery, walRestartFrames)
}

// startGroupCommitTuned is startGroupCommit with the checkpointer's period
// and log bound given (tests shrink both).
func (s *Store) startGroupCommitTuned(ckpt *sql.DB, wal syncCloser, every time.Duration, restartFrames int64) {
	g := &groupCommitter{log: s.log, reqs: make(chan *txRequest), stop: make(chan struct{}), ckpt: ckpt, committed: make(chan struct{}, 1),
		syncs: make(chan syncJob, maxInFlight), synced: make(chan struct{}, maxInFlight), wal: wal,
		hold: make(chan chan struct{}), dbPath: dbPathOf(wal), checkpointEvery: every, restartFrames: restartFrames}
	s.group = g
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		g.checkpointer()
	}()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		g.syncer()
	}()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer close(g.syncs) // the syncer answers what it holds, then ends
		s.runWriter()
	}()
}

// runWriter runs queued transactions into one SQLite transaction and commits
// it when the syncer is free: while the last group's fsync runs, the next
// group keeps growing, so groups are as large as the disk makes them and
// the fsync costs the writer no time.
func (s *Store) runWriter() {
	g := s.group
	inFlight := 0 // committed groups the syncer has not answered yet
	for {
		var first *txRequest
		select {
		case <-g.stop:
			return
		case <-g.synced:
			inFlight--
			continue
		case release := <-g.hold:
			<-release // the checkpointer copies the log's tail meanwhile
			continue
		case first = <-g.reqs:
		}
		grp := s.beginGroup()
		grp.run(first)
		for {
			full := len(grp.batch) >= maxGroup
			if !full {
				select { // what is queued joins first
				case r := <-g.reqs:
					grp.run(r)
					continue
				default:
				}
			}
			if inFlight == 0 || (full && inFlight < maxInFlight) {
				break
			}
			if full {
				<-g.synced
				inFlight--
				continue
			}
			select {
			case r := <-g.reqs:
				grp.run(r)
			case <-g.synced:
				inFlight--
			}
		}
		if grp.commit() {
			inFlight++
		}
	}
}

// stopGroupCommit ends the committer after the batch in flight.
func (s *Store) stopGroupCommit() {
	if s.group == nil {
		return
	}
	s.group.once.Do(func() { close(s.group.stop) })
	s.group.wg.Wait()
	_ = s.group.ckpt.Close()
}

// checkpointer copies committed WAL frames into the database file (a
// PASSIVE checkpoint: it never blocks the writer or readers), after
// commits, at most every checkpointEvery, and keeps the log short.
func (g *groupCommitter) checkpointer() {
	for {
		select {
		case <-g.stop:
			return
		case <-g.committed:
		}
		if frames, _, err := g.checkpoint(); err == nil && frames >= g.restartFrames {
			g.restartLog()
		}
		select {
		case <-g.stop:
			return
		case <-time.After(g.checkpointEvery):
		}
	}
}

// checkpoint runs one PASSIVE checkpoint and reports the log's length and
// how much of it is now in the database file, in frames.
func (g *groupCommitter) checkpoint() (frames, copied int64, err error) {
	var busy int
	if err := g.ckpt.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
		g.log.Warn("sqlite checkpoint failed", "err", err)
		return 0, 0, err
	}
	return frames, copied, nil
}

// restartLog makes the WAL start over from its first frame. SQLite does
// that at the start of a write transaction that finds every frame already
// copied into the database file; under a steady load the writer begins its
// next group before any checkpoint has caught up with the last, so the log
// would only grow (~150 MB/s under FHIR creates). So: one more pass copies
// what was committed during the first, then the writer is held out of any
// transaction while a last pass copies the short rest (14 ms under full
// load on the benchmark VM); its next transaction restarts the log. (A reader still
// on an older snapshot can stop the copy or the restart; the next round
// tries again, without holding the writer while the copy falls short.)
func (g *groupCommitter) restartLog() {
	// A reader on an older snapshot stops the copy short of the log's end
	// (a long export can for minutes): holding the writer would be futile.
	if frames, copied, err := g.checkpoint(); err != nil || copied < frames {
		return
	}
	// The last pass ends with an fsync of the database file; most of what
	// it would flush is written by now: flushing it before the hold made
	// the hold 14 ms instead of 30-50 ms on the benchmark VM.
	if g.dbPath != "" {
		if f, err := os.Open(g.dbPath); err == nil {
			_ = f.Sync()
			_ = f.Close()
		}
	}
	release := make(chan struct{})
	select {
	case g.hold <- release:
	case <-g.stop:
		return
	}
	start := time.Now()
	frames, copied, err := g.checkpoint()
	close(release)
	g.holds.Add(1)
	g.holdNanos.Add(int64(time.Since(start)))
	if err == nil && copied == frames {
		g.restarts.Add(1)
	}
}

// submit queues fn and waits for its commit (or its own error).
func (s *Store) submit(ctx context.Context, fn func(tx *Tx) error) error {
	return s.enqueue(&txRequest{ctx: ctx, fn: fn, done: make(chan error, 1)})
}

// submitReplayable is submit for a function that may run again.
func (s *Store) submitReplayable(ctx context.Context, fn func(tx *Tx) error) error {
	return s.enqueue(&txRequest{ctx: ctx, fn: fn, done: make(chan error, 1), replayable: true})
}

// submitStatement is submit for a function that runs one statement.
func (s *Store) submitStatement(ctx context.Context, fn func(tx *Tx) error) error {
	return s.enqueue(&txRequest{ctx: ctx, fn: fn, done: make(chan error, 1), single: true})
}

func (s *Store) enqueue(req *txRequest) error {
	ctx := req.ctx
	select {
	case s.group.reqs <- req:
	case <-s.group.stop:
		return fmt.Errorf("begin: %w (%w)", ErrClosed, ErrUnavailable)
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued it runs: wait for the outcome even if ctx ends meanwhile,
	// so the caller never reports failure for a committed write.
	return <-req.done
}

// group is one SQLite transaction shared by the transactions in batch.
type group struct {
	s       *Store
	tx      *sql.Tx
	err     error // BEGIN failed: every member fails with it
	batch   []*txRequest
	results []error
	// safe: every member from now on gets a savepoint (after a replay).
	safe bool
}

func (s *Store) beginGroup() *group {
	// Between groups the writer's connection is free: prepare what the
	// last groups ran unprepared.
	s.wstmts.prepareWanted(context.Background())
	sqlTx, err := s.write.BeginTx(context.Background(), nil)
	if err != nil {
		err = s.mapErr(fmt.Errorf("begin: %w", err))
	}
	return &group{s: s, tx: sqlTx, err: err}
}

// run runs r in the group's transaction.
func (grp *group) run(r *txRequest) {
	var err error
	switch {
	case grp.err != nil:
		err = grp.err
	case r.ctx.Err() != nil:
		err = r.ctx.Err()
	case r.single:
		err = grp.s.runStatement(grp.tx, r)
	case r.replayable && !grp.safe:
		if err = grp.s.runStatement(grp.tx, r); err != nil {
			// Its writes so far cannot be undone alone: undo the group's
			// and run the others again, each in a savepoint.
			grp.replay()
		}
	default:
		err = grp.s.runSavepoint(grp.tx, r)
	}
	grp.batch = append(grp.batch, r)
	grp.results = append(grp.results, err)
	grp.s.group.ran.Add(1)
	if grp.err == nil && errors.Is(err, ErrDiskFull) {
		// SQLite may have rolled the whole transaction back (a full disk
		// is one of the errors after which it does), so members run from
		// now on would each commit alone, outside the group: the group
		// fails instead, and the disk has no room for it anyway.
		grp.err = err
	}
}

// replay rolls the group's transaction back and runs again, in a new one,
// the members that had succeeded; from now on each member of the group
// gets a savepoint.
func (grp *group) replay() {
	_ = grp.tx.Rollback()
	grp.safe = true
	sqlTx, err := grp.s.write.BeginTx(context.Background(), nil)
	if err != nil {
		grp.err = grp.s.mapErr(fmt.Errorf("begin: %w", err))
		return
	}
	grp.tx = sqlTx
	grp.s.group.replays.Add(1)
	for i, r := range grp.batch {
		if grp.results[i] != nil {
			continue // failed already, its writes undone by its savepoint
		}
		if r.single {
			grp.results[i] = grp.s.runStatement(grp.tx, r)
		} else {
			grp.results[i] = grp.s.runSavepoint(grp.tx, r)
		}
	}
}

// commit commits the group and hands it to the syncer, which answers its
// members once the WAL is on disk. It reports whether the syncer has it;
// a failed BEGIN or COMMIT is answered here.
func (grp *group) commit() bool {
	err := grp.err
	if err == nil {
		start := time.Now()
		err = grp.tx.Commit()
		grp.s.group.commitNanos.Add(int64(time.Since(start)))
		grp.s.group.groups.Add(1)
		if err != nil {
			err = grp.s.mapErr(fmt.Errorf("commit: %w", err))
		}
	}
	if err != nil {
		if grp.err != nil && grp.tx != nil {
			_ = grp.tx.Rollback()
		}
		answer(grp.batch, grp.results, err)
		return false
	}
	g := grp.s.group
	select {
	case g.committed <- struct{}{}:
	default: // a checkpoint is already due
	}
	g.syncs <- syncJob{batch: grp.batch, results: grp.results}
	return true
}

// syncer answers each committed group once the WAL holding it is on disk.
func (g *groupCommitter) syncer() {
	defer g.wal.close()
	for job := range g.syncs {
		start := time.Now()
		err := g.wal.sync()
		g.syncNanos.Add(int64(time.Since(start)))
		if err != nil {
			// The commits are in the WAL but may not survive a power cut:
			// their callers must not be told they are durable.
			g.log.Error("sqlite wal fsync failed", "err", err)
			err = fmt.Errorf("commit: sync write-ahead log: %w", err)
		}
		answer(job.batch, job.results, err)
		g.synced <- struct{}{}
	}
}

// answer tells each transaction of a group its outcome: its own error, or
// else err (the group's commit or fsync; nil once durable).
func answer(batch []*txRequest, results []error, err error) {
	for i, r := range batch {
		if results[i] == nil {
			results[i] = err
		}
		r.done <- results[i]
	}
}

// walFile is an open descriptor on the write-ahead log, for fsync.
// SQLite keeps the log's inode while any connection is open (it rewrites
// the file from the start after a checkpoint, never replaces it), but the
// descriptor is reopened if the path ever names another file.
type walFile struct {
	path string
	f    *os.File
}

func (w *walFile) sync() error {
	if w.f != nil {
		fi, err1 := w.f.Stat()
		cur, err2 := os.Stat(w.path)
		if err1 != nil || err2 != nil || !os.SameFile(fi, cur) {
			w.close()
		}
	}
	if w.f == nil {
		// Read-only is enough for fsync on Linux; SQLite holds no locks on
		// the log itself (they live in the -shm file), so this descriptor's
		// close cannot drop one.
		f, err := os.Open(w.path)
		if err != nil {
			return err
		}
		w.f = f
	}
	return w.f.Sync()
}

func (w *walFile) close() {
	if w.f != nil {
		_ = w.f.Close()
		w.f = nil
	}
}

// runStatement runs a one-statement function in the shared transaction.
func (s *Store) runStatement(sqlTx *sql.Tx, r *txRequest) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("statement panicked: %v", p)
		}
	}()
	return r.fn(s.writerTx(sqlTx))
}

// runSavepoint runs one transaction function inside a savepoint of the
// shared transaction; its error (or panic) undoes only its own writes.
func (s *Store) runSavepoint(sqlTx *sql.Tx, r *txRequest) (err error) {
	if _, err := sqlTx.Exec(`SAVEPOINT ward_tx`); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("transaction panicked: %v", p)
		}
		if err != nil {
			if _, rbErr := sqlTx.Exec(`ROLLBACK TO ward_tx`); rbErr != nil {
				err = fmt.Errorf("%w (and rollback to savepoint failed: %v)", err, rbErr)
			}
		}
		if _, relErr := sqlTx.Exec(`RELEASE ward_tx`); relErr != nil && err == nil {
			err = fmt.Errorf("release savepoint: %w", relErr)
		}
	}()
	return r.fn(s.writerTx(sqlTx))
}

// writerTx is the store bound to the writer's shared transaction.
func (s *Store) writerTx(sqlTx *sql.Tx) *Tx {
	tx := &Tx{Store: *s}
	tx.q, tx.detached = sqlTx, true
	return tx
}
