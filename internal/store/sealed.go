package store

import (
	"context"
	"database/sql"
	"fmt"
)

// SealedKind names where a value the master key protects is kept.
type SealedKind string

const (
	SealedSigningKey   SealedKind = "signing key"   // signing_keys, by kid
	SealedServerSecret SealedKind = "server secret" // server_secrets, by name
	SealedZambdaSecret SealedKind = "zambda secret" // zambda_secrets, by project and name
	SealedMFASecret    SealedKind = "mfa secret"    // user_mfa, by project and user (in Name)
)

// AtRest is one value the master key protects, as stored.
type AtRest struct {
	Kind      SealedKind
	ProjectID string // zambda secrets only
	Name      string // the signing key's kid, or the secret's name
	// Plain is set for a signing key or server secret an older release
	// stored in plaintext (and Sealed is then nil).
	Plain  []byte
	Sealed []byte
}

// sealedLock is the PostgreSQL advisory lock key of LockSealed (the
// migrations use 7262001).
const sealedLock = 7262002

// LockSealed makes tx wait for, then hold off until it ends, the
// transactions that check, seal with or rotate the master key: exclusive
// to check or re-seal everything, shared to seal one new value.
// PostgreSQL takes an advisory lock for the transaction; on SQLite the
// single writer already runs write transactions one at a time, across
// processes too.
func (tx *Tx) LockSealed(ctx context.Context, exclusive bool) error {
	if tx.dialect != Postgres {
		return nil
	}
	q := `SELECT pg_advisory_xact_lock_shared(?)`
	if exclusive {
		q = `SELECT pg_advisory_xact_lock(?)`
	}
	if _, err := tx.exec(ctx, q, sealedLock); err != nil {
		return fmt.Errorf("lock sealed values: %w", err)
	}
	return nil
}

// ValuesAtRest lists every value the master key protects, sealed or left
// in plaintext by an older release; with plainOnly, only the latter.
func (s *Store) ValuesAtRest(ctx context.Context, plainOnly bool) ([]AtRest, error) {
	var out []AtRest
	queries := []struct {
		kind SealedKind
		q    string
	}{
		{SealedSigningKey, `SELECT '', kid, private_pem, private_sealed FROM signing_keys`},
		{SealedServerSecret, `SELECT '', name, value, sealed FROM server_secrets`},
		{SealedZambdaSecret, `SELECT project_id, name, NULL, value FROM zambda_secrets`},
		{SealedMFASecret, `SELECT project_id, user_id, NULL, secret_sealed FROM user_mfa`},
	}
	for _, qq := range queries {
		q := qq.q + ` ORDER BY 1, 2`
		if plainOnly {
			if qq.kind == SealedZambdaSecret || qq.kind == SealedMFASecret {
				continue // always sealed
			}
			q = qq.q + ` WHERE ` + map[SealedKind]string{SealedSigningKey: "private_sealed", SealedServerSecret: "sealed"}[qq.kind] + ` IS NULL ORDER BY 1, 2`
		}
		rows, err := s.query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("values at rest: %w", err)
		}
		for rows.Next() {
			v := AtRest{Kind: qq.kind}
			var plain sql.NullString
			if err := rows.Scan(&v.ProjectID, &v.Name, &plain, &v.Sealed); err != nil {
				rows.Close()
				return nil, fmt.Errorf("values at rest: %w", err)
			}
			if plain.Valid && v.Sealed == nil {
				v.Plain = []byte(plain.String)
			}
			out = append(out, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("values at rest: %w", err)
		}
	}
	return out, nil
}

// PutSealed replaces the stored value v names with v.Sealed, dropping its
// plaintext if it had one. Errors: ErrNotFound (the row is gone).
func (s *Store) PutSealed(ctx context.Context, v AtRest) error {
	var q string
	args := []any{v.Sealed, v.Name}
	switch v.Kind {
	case SealedSigningKey:
		q = `UPDATE signing_keys SET private_sealed = ?, private_pem = NULL WHERE kid = ?`
	case SealedServerSecret:
		q = `UPDATE server_secrets SET sealed = ?, value = NULL WHERE name = ?`
	case SealedZambdaSecret:
		q = `UPDATE zambda_secrets SET value = ? WHERE name = ? AND project_id = ?`
		args = append(args, v.ProjectID)
	case SealedMFASecret:
		q = `UPDATE user_mfa SET secret_sealed = ? WHERE user_id = ? AND project_id = ?`
		args = append(args, v.ProjectID)
	default:
		return fmt.Errorf("put sealed: unknown kind %q", v.Kind)
	}
	res, err := s.exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("put sealed %s %s: %w", v.Kind, v.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("put sealed %s %s: %w", v.Kind, v.Name, ErrNotFound)
	}
	return nil
}

// PutServerSecret creates or replaces the server secret called name with
// a sealed value.
func (s *Store) PutServerSecret(ctx context.Context, name string, sealed []byte) error {
	if _, err := s.exec(ctx, `INSERT INTO server_secrets (name, sealed) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, value = NULL`, name, sealed); err != nil {
		return fmt.Errorf("put server secret %s: %w", name, err)
	}
	return nil
}

// HoldsSealed reports whether the database holds any value sealed with a
// master key: then the key must be given, never made anew.
func (s *Store) HoldsSealed(ctx context.Context) (bool, error) {
	var n int
	err := s.queryRow(ctx, `SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM server_secrets WHERE sealed IS NOT NULL LIMIT 1) a)
		+ (SELECT COUNT(*) FROM (SELECT 1 FROM signing_keys WHERE private_sealed IS NOT NULL LIMIT 1) b)
		+ (SELECT COUNT(*) FROM (SELECT 1 FROM zambda_secrets LIMIT 1) c)
		+ (SELECT COUNT(*) FROM (SELECT 1 FROM user_mfa LIMIT 1) d)`).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("holds sealed values: %w", s.mapErr(err))
	}
	return n > 0, nil
}
