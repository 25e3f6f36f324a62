package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// UserMFA is a user's TOTP enrolment. Sealed is the secret as the master
// key sealed it; Confirmed is zero until a first code checked.
type UserMFA struct {
	ProjectID, UserID string
	Sealed            []byte
	Confirmed         time.Time
	LastStep          int64
	CreatedAt         time.Time
}

// StartUserMFA stores a new, unconfirmed enrolment, replacing an
// unconfirmed one. Errors: ErrConflict when the user has a confirmed
// enrolment (reset it first).
func (s *Store) StartUserMFA(ctx context.Context, m UserMFA) error {
	res, err := s.exec(ctx, `INSERT INTO user_mfa (project_id, user_id, secret_sealed, confirmed_at, last_step, created_at) VALUES (?, ?, ?, NULL, 0, ?)
		ON CONFLICT (project_id, user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, last_step = 0, created_at = excluded.created_at
		WHERE user_mfa.confirmed_at IS NULL`, m.ProjectID, m.UserID, m.Sealed, ms(m.CreatedAt))
	if err != nil {
		return fmt.Errorf("start mfa enrolment: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("start mfa enrolment: %w: already enrolled", ErrConflict)
	}
	return nil
}

// GetUserMFA returns a user's enrolment. Errors: ErrNotFound.
func (s *Store) GetUserMFA(ctx context.Context, projectID, userID string) (UserMFA, error) {
	m := UserMFA{ProjectID: projectID, UserID: userID}
	var confirmed sql.NullInt64
	var created int64
	err := s.queryRow(ctx, `SELECT secret_sealed, confirmed_at, last_step, created_at FROM user_mfa WHERE project_id = ? AND user_id = ?`,
		projectID, userID).Scan(&m.Sealed, &confirmed, &m.LastStep, &created)
	if err != nil {
		return UserMFA{}, fmt.Errorf("get mfa enrolment: %w", s.mapErr(err))
	}
	if confirmed.Valid {
		m.Confirmed = fromMS(confirmed.Int64)
	}
	m.CreatedAt = fromMS(created)
	return m, nil
}

// UseMFAStep records that the code of step was accepted (confirming the
// enrolment if it was not), only if no code of that step or a later one
// was: on every replica a code works once. Errors: ErrReused (that step or
// a later one was used), ErrNotFound (no enrolment).
func (s *Store) UseMFAStep(ctx context.Context, projectID, userID string, step int64, now time.Time) error {
	res, err := s.exec(ctx, `UPDATE user_mfa SET last_step = ?, confirmed_at = COALESCE(confirmed_at, ?)
		WHERE project_id = ? AND user_id = ? AND last_step < ?`, step, ms(now), projectID, userID, step)
	if err != nil {
		return fmt.Errorf("use mfa code: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	if _, err := s.GetUserMFA(ctx, projectID, userID); err != nil {
		return err
	}
	return fmt.Errorf("use mfa code: %w", ErrReused)
}

// DeleteUserMFA removes a user's enrolment, reporting whether there was one.
func (s *Store) DeleteUserMFA(ctx context.Context, projectID, userID string) (bool, error) {
	res, err := s.exec(ctx, `DELETE FROM user_mfa WHERE project_id = ? AND user_id = ?`, projectID, userID)
	if err != nil {
		return false, fmt.Errorf("delete mfa enrolment: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// PasswordReset is a password reset link, stored by its token's hash.
type PasswordReset struct {
	Hash, ProjectID, UserID string
	RedirectURL             string
	CreatedAt, ExpiresAt    time.Time
}

// PutPasswordReset stores a reset link, replacing the user's earlier one:
// only the newest link works.
func (s *Store) PutPasswordReset(ctx context.Context, p PasswordReset) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `DELETE FROM user_password_resets WHERE project_id = ? AND user_id = ?`, p.ProjectID, p.UserID); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO user_password_resets (token_hash, project_id, user_id, redirect_url, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			p.Hash, p.ProjectID, p.UserID, p.RedirectURL, ms(p.CreatedAt), ms(p.ExpiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("store password reset: %w", err)
	}
	return nil
}

// GetPasswordReset returns an unexpired reset link by its hash, without
// using it. Errors: ErrNotFound (unknown, used, replaced or expired).
func (s *Store) GetPasswordReset(ctx context.Context, hash string, now time.Time) (PasswordReset, error) {
	p := PasswordReset{Hash: hash}
	var created, exp int64
	err := s.queryRow(ctx, `SELECT project_id, user_id, redirect_url, created_at, expires_at FROM user_password_resets WHERE token_hash = ?`, hash).
		Scan(&p.ProjectID, &p.UserID, &p.RedirectURL, &created, &exp)
	if err != nil {
		return PasswordReset{}, fmt.Errorf("get password reset: %w", s.mapErr(err))
	}
	p.CreatedAt, p.ExpiresAt = fromMS(created), fromMS(exp)
	if !p.ExpiresAt.After(now) {
		return PasswordReset{}, fmt.Errorf("get password reset: %w: expired", ErrNotFound)
	}
	return p, nil
}

// RedeemPasswordReset uses a reset link once: in one transaction it
// deletes the link, sets the user's password hash (ending a pending
// invitation), ends the user's sign-in sessions and revokes the user's
// refresh tokens. It returns the link and the revoked grants' families
// (their access tokens are the caller's to revoke). Errors: ErrNotFound
// (unknown, used, replaced or expired link; the user is gone).
func (s *Store) RedeemPasswordReset(ctx context.Context, hash, passwordHash string, now time.Time) (PasswordReset, []string, error) {
	var p PasswordReset
	var families []string
	err := s.WithTx(ctx, func(tx *Tx) error {
		var err error
		if p, err = tx.GetPasswordReset(ctx, hash, now); err != nil {
			return err
		}
		res, err := tx.exec(ctx, `DELETE FROM user_password_resets WHERE token_hash = ?`, hash)
		if err := affectedOne(res, err, "use password reset"); err != nil {
			return err
		}
		res, err = tx.exec(ctx, `UPDATE users SET password_hash = ?, invitation_hash = NULL, invitation_expires_at = NULL WHERE project_id = ? AND id = ?`,
			passwordHash, p.ProjectID, p.UserID)
		if err := affectedOne(res, err, "set user password"); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM oauth_sessions WHERE project_id = ? AND user_id = ?`, p.ProjectID, p.UserID); err != nil {
			return err
		}
		if families, err = tx.userFamilies(ctx, p.ProjectID, p.UserID); err != nil {
			return err
		}
		for _, f := range families {
			if _, err := tx.exec(ctx, `UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL`, ms(now), f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return PasswordReset{}, nil, fmt.Errorf("redeem password reset: %w", err)
	}
	return p, families, nil
}

// userFamilies lists the grants a user holds unrevoked refresh tokens of.
func (s *Store) userFamilies(ctx context.Context, projectID, userID string) ([]string, error) {
	rows, err := s.query(ctx, `SELECT DISTINCT family FROM refresh_tokens WHERE project_id = ? AND user_id = ? AND revoked_at IS NULL`, projectID, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}
