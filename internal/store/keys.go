package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"time"
)

// SigningKey is a token signing key as stored: its private key (PKCS#8
// PEM) sealed with the master key. Sealed is nil for a key an older
// release stored in plaintext and no start has sealed yet.
type SigningKey struct {
	KID       string
	Alg       string
	Sealed    []byte
	CreatedAt time.Time
	// ActivatesAt is when the key starts signing (zero: at CreatedAt).
	ActivatesAt time.Time
	RetiredAt   *time.Time
}

// keysLock is the PostgreSQL advisory lock key of LockSigningKeys.
const keysLock = 7262003

// LockSigningKeys makes tx the only one changing the signing keys until
// it ends, so replicas starting at once make one first key between them.
// SQLite's single writer already runs write transactions one at a time.
func (tx *Tx) LockSigningKeys(ctx context.Context) error {
	if tx.dialect != Postgres {
		return nil
	}
	if _, err := tx.exec(ctx, `SELECT pg_advisory_xact_lock(?)`, keysLock); err != nil {
		return fmt.Errorf("lock signing keys: %w", err)
	}
	return nil
}

// bootstrapLock is the PostgreSQL advisory lock key of LockBootstrap.
const bootstrapLock = 7262004

// LockBootstrap makes tx the only first-start bootstrap until it ends, so
// replicas starting at once on an empty database make one default project.
func (tx *Tx) LockBootstrap(ctx context.Context) error {
	if tx.dialect != Postgres {
		return nil
	}
	if _, err := tx.exec(ctx, `SELECT pg_advisory_xact_lock(?)`, bootstrapLock); err != nil {
		return fmt.Errorf("lock bootstrap: %w", err)
	}
	return nil
}

// InsertSigningKey stores a new key. Errors: ErrConflict.
func (s *Store) InsertSigningKey(ctx context.Context, k SigningKey) error {
	var activates sql.NullInt64
	if !k.ActivatesAt.IsZero() {
		activates = sql.NullInt64{Int64: ms(k.ActivatesAt), Valid: true}
	}
	if _, err := s.exec(ctx, `INSERT INTO signing_keys (kid, alg, private_sealed, created_at, activates_at) VALUES (?, ?, ?, ?, ?)`, k.KID, k.Alg, k.Sealed, ms(k.CreatedAt), activates); err != nil {
		return fmt.Errorf("insert signing key: %w", err)
	}
	return nil
}

// RetireSigningKeys makes every key except keep retire at t (which may be
// in the future), unless it retires sooner already.
func (s *Store) RetireSigningKeys(ctx context.Context, keep string, t time.Time) error {
	if _, err := s.exec(ctx, `UPDATE signing_keys SET retired_at = ? WHERE (retired_at IS NULL OR retired_at > ?) AND kid <> ?`, ms(t), ms(t), keep); err != nil {
		return fmt.Errorf("retire signing keys: %w", err)
	}
	return nil
}

// ListSigningKeys returns keys retired after since (and all active ones), newest first.
func (s *Store) ListSigningKeys(ctx context.Context, since time.Time) ([]SigningKey, error) {
	rows, err := s.query(ctx, `SELECT kid, alg, private_sealed, created_at, activates_at, retired_at FROM signing_keys WHERE retired_at IS NULL OR retired_at > ? ORDER BY created_at DESC, kid`, ms(since))
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	defer rows.Close()
	var out []SigningKey
	for rows.Next() {
		var k SigningKey
		var created int64
		var activates, retired sql.NullInt64
		if err := rows.Scan(&k.KID, &k.Alg, &k.Sealed, &created, &activates, &retired); err != nil {
			return nil, fmt.Errorf("list signing keys: %w", err)
		}
		k.CreatedAt = fromMS(created)
		k.ActivatesAt = k.CreatedAt
		if activates.Valid {
			k.ActivatesAt = fromMS(activates.Int64)
		}
		if retired.Valid {
			t := fromMS(retired.Int64)
			k.RetiredAt = &t
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeToken records a revoked token id until its expiry. Revoking twice is fine.
func (s *Store) RevokeToken(ctx context.Context, jti string, expiresAt, at time.Time) error {
	if _, err := s.exec(ctx, `INSERT INTO revoked_tokens (jti, expires_at, revoked_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, jti, ms(expiresAt), ms(at)); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	return nil
}

// RevokedSince lists token ids revoked at or after t that have not expired by now.
func (s *Store) RevokedSince(ctx context.Context, t, now time.Time) ([]string, error) {
	rows, err := s.query(ctx, `SELECT jti FROM revoked_tokens WHERE revoked_at >= ? AND expires_at > ?`, ms(t), ms(now))
	if err != nil {
		return nil, fmt.Errorf("revoked tokens: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var jti string
		if err := rows.Scan(&jti); err != nil {
			return nil, fmt.Errorf("revoked tokens: %w", err)
		}
		out = append(out, jti)
	}
	return out, rows.Err()
}

// IsRevoked reports whether the token id was revoked.
func (s *Store) IsRevoked(ctx context.Context, jti string) (bool, error) {
	var n int
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM revoked_tokens WHERE jti = ?`, jti).Scan(&n); err != nil {
		return false, fmt.Errorf("is revoked: %w", s.mapErr(err))
	}
	return n > 0, nil
}

// AuditEvent is one row of the audit trail: every write and every denial.
type AuditEvent struct {
	ProjectID     string
	At            time.Time
	RequestID     string
	PrincipalKind string
	PrincipalID   string
	Action        string
	Resource      string
	Outcome       string // "allowed", "denied", "error"
	Detail        string
}

// PendingAudit is the audit event of a request that writes: the first
// transaction run with it in its context writes the event in that same
// transaction (one commit, and no write without its audit row).
type PendingAudit struct {
	Event   AuditEvent
	written atomic.Bool
}

type auditKey struct{}

// WithAudit returns ctx carrying a pending audit event.
func WithAudit(ctx context.Context, a *PendingAudit) context.Context {
	return context.WithValue(ctx, auditKey{}, a)
}

// Written reports whether a committed transaction holds the event.
func (a *PendingAudit) Written() bool { return a.written.Load() }

// InsertAudit appends an audit event.
func (s *Store) InsertAudit(ctx context.Context, e AuditEvent) error {
	_, err := s.exec(ctx, `INSERT INTO audit_events (project_id, at, request_id, principal_kind, principal_id, action, resource, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ProjectID, ms(e.At), e.RequestID, e.PrincipalKind, e.PrincipalID, e.Action, e.Resource, e.Outcome, e.Detail)
	if err != nil {
		return fmt.Errorf("insert audit: %w", err)
	}
	return nil
}

// ListAudit returns the project's latest audit events, newest first.
func (s *Store) ListAudit(ctx context.Context, projectID string, limit int) ([]AuditEvent, error) {
	rows, err := s.query(ctx, fmt.Sprintf(`SELECT project_id, at, request_id, principal_kind, principal_id, action, resource, outcome, detail FROM audit_events WHERE project_id = ? ORDER BY id DESC LIMIT %d`, limit), projectID)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		var e AuditEvent
		var at int64
		if err := rows.Scan(&e.ProjectID, &at, &e.RequestID, &e.PrincipalKind, &e.PrincipalID, &e.Action, &e.Resource, &e.Outcome, &e.Detail); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// RevokedTokens maps every token id revoked and not expired by now to its
// expiry.
func (s *Store) RevokedTokens(ctx context.Context, now time.Time) (map[string]time.Time, error) {
	rows, err := s.query(ctx, `SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > ?`, ms(now))
	if err != nil {
		return nil, fmt.Errorf("revoked tokens: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var jti string
		var exp int64
		if err := rows.Scan(&jti, &exp); err != nil {
			return nil, fmt.Errorf("revoked tokens: %w", err)
		}
		out[jti] = fromMS(exp)
	}
	return out, rows.Err()
}
