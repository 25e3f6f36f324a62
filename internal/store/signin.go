package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// OAuthSession is a sign-in to Ward's own pages, remembered under the hash
// of its cookie's token.
type OAuthSession struct {
	ProjectID string
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// PutOAuthSession stores a session under its token's hash, dropping the
// expired sessions of the same user on the way.
func (s *Store) PutOAuthSession(ctx context.Context, hash string, sess OAuthSession) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `DELETE FROM oauth_sessions WHERE project_id = ? AND user_id = ? AND expires_at < ?`,
			sess.ProjectID, sess.UserID, ms(sess.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO oauth_sessions (token_hash, project_id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			hash, sess.ProjectID, sess.UserID, ms(sess.CreatedAt), ms(sess.ExpiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("store session: %w", err)
	}
	return nil
}

// GetOAuthSession returns the session a token hash names. Errors:
// ErrNotFound (unknown, signed out or expired).
func (s *Store) GetOAuthSession(ctx context.Context, hash string, now time.Time) (OAuthSession, error) {
	var sess OAuthSession
	var created, exp int64
	err := s.queryRow(ctx, `SELECT project_id, user_id, created_at, expires_at FROM oauth_sessions WHERE token_hash = ?`, hash).
		Scan(&sess.ProjectID, &sess.UserID, &created, &exp)
	if err != nil {
		return OAuthSession{}, fmt.Errorf("get session: %w", s.mapErr(err))
	}
	sess.CreatedAt, sess.ExpiresAt = fromMS(created), fromMS(exp)
	if !sess.ExpiresAt.After(now) {
		return OAuthSession{}, fmt.Errorf("get session: %w: expired", ErrNotFound)
	}
	return sess, nil
}

// DeleteOAuthSession ends a session (signing out); an unknown hash is not
// an error.
func (s *Store) DeleteOAuthSession(ctx context.Context, hash string) error {
	if _, err := s.exec(ctx, `DELETE FROM oauth_sessions WHERE token_hash = ?`, hash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// Consent is what a user allowed an application: its scopes, sorted.
type Consent struct {
	ClientID  string
	Scopes    []string
	GrantedAt time.Time
}

// PutConsent remembers the scopes a user allowed an application, replacing
// what was remembered (withdrawn or not).
func (s *Store) PutConsent(ctx context.Context, projectID, userID string, c Consent) error {
	if _, err := s.exec(ctx, `INSERT INTO oauth_consents (project_id, user_id, client_id, scopes, granted_at, withdrawn_at) VALUES (?, ?, ?, ?, ?, NULL)
		ON CONFLICT (project_id, user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at, withdrawn_at = NULL`,
		projectID, userID, c.ClientID, strings.Join(c.Scopes, " "), ms(c.GrantedAt)); err != nil {
		return fmt.Errorf("remember consent: %w", err)
	}
	return nil
}

// GetConsent returns what a user allowed an application. Errors:
// ErrNotFound (never allowed, or withdrawn).
func (s *Store) GetConsent(ctx context.Context, projectID, userID, clientID string) (Consent, error) {
	var scopes string
	var granted int64
	err := s.queryRow(ctx, `SELECT scopes, granted_at FROM oauth_consents WHERE project_id = ? AND user_id = ? AND client_id = ? AND withdrawn_at IS NULL`,
		projectID, userID, clientID).Scan(&scopes, &granted)
	if err != nil {
		return Consent{}, fmt.Errorf("get consent: %w", s.mapErr(err))
	}
	return Consent{ClientID: clientID, Scopes: strings.Fields(scopes), GrantedAt: fromMS(granted)}, nil
}

// ListConsents lists the applications a user has allowed (and not
// withdrawn), most recent first.
func (s *Store) ListConsents(ctx context.Context, projectID, userID string) ([]Consent, error) {
	rows, err := s.query(ctx, `SELECT client_id, scopes, granted_at FROM oauth_consents WHERE project_id = ? AND user_id = ? AND withdrawn_at IS NULL
		ORDER BY granted_at DESC, client_id`, projectID, userID)
	if err != nil {
		return nil, fmt.Errorf("list consents: %w", err)
	}
	defer rows.Close()
	var out []Consent
	for rows.Next() {
		var c Consent
		var scopes string
		var granted int64
		if err := rows.Scan(&c.ClientID, &scopes, &granted); err != nil {
			return nil, fmt.Errorf("list consents: %w", err)
		}
		c.Scopes, c.GrantedAt = strings.Fields(scopes), fromMS(granted)
		out = append(out, c)
	}
	return out, rows.Err()
}

// WithdrawConsent forgets what a user allowed an application and revokes
// the refresh tokens it holds for the user, in one transaction. It returns
// the families of the revoked grants (their access tokens are the
// caller's to revoke). Withdrawing twice is not an error.
func (s *Store) WithdrawConsent(ctx context.Context, projectID, userID, clientID string, now time.Time) ([]string, error) {
	var families []string
	err := s.WithTx(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `UPDATE oauth_consents SET withdrawn_at = ? WHERE project_id = ? AND user_id = ? AND client_id = ? AND withdrawn_at IS NULL`,
			ms(now), projectID, userID, clientID); err != nil {
			return err
		}
		rows, err := tx.query(ctx, `SELECT DISTINCT family FROM refresh_tokens WHERE project_id = ? AND user_id = ? AND client_id = ? AND revoked_at IS NULL`,
			projectID, userID, clientID)
		if err != nil {
			return err
		}
		families = families[:0]
		for rows.Next() {
			var f string
			if err := rows.Scan(&f); err != nil {
				rows.Close()
				return err
			}
			families = append(families, f)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		// The whole family: a rotation issued before this column existed
		// still shares its family with the newer tokens.
		for _, f := range families {
			if _, err := tx.exec(ctx, `UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL`, ms(now), f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("withdraw consent: %w", err)
	}
	return families, nil
}
