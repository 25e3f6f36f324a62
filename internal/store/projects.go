package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Project is a tenant. Every other row carries its project id.
type Project struct {
	ID                   string
	Name                 string
	Description          string
	SignupEnabled        bool
	Sandbox              bool
	DefaultPatientRoleID string
	DefaultSSOUserRoleID string
	// AuthorizerZambdaID names the function that validates bearer tokens
	// Ward did not issue (SMART "authorizer", HealthLake's IdP Lambda);
	// AuthorizerIssuers, space-separated, limits it to JWTs from those
	// issuers (empty: any foreign token).
	AuthorizerZambdaID string
	AuthorizerIssuers  string
	// RateLimit is requests per minute per principal: 0 takes the
	// server's default, -1 is no limit.
	RateLimit int
	// Providers is a JSON object from service to provider name (e.g.
	// {"sms":"twilio"}); "{}" means every service's local provider.
	Providers string
	CreatedAt time.Time
}

const projectCols = `id, name, description, signup_enabled, sandbox, default_patient_role_id, default_sso_user_role_id, authorizer_zambda_id, authorizer_issuers, rate_limit, providers, created_at`

func scanProject(row interface{ Scan(...any) error }) (Project, error) {
	var p Project
	var patient, sso sql.NullString
	var created int64
	if err := row.Scan(&p.ID, &p.Name, &p.Description, &p.SignupEnabled, &p.Sandbox, &patient, &sso, &p.AuthorizerZambdaID, &p.AuthorizerIssuers, &p.RateLimit, &p.Providers, &created); err != nil {
		return Project{}, err
	}
	p.DefaultPatientRoleID, p.DefaultSSOUserRoleID, p.CreatedAt = patient.String, sso.String, fromMS(created)
	return p, nil
}

// CreateProject inserts p. Errors: ErrConflict if the id exists.
func (s *Store) CreateProject(ctx context.Context, p Project) error {
	_, err := s.exec(ctx, `INSERT INTO projects (`+projectCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.Name, p.Description, p.SignupEnabled, p.Sandbox, nullString(p.DefaultPatientRoleID), nullString(p.DefaultSSOUserRoleID),
		p.AuthorizerZambdaID, p.AuthorizerIssuers, p.RateLimit, providersJSON(p.Providers), ms(p.CreatedAt))
	if err != nil {
		return fmt.Errorf("create project: %w", err)
	}
	return nil
}

// GetProject returns one project. Errors: ErrNotFound.
func (s *Store) GetProject(ctx context.Context, id string) (Project, error) {
	p, err := scanProject(s.queryRow(ctx, `SELECT `+projectCols+` FROM projects WHERE id = ?`, id))
	if err != nil {
		return Project{}, fmt.Errorf("get project: %w", s.mapErr(err))
	}
	return p, nil
}

// ListProjects returns every project, oldest first.
func (s *Store) ListProjects(ctx context.Context) ([]Project, error) {
	rows, err := s.query(ctx, `SELECT `+projectCols+` FROM projects ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	defer rows.Close()
	var out []Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, fmt.Errorf("list projects: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// UpdateProject overwrites the mutable fields of p. Errors: ErrNotFound.
func (s *Store) UpdateProject(ctx context.Context, p Project) error {
	res, err := s.exec(ctx, `UPDATE projects SET name = ?, description = ?, signup_enabled = ?, default_patient_role_id = ?, default_sso_user_role_id = ?,
		authorizer_zambda_id = ?, authorizer_issuers = ?, rate_limit = ?, providers = ? WHERE id = ?`,
		p.Name, p.Description, p.SignupEnabled, nullString(p.DefaultPatientRoleID), nullString(p.DefaultSSOUserRoleID),
		p.AuthorizerZambdaID, p.AuthorizerIssuers, p.RateLimit, providersJSON(p.Providers), p.ID)
	return affectedOne(res, err, "update project")
}

// providersJSON stores an unset Providers as the empty object.
func providersJSON(s string) string {
	if s == "" {
		return "{}"
	}
	return s
}

// affectedOne turns "no row changed" into ErrNotFound.
func affectedOne(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// DeveloperProjects returns the projects a developer account belongs to,
// by name.
func (s *Store) DeveloperProjects(ctx context.Context, developerID string) ([]Project, error) {
	rows, err := s.query(ctx, `SELECT `+prefixed("p.", projectCols)+` FROM projects p
		JOIN project_developers pd ON pd.project_id = p.id WHERE pd.developer_id = ? ORDER BY p.name, p.id`, developerID)
	if err != nil {
		return nil, fmt.Errorf("developer projects: %w", err)
	}
	defer rows.Close()
	var out []Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, fmt.Errorf("developer projects: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// prefixed qualifies each of a comma-separated column list with prefix.
func prefixed(prefix, cols string) string {
	parts := strings.Split(cols, ", ")
	for i, c := range parts {
		parts[i] = prefix + c
	}
	return strings.Join(parts, ", ")
}
