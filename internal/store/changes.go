package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// ChangeKind names what a change invalidates in a server's memory.
type ChangeKind string

const (
	// ChangeRevocation: a token id was revoked (Subject, until ExpiresAt).
	ChangeRevocation ChangeKind = "revocation"
	// ChangeProject: a project's access policies, principals or settings
	// changed (ProjectID).
	ChangeProject ChangeKind = "project"
	// ChangeKeys: the signing keys changed.
	ChangeKeys ChangeKind = "keys"
)

// Change is one row of the change log.
type Change struct {
	Version   int64
	Kind      ChangeKind
	ProjectID string
	Subject   string
	ExpiresAt time.Time
}

// changeLogKeep is how many versions the log keeps: a replica further
// behind than this reloads everything instead.
const changeLogKeep = 10_000

// ErrNoListen: the database cannot announce changes (SQLite, one process).
var ErrNoListen = errors.New("this database does not announce changes")

// changeChannel is the NOTIFY channel of a schema: channels are
// database-wide, and tests (or tenants) may share a database.
func changeChannel(schema string) string {
	h := sha256.Sum256([]byte(schema))
	return "ward_changes_" + hex.EncodeToString(h[:8])
}

// RecordChange bumps the change version and logs c under it, in tx: the
// change and its announcement commit together. On PostgreSQL the
// listening replicas are notified at commit. It returns the new version.
func (tx *Tx) RecordChange(ctx context.Context, c Change) (int64, error) {
	var v int64
	// The row lock held to commit orders versions as commits: a reader that
	// sees version v sees every change up to v.
	if err := tx.queryRow(ctx, `UPDATE change_version SET version = version + 1 WHERE id = 1 RETURNING version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("record change: %w", tx.mapErr(err))
	}
	var exp int64
	if !c.ExpiresAt.IsZero() {
		exp = ms(c.ExpiresAt)
	}
	if _, err := tx.exec(ctx, `INSERT INTO changes (version, kind, project_id, subject, expires_at) VALUES (?, ?, ?, ?, ?)`,
		v, string(c.Kind), c.ProjectID, c.Subject, exp); err != nil {
		return 0, fmt.Errorf("record change: %w", err)
	}
	if v%1000 == 0 {
		if _, err := tx.exec(ctx, `DELETE FROM changes WHERE version <= ?`, v-changeLogKeep); err != nil {
			return 0, fmt.Errorf("trim change log: %w", err)
		}
	}
	if tx.dialect == Postgres {
		if _, err := tx.exec(ctx, `SELECT pg_notify(?, ?)`, tx.channel, strconv.FormatInt(v, 10)); err != nil {
			return 0, fmt.Errorf("announce change: %w", err)
		}
	}
	return v, nil
}

// RecordChange is Tx.RecordChange in a transaction of its own.
func (s *Store) RecordChange(ctx context.Context, c Change) (int64, error) {
	var v int64
	err := s.WithTx(ctx, func(tx *Tx) error {
		var err error
		v, err = tx.RecordChange(ctx, c)
		return err
	})
	return v, err
}

// ChangeVersion is the version of the latest committed change.
func (s *Store) ChangeVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.queryRow(ctx, changeVersionSQL).Scan(&v); err != nil {
		return 0, fmt.Errorf("change version: %w", s.mapErr(err))
	}
	return v, nil
}

// ChangesSince lists the logged changes after version v, oldest first, at
// most limit. The first has version v+1 unless the log was trimmed past it.
func (s *Store) ChangesSince(ctx context.Context, v int64, limit int) ([]Change, error) {
	rows, err := s.query(ctx, `SELECT version, kind, project_id, subject, expires_at FROM changes WHERE version > ? ORDER BY version LIMIT `+strconv.Itoa(limit), v)
	if err != nil {
		return nil, fmt.Errorf("changes since %d: %w", v, err)
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		var c Change
		var kind string
		var exp int64
		if err := rows.Scan(&c.Version, &kind, &c.ProjectID, &c.Subject, &exp); err != nil {
			return nil, fmt.Errorf("changes since %d: %w", v, err)
		}
		c.Kind = ChangeKind(kind)
		if exp != 0 {
			c.ExpiresAt = fromMS(exp)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ListenChanges listens for changes on a connection of its own: it calls
// listening once the database will announce every later commit to it,
// then heard with each announced version, until ctx ends or the
// connection fails (the error says which). Errors: ErrNoListen on SQLite.
func (s *Store) ListenChanges(ctx context.Context, listening func(), heard func(version int64)) error {
	if s.dialect != Postgres {
		return ErrNoListen
	}
	conn, err := pgx.ConnectConfig(ctx, s.pg)
	if err != nil {
		return fmt.Errorf("listen for changes: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return fmt.Errorf("listen for changes: %w", err)
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("listen for changes: %w", err)
		}
		v, err := strconv.ParseInt(n.Payload, 10, 64)
		if err != nil {
			continue // not ours: the channel name is all that ties it to us
		}
		heard(v)
	}
}

// ChangeChannel is the NOTIFY channel changes are announced on ("" on
// SQLite).
func (s *Store) ChangeChannel() string { return s.channel }

// VersionReader reads the change version on a PostgreSQL connection of
// its own, one read at a time. The per-request freshness check makes one
// read at a time and, with several replicas, nearly one per request (each
// process has fewer requests in flight to share it): outside the pool it
// costs one prepared round trip, without the pool's bookkeeping or a
// wait for a connection that busy requests hold. Construct with
// Store.VersionReader; Close ends it.
type VersionReader struct {
	s      *Store
	mu     sync.Mutex
	conn   *pgx.Conn
	closed bool
}

// VersionReader returns a reader of the change version (on SQLite it
// reads through the store).
func (s *Store) VersionReader() *VersionReader { return &VersionReader{s: s} }

const changeVersionSQL = `SELECT version FROM change_version WHERE id = 1`

// Read is Store.ChangeVersion. Should its connection fail, the read is
// made through the pool and the next one connects again.
func (r *VersionReader) Read(ctx context.Context) (int64, error) {
	if r.s.dialect != Postgres {
		return r.s.ChangeVersion(ctx)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return r.s.ChangeVersion(ctx)
	}
	if r.conn == nil {
		conn, err := pgx.ConnectConfig(ctx, r.s.pg)
		if err != nil {
			r.s.log.DebugContext(ctx, "change version: own connection failed, reading through the pool", "err", err)
			return r.s.ChangeVersion(ctx)
		}
		r.conn = conn
	}
	var v int64
	if err := r.conn.QueryRow(ctx, changeVersionSQL).Scan(&v); err != nil {
		// The connection's state is unknown after an error (a cut read
		// leaves it mid-protocol): drop it.
		_ = r.conn.Close(context.WithoutCancel(ctx))
		r.conn = nil
		if ctx.Err() != nil {
			return 0, fmt.Errorf("change version: %w", err)
		}
		return r.s.ChangeVersion(ctx)
	}
	return v, nil
}

// Close closes the reader's connection; later reads go through the pool.
func (r *VersionReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.conn == nil {
		return nil
	}
	err := r.conn.Close(context.Background())
	r.conn = nil
	return err
}
