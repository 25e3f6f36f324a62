package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
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
	if err := s.queryRow(ctx, `SELECT version FROM change_version WHERE id = 1`).Scan(&v); err != nil {
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
