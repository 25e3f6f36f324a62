package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Application is an OAuth client that a project's users log in through.
// SecretHash is "" for a public client (no secret issued yet).
type Application struct {
	ProjectID             string
	ID                    string
	ClientID              string
	SecretHash            string
	Name                  string
	Description           string
	LoginRedirectURI      string
	LogoURI               string
	AllowedCallbackURLs   []string
	AllowedLogoutURLs     []string
	AllowedWebOrigins     []string
	AllowedCORSOrigins    []string
	RefreshTokenEnabled   bool
	MFAEnabled            bool
	PasswordlessSMS       bool
	LoginWithEmailEnabled bool
	ShouldSendInviteEmail bool
	CreatedAt             time.Time
}

const applicationCols = `project_id, id, client_id, secret_hash, name, description, login_redirect_uri, logo_uri,
allowed_callback_urls, allowed_logout_urls, allowed_web_origins, allowed_cors_origins,
refresh_token_enabled, mfa_enabled, passwordless_sms, login_with_email_enabled, should_send_invite_email, created_at`

func scanApplication(row interface{ Scan(...any) error }) (Application, error) {
	var a Application
	var callbacks, logouts, origins, cors string
	var created int64
	if err := row.Scan(&a.ProjectID, &a.ID, &a.ClientID, &a.SecretHash, &a.Name, &a.Description, &a.LoginRedirectURI, &a.LogoURI,
		&callbacks, &logouts, &origins, &cors,
		&a.RefreshTokenEnabled, &a.MFAEnabled, &a.PasswordlessSMS, &a.LoginWithEmailEnabled, &a.ShouldSendInviteEmail, &created); err != nil {
		return Application{}, err
	}
	for _, l := range []struct {
		raw string
		dst *[]string
	}{{callbacks, &a.AllowedCallbackURLs}, {logouts, &a.AllowedLogoutURLs}, {origins, &a.AllowedWebOrigins}, {cors, &a.AllowedCORSOrigins}} {
		if err := json.Unmarshal([]byte(l.raw), l.dst); err != nil {
			return Application{}, fmt.Errorf("stored URL list of application %s: %w", a.ID, err)
		}
	}
	a.CreatedAt = fromMS(created)
	return a, nil
}

// urlList is the stored form of a URL list: a JSON array, never null.
func urlList(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l) // strings always marshal
	return string(b)
}

// CreateApplication inserts a. Errors: ErrConflict (client id taken).
func (s *Store) CreateApplication(ctx context.Context, a Application) error {
	_, err := s.exec(ctx, `INSERT INTO applications (`+applicationCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ProjectID, a.ID, a.ClientID, a.SecretHash, a.Name, a.Description, a.LoginRedirectURI, a.LogoURI,
		urlList(a.AllowedCallbackURLs), urlList(a.AllowedLogoutURLs), urlList(a.AllowedWebOrigins), urlList(a.AllowedCORSOrigins),
		a.RefreshTokenEnabled, a.MFAEnabled, a.PasswordlessSMS, a.LoginWithEmailEnabled, a.ShouldSendInviteEmail, ms(a.CreatedAt))
	if err != nil {
		return fmt.Errorf("create application: %w", err)
	}
	return nil
}

// GetApplication returns one application of the project. Errors: ErrNotFound.
func (s *Store) GetApplication(ctx context.Context, projectID, id string) (Application, error) {
	a, err := scanApplication(s.queryRow(ctx, `SELECT `+applicationCols+` FROM applications WHERE project_id = ? AND id = ?`, projectID, id))
	if err != nil {
		return Application{}, fmt.Errorf("get application: %w", s.mapErr(err))
	}
	return a, nil
}

// GetApplicationByClientID finds an application by its OAuth client id, in
// any project (client ids are globally unique). Errors: ErrNotFound.
func (s *Store) GetApplicationByClientID(ctx context.Context, clientID string) (Application, error) {
	a, err := scanApplication(s.queryRow(ctx, `SELECT `+applicationCols+` FROM applications WHERE client_id = ?`, clientID))
	if err != nil {
		return Application{}, fmt.Errorf("get application: %w", s.mapErr(err))
	}
	return a, nil
}

// ListApplications returns the project's applications by name.
func (s *Store) ListApplications(ctx context.Context, projectID string) ([]Application, error) {
	rows, err := s.query(ctx, `SELECT `+applicationCols+` FROM applications WHERE project_id = ? ORDER BY name, id`, projectID)
	if err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	defer rows.Close()
	var out []Application
	for rows.Next() {
		a, err := scanApplication(rows)
		if err != nil {
			return nil, fmt.Errorf("list applications: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// UpdateApplication overwrites every setting of a (not its client id or
// secret). Errors: ErrNotFound.
func (s *Store) UpdateApplication(ctx context.Context, a Application) error {
	res, err := s.exec(ctx, `UPDATE applications SET name = ?, description = ?, login_redirect_uri = ?, logo_uri = ?,
		allowed_callback_urls = ?, allowed_logout_urls = ?, allowed_web_origins = ?, allowed_cors_origins = ?,
		refresh_token_enabled = ?, mfa_enabled = ?, passwordless_sms = ?, login_with_email_enabled = ?, should_send_invite_email = ?
		WHERE project_id = ? AND id = ?`,
		a.Name, a.Description, a.LoginRedirectURI, a.LogoURI,
		urlList(a.AllowedCallbackURLs), urlList(a.AllowedLogoutURLs), urlList(a.AllowedWebOrigins), urlList(a.AllowedCORSOrigins),
		a.RefreshTokenEnabled, a.MFAEnabled, a.PasswordlessSMS, a.LoginWithEmailEnabled, a.ShouldSendInviteEmail,
		a.ProjectID, a.ID)
	return affectedOne(res, err, "update application")
}

// SetApplicationSecret replaces the application's secret hash. Errors: ErrNotFound.
func (s *Store) SetApplicationSecret(ctx context.Context, projectID, id, secretHash string) error {
	res, err := s.exec(ctx, `UPDATE applications SET secret_hash = ? WHERE project_id = ? AND id = ?`, secretHash, projectID, id)
	return affectedOne(res, err, "rotate application secret")
}

// DeleteApplication removes an application. Its users stay: they belong to
// the project. Errors: ErrNotFound.
func (s *Store) DeleteApplication(ctx context.Context, projectID, id string) error {
	res, err := s.exec(ctx, `DELETE FROM applications WHERE project_id = ? AND id = ?`, projectID, id)
	return affectedOne(res, err, "delete application")
}

// ProjectOrigins is one application's allowed CORS origins.
type ProjectOrigins struct {
	ProjectID string
	Origins   []string
}

// CORSOrigins lists the allowed CORS origins of every application that has
// any, in any project: the server answers a browser's preflight before it
// knows the project.
func (s *Store) CORSOrigins(ctx context.Context) ([]ProjectOrigins, error) {
	rows, err := s.query(ctx, `SELECT project_id, allowed_cors_origins FROM applications WHERE allowed_cors_origins <> '[]'`)
	if err != nil {
		return nil, fmt.Errorf("list CORS origins: %w", err)
	}
	defer rows.Close()
	var out []ProjectOrigins
	for rows.Next() {
		var p ProjectOrigins
		var raw string
		if err := rows.Scan(&p.ProjectID, &raw); err != nil {
			return nil, fmt.Errorf("list CORS origins: %w", err)
		}
		if err := json.Unmarshal([]byte(raw), &p.Origins); err != nil {
			return nil, fmt.Errorf("stored CORS origins of project %s: %w", p.ProjectID, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
