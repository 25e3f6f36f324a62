package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Developer is a developer account's membership in one project. The account
// (id, email, name) is shared across projects; the policy is per project.
type Developer struct {
	ProjectID           string
	ID                  string
	Email               string
	Name                string
	PractitionerID      string
	AccessPolicy        []byte
	InvitationHash      string // set until the invitation is accepted
	InvitationExpiresAt time.Time
	CreatedAt           time.Time
}

const developerSelect = `SELECT pd.project_id, d.id, d.email, d.name, pd.practitioner_id, pd.access_policy, pd.invitation_hash, pd.invitation_expires_at, pd.created_at
FROM project_developers pd JOIN developers d ON d.id = pd.developer_id`

func scanDeveloper(row interface{ Scan(...any) error }) (Developer, error) {
	var d Developer
	var policy, invitation sql.NullString
	var expires sql.NullInt64
	var created int64
	if err := row.Scan(&d.ProjectID, &d.ID, &d.Email, &d.Name, &d.PractitionerID, &policy, &invitation, &expires, &created); err != nil {
		return Developer{}, err
	}
	if policy.Valid {
		d.AccessPolicy = []byte(policy.String)
	}
	d.InvitationHash, d.CreatedAt = invitation.String, fromMS(created)
	if expires.Valid {
		d.InvitationExpiresAt = fromMS(expires.Int64)
	}
	return d, nil
}

// GetDeveloperAccountByEmail returns the account id for an email. Errors: ErrNotFound.
func (s *Store) GetDeveloperAccountByEmail(ctx context.Context, email string) (string, error) {
	var id string
	if err := s.queryRow(ctx, `SELECT id FROM developers WHERE email = ?`, email).Scan(&id); err != nil {
		return "", fmt.Errorf("get developer account: %w", s.mapErr(err))
	}
	return id, nil
}

// CreateDeveloperAccount inserts an account. Errors: ErrConflict on a taken email.
func (s *Store) CreateDeveloperAccount(ctx context.Context, id, email, name string, at time.Time) error {
	if _, err := s.exec(ctx, `INSERT INTO developers (id, email, name, created_at) VALUES (?, ?, ?, ?)`, id, email, name, ms(at)); err != nil {
		return fmt.Errorf("create developer account: %w", err)
	}
	return nil
}

// AddDeveloper makes an account a member of d.ProjectID. Errors: ErrConflict.
func (s *Store) AddDeveloper(ctx context.Context, d Developer) error {
	var expires sql.NullInt64
	if !d.InvitationExpiresAt.IsZero() {
		expires = sql.NullInt64{Int64: ms(d.InvitationExpiresAt), Valid: true}
	}
	_, err := s.exec(ctx, `INSERT INTO project_developers (project_id, developer_id, practitioner_id, access_policy, invitation_hash, invitation_expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		d.ProjectID, d.ID, d.PractitionerID, nullBytes(d.AccessPolicy), nullString(d.InvitationHash), expires, ms(d.CreatedAt))
	if err != nil {
		return fmt.Errorf("add developer: %w", err)
	}
	return nil
}

// GetDeveloper returns a developer of the project. Errors: ErrNotFound.
func (s *Store) GetDeveloper(ctx context.Context, projectID, id string) (Developer, error) {
	d, err := scanDeveloper(s.queryRow(ctx, developerSelect+` WHERE pd.project_id = ? AND d.id = ?`, projectID, id))
	if err != nil {
		return Developer{}, fmt.Errorf("get developer: %w", s.mapErr(err))
	}
	return d, nil
}

// ListDevelopers returns the project's developers by email.
func (s *Store) ListDevelopers(ctx context.Context, projectID string) ([]Developer, error) {
	rows, err := s.query(ctx, developerSelect+` WHERE pd.project_id = ? ORDER BY d.email`, projectID)
	if err != nil {
		return nil, fmt.Errorf("list developers: %w", err)
	}
	defer rows.Close()
	var out []Developer
	for rows.Next() {
		d, err := scanDeveloper(rows)
		if err != nil {
			return nil, fmt.Errorf("list developers: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// UpdateDeveloperPolicy sets the project-level inline policy. Errors: ErrNotFound.
func (s *Store) UpdateDeveloperPolicy(ctx context.Context, projectID, id string, policy []byte) error {
	res, err := s.exec(ctx, `UPDATE project_developers SET access_policy = ? WHERE project_id = ? AND developer_id = ?`, nullBytes(policy), projectID, id)
	return affectedOne(res, err, "update developer")
}

// RemoveDeveloper ends a membership and its role holdings. Errors: ErrNotFound.
func (s *Store) RemoveDeveloper(ctx context.Context, projectID, id string) error {
	if _, err := s.exec(ctx, `DELETE FROM role_holders WHERE project_id = ? AND holder_kind = 'developer' AND holder_id = ?`, projectID, id); err != nil {
		return fmt.Errorf("remove developer: %w", err)
	}
	res, err := s.exec(ctx, `DELETE FROM project_developers WHERE project_id = ? AND developer_id = ?`, projectID, id)
	return affectedOne(res, err, "remove developer")
}

// FindInvitation returns the membership whose invitation hash matches.
// Errors: ErrNotFound.
func (s *Store) FindInvitation(ctx context.Context, invitationHash string) (Developer, error) {
	d, err := scanDeveloper(s.queryRow(ctx, developerSelect+` WHERE pd.invitation_hash = ?`, invitationHash))
	if err != nil {
		return Developer{}, fmt.Errorf("find invitation: %w", s.mapErr(err))
	}
	return d, nil
}

// AcceptInvitation clears the invitation (so the link works once) and sets
// the account's password hash. Errors: ErrNotFound if already used.
func (s *Store) AcceptInvitation(ctx context.Context, projectID, developerID, invitationHash, passwordHash string) error {
	res, err := s.exec(ctx, `UPDATE project_developers SET invitation_hash = NULL, invitation_expires_at = NULL WHERE project_id = ? AND developer_id = ? AND invitation_hash = ?`,
		projectID, developerID, invitationHash)
	if err := affectedOne(res, err, "accept invitation"); err != nil {
		return err
	}
	if _, err := s.exec(ctx, `UPDATE developers SET password_hash = ? WHERE id = ?`, passwordHash, developerID); err != nil {
		return fmt.Errorf("accept invitation: %w", err)
	}
	return nil
}

// DeveloperPasswordHash returns an account's password hash ("" if unset).
// Errors: ErrNotFound.
func (s *Store) DeveloperPasswordHash(ctx context.Context, developerID string) (string, error) {
	var h string
	if err := s.queryRow(ctx, `SELECT password_hash FROM developers WHERE id = ?`, developerID).Scan(&h); err != nil {
		return "", fmt.Errorf("developer password: %w", s.mapErr(err))
	}
	return h, nil
}
