// Package store is Ward's SQL layer: SQLite (embedded default) and PostgreSQL
// behind one set of queries. No other package writes SQL.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wardhealth/ward/internal/batch"
	"github.com/wardhealth/ward/internal/store/walvfs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Errors every method may return, wrapped with %w.
var (
	// ErrNotFound: the row does not exist in this project.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique key (name, client id, ...) is already taken,
	// or (PostgreSQL) a concurrent transaction won a race for the same rows.
	ErrConflict = errors.New("conflict")
	// ErrClosed: the store was closed. It is also ErrUnavailable.
	ErrClosed = errors.New("store closed")
	// ErrUnavailable: the database cannot be reached now (connection
	// refused or lost, server shutting down or out of connections, store
	// closed); a later retry may succeed. It has a method Unavailable()
	// bool, which is how fault.Public knows it without importing store.
	ErrUnavailable error = unavailable{}
	// ErrDiskFull: the disk holding the database (SQLite) or the
	// database's own disk (PostgreSQL) is full; the write was not stored.
	// Reads go on, and writes succeed again once there is room. It has a
	// method DiskFull() bool, which is how fault.Public knows it.
	ErrDiskFull error = diskFull{}
)

type unavailable struct{}

func (unavailable) Error() string     { return "database unavailable" }
func (unavailable) Unavailable() bool { return true }

type diskFull struct{}

func (diskFull) Error() string  { return "disk full" }
func (diskFull) DiskFull() bool { return true }

// Dialect names the SQL flavour behind a Store.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Store is the database. Its query methods run outside a transaction; use
// WithTx to group writes. It is safe for concurrent use.
type Store struct {
	dialect Dialect
	write   *sql.DB // SQLite: exactly one connection, the single writer
	read    *sql.DB // SQLite: a reader pool; Postgres: the same pool as write
	q       querier
	now     func() time.Time
	log     *slog.Logger    // what the store's own goroutines report (checkpoints, fsyncs)
	group   *groupCommitter // SQLite: the single writer sharing commits
	wstmts  *stmtCache      // SQLite: statements prepared on the writer
	rstmts  *stmtCache      // SQLite: statements prepared on the readers
	// detached: statements ignore their context's cancellation. Set in
	// the SQLite writer, where a queued transaction runs to its end
	// anyway, and where the driver would otherwise start a goroutine per
	// statement to watch the context.
	detached bool
	// pg is the PostgreSQL connection config (the change listener opens a
	// connection of its own with it); channel is where changes are
	// announced, one per schema (NOTIFY is database-wide).
	pg      *pgx.ConnConfig
	channel string
	// SQLite: the data directory, and whether a write failed for a full
	// disk since the last write that Ready saw succeed (shared by the
	// store's Tx copies).
	dir  string
	full *atomic.Bool
	// changed is, in a PostgreSQL transaction (shared by its Tx copies),
	// the highest change version it recorded: after the commit the writer
	// waits for the leased replicas to apply it (awaitReplicas).
	changed *int64
	// rs is this replica's lease and resource cache (PostgreSQL; shared
	// by the copies); rchannel is where resource writes are announced.
	rs       *replicaState
	rchannel string
	// evicted is, in a PostgreSQL transaction, the resources it updated
	// or deleted: after the commit they leave the caches (afterCommit).
	evicted *[]rkey
	// creates shares statements and commits between concurrent creates
	// (PostgreSQL; shared by the store's copies).
	creates *batch.Batcher[*queuedCreate]
}

// Tx is a Store bound to one transaction.
type Tx struct {
	Store
}

// Open connects to dsn: "postgres://..." / "postgresql://..." for PostgreSQL,
// anything else is a SQLite file path (created with its directory), and runs
// the embedded migrations. log hears of failures no caller sees (a WAL
// checkpoint or fsync failing); nil discards them.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*Store, error) {
	return OpenWith(ctx, dsn, log, Options{})
}

// Options tune Open.
type Options struct {
	// MaxConns bounds the PostgreSQL connection pool (the change listener
	// holds one more). 0: DefaultMaxConns of the server's max_connections.
	// SQLite ignores it (one writer, a fixed reader pool).
	MaxConns int
	// ResourceCacheBytes sizes each replica's cache of current resource
	// versions on PostgreSQL (reads by id served without a query while
	// the replica's lease holds); 0: DefaultResourceCacheBytes, negative:
	// no cache. SQLite ignores it.
	ResourceCacheBytes int64
}

// DefaultMaxConns is the pool size for a PostgreSQL server that accepts
// maxConnections: a quarter of them, so that a few replicas (and psql,
// backups, migrations) fit in the server's default 100, at most 32 (more
// only queue inside PostgreSQL on 2-8 cores) and at least 4 (a request may
// hold a transaction's connection while it reads on another).
func DefaultMaxConns(maxConnections int) int {
	return min(32, max(4, maxConnections/4))
}

// OpenWith is Open with Options.
func OpenWith(ctx context.Context, dsn string, log *slog.Logger, opt Options) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var s *Store
	var err error
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		s, err = openPostgres(ctx, dsn, log, opt)
	} else {
		s, err = openSQLite(ctx, dsn, log)
		if err != nil {
			return nil, fullAtOpen(filepath.Dir(dsn), err)
		}
	}
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		if s.dialect == SQLite {
			return nil, fullAtOpen(s.dir, err)
		}
		return nil, err
	}
	return s, nil
}

// fullAtOpen says so when err, from opening SQLite in dir, comes of a full
// disk: SQLite then says no more than "disk I/O error (4874)" (it cannot
// create its -shm file), which names neither the cause nor the place.
func fullAtOpen(dir string, err error) error {
	if (&Store{dir: dir}).lowSpace() {
		return fmt.Errorf("%w: %s has less than %d KiB free; free space there and start again: %w", ErrDiskFull, dir, minFree>>10, err)
	}
	return err
}

func openSQLite(ctx context.Context, path string, log *slog.Logger) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	// WAL with synchronous=FULL: every acknowledged commit is on disk.
	common := "_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)"
	pragmas := common + "&_pragma=synchronous(FULL)"
	// The writer's page cache holds a group commit's dirty pages (a small
	// cache spills them to the WAL, extra writes, before the commit) but
	// no more: SQLite scans the cache's whole hash table at each commit's
	// end, and at 64 MiB that scan cost ~10% of a create. Savepoint journals (one per write
	// in a group) stay in memory rather than in a temporary file.
	// The writer never checkpoints (wal_autocheckpoint 0): copying the WAL
	// into the database file would stall every write queued behind it.
	// A connection of its own does it beside the writer (checkpointer),
	// which also keeps the log from growing without end (restartLog).
	// The writer commits with synchronous=NORMAL (no fsync): the group
	// committer's syncer fsyncs the WAL before any caller hears of the
	// commit, while the writer goes on (group.go).
	// Its VFS gathers a commit's WAL frames into one write (walvfs).
	if err := walvfs.Register(); err != nil {
		return nil, err
	}
	vfs := ""
	if walvfs.Name != "" {
		vfs = "vfs=" + walvfs.Name + "&"
	}
	write, err := sql.Open("sqlite", "file:"+path+"?"+vfs+common+"&_pragma=synchronous(NORMAL)&_pragma=cache_size(-16384)&_pragma=temp_store(memory)&_pragma=wal_autocheckpoint(0)&_pragma=journal_size_limit("+strconv.Itoa(walSizeLimit)+")&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	write.SetMaxOpenConns(1) // SQLite has one writer; queue in Go rather than on the file lock
	// Readers map the file (mmap_size): a page read is then a memory read,
	// not a pread system call (searches +25% over HTTP). Only this process
	// writes the file and it never shrinks it under a map (no VACUUM). The
	// map covers the whole file up to SQLite's 2 GiB cap: with 256 MiB a
	// database of 10,000 patients (~180k resources, past the map) read
	// its far pages with pread again (searches ~15% more CPU at that size,
	// bench/RESULTS.md). The map is address space, not memory: pages come
	// from the OS page cache as before.
	read, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_pragma=query_only(1)&_pragma=cache_size(-16384)&_pragma=mmap_size(2147418112)")
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	ckpt, err := sql.Open("sqlite", "file:"+path+"?"+pragmas)
	if err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	ckpt.SetMaxOpenConns(1)
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8) // keep them: opening one re-reads the schema
	read.SetConnMaxIdleTime(0)
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		read.Close()
		ckpt.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	s := &Store{dialect: SQLite, write: write, read: read, q: read, now: time.Now, log: log,
		wstmts: newStmtCache(write), rstmts: newStmtCache(read), dir: filepath.Dir(path), full: new(atomic.Bool)}
	s.startGroupCommit(ckpt, &walFile{path: path + "-wal"})
	return s, nil
}

func openPostgres(ctx context.Context, dsn string, log *slog.Logger, opt Options) (*Store, error) {
	maxConns := opt.MaxConns
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	// Prepared statements run their generic plan from the first run:
	// planning each run cost more than most searches (~1 ms: reads 4,600 vs
	// 11,300/s, Observation?subject=&code= 1,100 vs 4,400/s), and under
	// the default (auto) a statement whose parameters vary, as a name
	// prefix's range does, may never leave custom plans: Patient?name= spent
	// 1.3 ms planning for 0.07 ms of execution, 3.6x the database's CPU per
	// search (bench/RESULTS.md, issue 28). The generic plans are sound
	// because the index tables carry dependency statistics (0018); the
	// search suite runs as fast with every plan forced generic. A
	// plan_cache_mode in the URL still wins.
	if _, set := cfg.RuntimeParams["plan_cache_mode"]; !set {
		cfg.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(1) // until the size is known
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect postgres: %w", err)
	}
	if maxConns <= 0 {
		var limit int
		if err := db.QueryRowContext(ctx, `SELECT current_setting('max_connections')::int`).Scan(&limit); err != nil {
			db.Close()
			return nil, fmt.Errorf("connect postgres: read max_connections: %w", err)
		}
		maxConns = DefaultMaxConns(limit)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	log.Debug("postgres pool", "max_conns", maxConns)
	var schema sql.NullString // NULL when no schema of search_path exists yet
	if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect postgres: %w", err)
	}
	cacheBytes := opt.ResourceCacheBytes
	if cacheBytes == 0 {
		cacheBytes = DefaultResourceCacheBytes
	}
	return &Store{dialect: Postgres, write: db, read: db, q: db, now: time.Now, pg: cfg, channel: changeChannel(schema.String),
		rchannel: resourceChannel(schema.String), rs: newReplicaState(cacheBytes), log: log, full: new(atomic.Bool),
		creates: newCreateBatcher()}, nil
}

// MaxConns is the most connections the store's pool opens.
func (s *Store) MaxConns() int { return s.write.Stats().MaxOpenConnections }

// Dialect reports which database is behind the store.
func (s *Store) Dialect() Dialect { return s.dialect }

// Close releases the connections.
func (s *Store) Close() error {
	s.stopGroupCommit()
	if s.wstmts != nil {
		s.wstmts.close()
		s.rstmts.close()
	}
	err := s.write.Close()
	if s.read != s.write {
		err = errors.Join(err, s.read.Close())
	}
	return err
}

// WithTx runs fn in one transaction on the writer and commits if fn returns nil.
// Inside a transaction it joins it: the outer transaction commits or rolls
// back everything (a FHIR transaction bundle runs many writes this way).
func (s *Store) WithTx(ctx context.Context, fn func(tx *Tx) error) error {
	return s.withTx(ctx, fn, false)
}

// WithReplayableTx is WithTx for a function that may run more than once
// (it must leave nothing behind outside tx but what its next run
// overwrites). On SQLite it then shares the writer's transaction without a
// savepoint of its own, whose page copies cost ~10% of the writer; should it
// fail, the shared transaction is rolled back and the others in it run
// again. Use it on hot paths that rarely fail.
func (s *Store) WithReplayableTx(ctx context.Context, fn func(tx *Tx) error) error {
	return s.withTx(ctx, fn, true)
}

func (s *Store) withTx(ctx context.Context, fn func(tx *Tx) error, replayable bool) (err error) {
	if _, inTx := s.q.(*sql.Tx); inTx {
		return fn(&Tx{Store: *s})
	}
	if a, ok := ctx.Value(auditKey{}).(*PendingAudit); ok && !a.Written() {
		inner := fn
		fn = func(tx *Tx) error {
			if err := inner(tx); err != nil {
				return err
			}
			return tx.InsertAudit(ctx, a.Event)
		}
		// Written once committed, not once inserted: a replayed group runs
		// fn again in a new transaction, which must carry the row again.
		defer func() {
			if err == nil {
				a.written.Store(true)
			}
		}()
	}
	if s.group != nil {
		if replayable {
			return s.submitReplayable(ctx, fn)
		}
		return s.submit(ctx, fn)
	}
	sqlTx, err := s.write.BeginTx(ctx, nil)
	if s.retryable(err) {
		// BEGIN has no effect: on a connection the server closed while it
		// was idle in the pool, it is safe to run again on a new one.
		sqlTx, err = s.write.BeginTx(ctx, nil)
	}
	if err != nil {
		return s.mapErr(fmt.Errorf("begin: %w", err))
	}
	tx := &Tx{Store: *s}
	tx.q = sqlTx
	var changed int64
	var evicted []rkey
	tx.changed, tx.evicted = &changed, &evicted
	if err := fn(tx); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return s.mapErr(fmt.Errorf("commit: %w", err))
	}
	if (changed > 0 || len(evicted) > 0) && s.dialect == Postgres {
		s.afterCommit(ctx, changed, evicted)
	}
	return nil
}

// InTx reports whether s is bound to a transaction (WithTx's tx.Store):
// work that failed in it cannot be retried alone, as PostgreSQL has
// aborted the whole transaction.
func (s *Store) InTx() bool {
	_, inTx := s.q.(*sql.Tx)
	return inTx
}

// writer is where a single statement outside WithTx writes.
func (s *Store) writer() querier {
	if _, inTx := s.q.(*sql.Tx); inTx {
		return s.q
	}
	return s.write
}

// bind rewrites ? placeholders to $n for PostgreSQL. Queries never contain a
// literal '?', so a plain scan is enough.
func (s *Store) bind(query string) string {
	if s.dialect != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx = s.stmtContext(ctx)
	if _, inTx := s.q.(*sql.Tx); !inTx && s.group != nil {
		// A lone statement on SQLite shares a commit (and its fsync) with
		// the other writers, rather than taking the writer for its own.
		var res sql.Result
		err := s.submitStatement(ctx, func(tx *Tx) error {
			var err error
			res, err = tx.exec(ctx, query, args...)
			return err
		})
		return res, err
	}
	if tx, ok := s.q.(*sql.Tx); ok && s.wstmts != nil {
		if st := s.wstmts.get(query); st != nil {
			res, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...)
			return res, s.mapErr(err)
		}
		s.wstmts.want(query)
	}
	res, err := s.writer().ExecContext(ctx, s.bind(query), args...)
	if !s.InTx() && s.retryable(err) {
		res, err = s.write.ExecContext(ctx, s.bind(query), args...)
	}
	return res, s.mapErr(err)
}

func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx = s.stmtContext(ctx)
	if st := s.stmt(ctx, query); st != nil {
		rows, err := st.QueryContext(ctx, args...)
		return rows, s.mapErr(err)
	}
	rows, err := s.q.QueryContext(ctx, s.bind(query), args...)
	if !s.InTx() && s.retryable(err) {
		rows, err = s.q.QueryContext(ctx, s.bind(query), args...)
	}
	return rows, s.mapErr(err)
}

func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	ctx = s.stmtContext(ctx)
	if st := s.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	row := s.q.QueryRowContext(ctx, s.bind(query), args...)
	if !s.InTx() && s.retryable(row.Err()) {
		row = s.q.QueryRowContext(ctx, s.bind(query), args...)
	}
	return row
}

// retryable reports whether err is a PostgreSQL session the server ended
// before the statement ran (a restart, failover, idle timeout or
// pg_terminate_backend while the connection sat in the pool: the FATAL was
// waiting in the socket), or one pgx knows sent nothing. The statement
// then never ran (a session ended during a statement rolls it back), so
// one more try on a new connection is safe; the pool's other idle
// connections are dropped first, as they most likely died with this one.
// Inside a transaction nothing is retried: its earlier statements are
// gone with the session.
func (s *Store) retryable(err error) bool {
	if err == nil || s.dialect != Postgres {
		return false
	}
	var pgErr *pgconn.PgError
	dead := pgconn.SafeToRetry(err) ||
		(errors.As(err, &pgErr) && pgErr.Severity == "FATAL" && (pgErr.Code == "57P01" || pgErr.Code == "57P02"))
	if dead {
		n := s.write.Stats().MaxOpenConnections
		s.write.SetMaxIdleConns(0) // closes the idle ones
		s.write.SetMaxIdleConns(n)
		s.log.Info("postgres: the server closed a pooled connection; retrying on a new one", "err", err)
	}
	return dead
}

func (s *Store) stmtContext(ctx context.Context) context.Context {
	if s.detached {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// stmt returns a cached prepared statement for query where this dialect
// keeps them (SQLite), bound to the transaction when there is one.
func (s *Store) stmt(ctx context.Context, query string) *sql.Stmt {
	if s.rstmts == nil {
		return nil
	}
	if tx, ok := s.q.(*sql.Tx); ok {
		if st := s.wstmts.get(query); st != nil {
			return tx.StmtContext(ctx, st)
		}
		s.wstmts.want(query)
		return nil
	}
	return s.rstmts.prepared(ctx, query)
}

// mapErr turns driver errors into the package's named errors.
func (s *Store) mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	if errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), "sql: database is closed") {
		return fmt.Errorf("%w (%w): %w", ErrClosed, ErrUnavailable, err)
	}
	// Before unreachable: a syscall.Errno passes for a net.Error.
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		s.noteDiskFull()
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	if unreachable(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	// A serialization failure or a deadlock (two transactions locking the
	// same rows in opposite orders, e.g. two bundles) is a lost race as
	// well: the transaction may be run again.
	if errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01") {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	// 53100 disk_full: PostgreSQL could not extend a file.
	if errors.As(err, &pgErr) && pgErr.Code == "53100" {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		switch sqErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", ErrConflict, err)
		}
		// SQLite says SQLITE_FULL when a write fails with ENOSPC, but a
		// -shm file it cannot grow is a "disk I/O error" (SHMSIZE): with
		// next to no free space, that is the full disk too.
		if sqErr.Code()&0xff == sqlite3.SQLITE_FULL || (sqErr.Code()&0xff == sqlite3.SQLITE_IOERR && s.lowSpace()) {
			s.noteDiskFull()
			return fmt.Errorf("%w: %w", ErrDiskFull, err)
		}
	}
	return err
}

// unreachable reports whether err says the database server cannot be
// reached or used now, rather than that the statement was wrong.
func unreachable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P01-03: the server is shutting
		// down or starting; 53300: too many connections.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" ||
			pgErr.Code == "57P03" || pgErr.Code == "53300"
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.As(err, &connErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.ErrUnexpectedEOF) || (err != nil && strings.Contains(err.Error(), "conn closed"))
}

// Ready returns nil if the database answers, holds every migration this
// build knows and (SQLite) the single writer commits; else an error, with
// ErrUnavailable when the database cannot be reached. Bound it with ctx.
func (s *Store) Ready(ctx context.Context) error {
	latest, err := latestMigration(s.dialect)
	if err != nil {
		return err
	}
	var have sql.NullString
	if err := s.read.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("ready: %w", s.mapErr(err))
	}
	// Another replica of a newer release may have gone further: fine.
	if have.String < latest {
		return fmt.Errorf("ready: schema at migration %q, want %q", have.String, latest)
	}
	if s.group != nil {
		// With less than minFree left the disk is full, whatever a small
		// write might still fit into (a log restarted over its old space).
		if s.lowSpace() {
			s.noteDiskFull()
			return fmt.Errorf("ready: writer: %w: less than %d KiB free in %s", ErrDiskFull, minFree>>10, s.dir)
		}
		// A transaction through the writer proves it is alive; after a
		// write failed for a full disk, only one that writes proves it can
		// store again (an empty one commits without writing anything).
		probe := func(*Tx) error { return nil }
		full := s.full.Load()
		if full {
			probe = func(tx *Tx) error {
				if _, err := tx.exec(ctx, `INSERT INTO schema_migrations (version) VALUES ('~ready-probe')`); err != nil {
					return err
				}
				_, err := tx.exec(ctx, `DELETE FROM schema_migrations WHERE version = '~ready-probe'`)
				return err
			}
		}
		if err := s.WithTx(ctx, probe); err != nil {
			return fmt.Errorf("ready: writer: %w", s.mapErr(err))
		}
		if full && s.full.CompareAndSwap(true, false) {
			s.log.Info("sqlite writes succeed again: the disk has room", "dir", s.dir)
		}
	}
	return nil
}

// minFree is the free space below which the disk counts as full: SQLite
// grows the -shm file by 32 KiB and a group commit's log by megabytes.
const minFree = 1 << 20

// lowSpace reports whether the SQLite data directory's file system has
// less than minFree left (false on PostgreSQL, or when it cannot tell).
func (s *Store) lowSpace() bool {
	if s.dir == "" {
		return false
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.dir, &st); err != nil {
		return false
	}
	return st.Bavail*uint64(st.Bsize) < minFree
}

// noteDiskFull records that a write failed for a full disk, so that Ready
// reports the writer unhealthy until a write succeeds again.
func (s *Store) noteDiskFull() {
	if s.full != nil && !s.full.Swap(true) {
		s.log.Error("disk full: writes fail (507) until space is freed; reads go on", "dir", s.dir)
	}
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// nullString maps "" to NULL for optional columns.
func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
