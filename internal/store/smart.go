package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrReused means a one-time credential (a refresh token) came back after
// it was used: the caller revokes what it grants.
var ErrReused = errors.New("already used")

// UseAssertionJTI records a client assertion's jti for its issuer until
// exp. It reports false when the pair was recorded before and has not
// expired (a replay). Expired rows of the issuer are dropped on the way.
func (s *Store) UseAssertionJTI(ctx context.Context, issuer, jti string, exp, now time.Time) (bool, error) {
	fresh := true
	err := s.WithTx(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `DELETE FROM assertion_jtis WHERE issuer = ? AND expires_at < ?`, issuer, ms(now)); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO assertion_jtis (issuer, jti, expires_at) VALUES (?, ?, ?)`, issuer, jti, ms(exp))
		if errors.Is(err, ErrConflict) {
			fresh = false
			return nil
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record assertion jti: %w", err)
	}
	return fresh, nil
}

// PutOAuthCode stores an authorization code's grant under its hash.
func (s *Store) PutOAuthCode(ctx context.Context, codeHash, projectID string, grant []byte, exp time.Time) error {
	if _, err := s.exec(ctx, `INSERT INTO oauth_codes (code_hash, project_id, grant_data, expires_at) VALUES (?, ?, ?, ?)`,
		codeHash, projectID, string(grant), ms(exp)); err != nil {
		return fmt.Errorf("store authorization code: %w", err)
	}
	return nil
}

// TakeOAuthCode returns and deletes a code's grant: a code works once, on
// one replica. Errors: ErrNotFound (unknown, used or expired).
func (s *Store) TakeOAuthCode(ctx context.Context, codeHash string, now time.Time) (projectID string, grant []byte, err error) {
	err = s.WithTx(ctx, func(tx *Tx) error {
		var data string
		var exp int64
		if err := tx.queryRow(ctx, `SELECT project_id, grant_data, expires_at FROM oauth_codes WHERE code_hash = ?`, codeHash).Scan(&projectID, &data, &exp); err != nil {
			return s.mapErr(err)
		}
		res, err := tx.exec(ctx, `DELETE FROM oauth_codes WHERE code_hash = ?`, codeHash)
		if err := affectedOne(res, err, "take authorization code"); err != nil {
			return err
		}
		if fromMS(exp).Before(now) {
			return fmt.Errorf("%w: authorization code expired", ErrNotFound)
		}
		grant = []byte(data)
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("take authorization code: %w", err)
	}
	return projectID, grant, nil
}

// RefreshToken is a stored refresh token (by hash). Family links every
// rotation of one grant.
type RefreshToken struct {
	Hash      string
	ProjectID string
	Family    string
	ClientID  string
	UserID    string // "" for tokens issued before users were recorded
	Grant     []byte
	ExpiresAt time.Time
	// AccessJTI and AccessExpiresAt name the access token issued with it.
	AccessJTI       string
	AccessExpiresAt time.Time
}

// AccessToken names an access token to revoke.
type AccessToken struct {
	JTI       string
	ExpiresAt time.Time
}

// PutRefreshToken stores a new refresh token.
func (s *Store) PutRefreshToken(ctx context.Context, t RefreshToken) error {
	if _, err := s.exec(ctx, `INSERT INTO refresh_tokens (token_hash, project_id, family, client_id, user_id, grant_data, expires_at, access_jti, access_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.Hash, t.ProjectID, t.Family, t.ClientID, t.UserID, string(t.Grant), ms(t.ExpiresAt), t.AccessJTI, ms(t.AccessExpiresAt)); err != nil {
		return fmt.Errorf("store refresh token: %w", err)
	}
	return nil
}

// UseRefreshToken marks a refresh token used and returns it. A token that
// was used before revokes its whole family and returns ErrReused (reuse
// detection: one of the two holders is a thief). Errors: ErrNotFound for
// unknown, revoked or expired tokens.
func (s *Store) UseRefreshToken(ctx context.Context, hash string, now time.Time) (RefreshToken, error) {
	var t RefreshToken
	reused := false
	err := s.WithTx(ctx, func(tx *Tx) error {
		var data string
		var exp int64
		var used, revoked sql.NullInt64
		err := tx.queryRow(ctx, `SELECT project_id, family, client_id, grant_data, expires_at, used_at, revoked_at FROM refresh_tokens WHERE token_hash = ?`, hash).
			Scan(&t.ProjectID, &t.Family, &t.ClientID, &data, &exp, &used, &revoked)
		if err != nil {
			return s.mapErr(err)
		}
		t.Hash, t.Grant, t.ExpiresAt = hash, []byte(data), fromMS(exp)
		switch {
		case revoked.Valid:
			return fmt.Errorf("%w: refresh token revoked", ErrNotFound)
		case used.Valid:
			reused = true
			_, err := tx.exec(ctx, `UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL`, ms(now), t.Family)
			return err
		case t.ExpiresAt.Before(now):
			return fmt.Errorf("%w: refresh token expired", ErrNotFound)
		}
		res, err := tx.exec(ctx, `UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL`, ms(now), hash)
		return affectedOne(res, err, "use refresh token")
	})
	if err != nil {
		return RefreshToken{}, fmt.Errorf("use refresh token: %w", err)
	}
	if reused {
		return t, ErrReused
	}
	return t, nil
}

// RevokeRefreshToken revokes every token of the grant the token belongs to
// (of projectID, when projectID is not empty, and issued to clientID, when
// clientID is not empty) and returns the grant's family, "" when the hash
// names no such token.
func (s *Store) RevokeRefreshToken(ctx context.Context, projectID, clientID, hash string, now time.Time) (string, error) {
	var family, project, client string
	err := s.queryRow(ctx, `SELECT family, project_id, client_id FROM refresh_tokens WHERE token_hash = ?`, hash).Scan(&family, &project, &client)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && ((projectID != "" && project != projectID) || (clientID != "" && client != clientID))) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("revoke refresh token: %w", err)
	}
	if _, err := s.exec(ctx, `UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL`, ms(now), family); err != nil {
		return "", fmt.Errorf("revoke refresh token: %w", err)
	}
	return family, nil
}

// FamilyAccessTokens lists the unexpired access tokens issued with the
// refresh tokens of a grant.
func (s *Store) FamilyAccessTokens(ctx context.Context, family string, now time.Time) ([]AccessToken, error) {
	rows, err := s.query(ctx, `SELECT access_jti, access_expires_at FROM refresh_tokens WHERE family = ? AND access_jti <> '' AND access_expires_at > ?`, family, ms(now))
	if err != nil {
		return nil, fmt.Errorf("family access tokens: %w", err)
	}
	defer rows.Close()
	var out []AccessToken
	for rows.Next() {
		var a AccessToken
		var exp int64
		if err := rows.Scan(&a.JTI, &exp); err != nil {
			return nil, fmt.Errorf("family access tokens: %w", err)
		}
		a.ExpiresAt = fromMS(exp)
		out = append(out, a)
	}
	return out, rows.Err()
}

// RefreshTokenClient returns the client a refresh token was issued to,
// without using it: a public app's refresh request names no client.
// Errors: ErrNotFound.
func (s *Store) RefreshTokenClient(ctx context.Context, hash string) (string, error) {
	var client string
	if err := s.queryRow(ctx, `SELECT client_id FROM refresh_tokens WHERE token_hash = ?`, hash).Scan(&client); err != nil {
		return "", fmt.Errorf("refresh token client: %w", s.mapErr(err))
	}
	return client, nil
}
