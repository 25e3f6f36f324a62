package store

import (
	"context"
	"fmt"
	"time"
)

// ConsoleSession is a developer signed in to the web console, kept under
// the hash of its cookie's token. AccessToken is sealed by the caller.
type ConsoleSession struct {
	Hash        string
	DeveloperID string
	ProjectID   string
	ProjectName string
	AccessToken []byte // sealed
	CSRF        string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// PutConsoleSession stores a new session, dropping every expired one on
// the way (sign-ins are rare, the expiry index makes it one range).
func (s *Store) PutConsoleSession(ctx context.Context, sess ConsoleSession) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `DELETE FROM console_sessions WHERE expires_at <= ?`, ms(sess.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO console_sessions (token_hash, developer_id, project_id, project_name, access_token, csrf, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, sess.Hash, sess.DeveloperID, sess.ProjectID, sess.ProjectName, sess.AccessToken, sess.CSRF,
			ms(sess.CreatedAt), ms(sess.ExpiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("store console session: %w", err)
	}
	return nil
}

// GetConsoleSession returns the session a token hash names. Errors:
// ErrNotFound (unknown, signed out or expired at now).
func (s *Store) GetConsoleSession(ctx context.Context, hash string, now time.Time) (ConsoleSession, error) {
	sess := ConsoleSession{Hash: hash}
	var created, exp int64
	err := s.queryRow(ctx, `SELECT developer_id, project_id, project_name, access_token, csrf, created_at, expires_at
		FROM console_sessions WHERE token_hash = ?`, hash).
		Scan(&sess.DeveloperID, &sess.ProjectID, &sess.ProjectName, &sess.AccessToken, &sess.CSRF, &created, &exp)
	if err != nil {
		return ConsoleSession{}, fmt.Errorf("get console session: %w", s.mapErr(err))
	}
	sess.CreatedAt, sess.ExpiresAt = fromMS(created), fromMS(exp)
	if !sess.ExpiresAt.After(now) {
		return ConsoleSession{}, fmt.Errorf("get console session: %w: expired", ErrNotFound)
	}
	return sess, nil
}

// SetConsoleSessionProject switches a session's project. Errors:
// ErrNotFound (the session has ended).
func (s *Store) SetConsoleSessionProject(ctx context.Context, hash, projectID, projectName string) error {
	res, err := s.exec(ctx, `UPDATE console_sessions SET project_id = ?, project_name = ? WHERE token_hash = ?`, projectID, projectName, hash)
	if err != nil {
		return fmt.Errorf("switch console session project: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("switch console session project: %w", ErrNotFound)
	}
	return nil
}

// DeleteConsoleSession ends a session (sign-out); an unknown hash is not
// an error.
func (s *Store) DeleteConsoleSession(ctx context.Context, hash string) error {
	if _, err := s.exec(ctx, `DELETE FROM console_sessions WHERE token_hash = ?`, hash); err != nil {
		return fmt.Errorf("delete console session: %w", err)
	}
	return nil
}

// DeliveryMinute is one minute's subscription delivery attempts.
type DeliveryMinute struct {
	Start            time.Time
	Attempts, Failed int64
}

// DeliveryActivity returns a project's delivery attempts since since, per
// minute (only minutes with attempts, oldest first), and its backlog: the
// deliveries still pending. Read from the database, so it counts every
// replica's work.
func (s *Store) DeliveryActivity(ctx context.Context, projectID string, since time.Time) ([]DeliveryMinute, int64, error) {
	rows, err := s.query(ctx, `SELECT a.at / 60000 AS m, COUNT(*), SUM(CASE WHEN a.status_code BETWEEN 200 AND 299 AND a.error = '' THEN 0 ELSE 1 END)
		FROM sub_attempts a JOIN sub_deliveries d ON d.id = a.delivery_id
		WHERE a.at >= ? AND d.project_id = ? GROUP BY a.at / 60000 ORDER BY m`, ms(since), projectID)
	if err != nil {
		return nil, 0, fmt.Errorf("delivery activity: %w", err)
	}
	defer rows.Close()
	var out []DeliveryMinute
	for rows.Next() {
		var m, n, failed int64
		if err := rows.Scan(&m, &n, &failed); err != nil {
			return nil, 0, fmt.Errorf("delivery activity: %w", err)
		}
		out = append(out, DeliveryMinute{Start: fromMS(m * 60000), Attempts: n, Failed: failed})
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("delivery activity: %w", err)
	}
	var backlog int64
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM sub_deliveries WHERE project_id = ? AND status = 'pending'`, projectID).Scan(&backlog); err != nil {
		return nil, 0, fmt.Errorf("delivery backlog: %w", err)
	}
	return out, backlog, nil
}
