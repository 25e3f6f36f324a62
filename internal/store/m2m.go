package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// M2MClient is a machine client authenticating with client credentials.
// ExecutionRoleID is set on the hidden client that backs a zambda execution role.
type M2MClient struct {
	ProjectID       string
	ID              string
	ClientID        string
	SecretHash      string
	Name            string
	Description     string
	AccessPolicy    []byte // nil when the client has no inline policy
	JWKSURL         string
	JWKS            string // an inline JWKS (JSON), for private_key_jwt without a URL
	ExecutionRoleID string
	CreatedAt       time.Time
}

const m2mCols = `project_id, id, client_id, secret_hash, name, description, access_policy, jwks_url, jwks, execution_role_id, created_at`

func scanM2M(row interface{ Scan(...any) error }) (M2MClient, error) {
	var c M2MClient
	var policy, execRole sql.NullString
	var created int64
	if err := row.Scan(&c.ProjectID, &c.ID, &c.ClientID, &c.SecretHash, &c.Name, &c.Description, &policy, &c.JWKSURL, &c.JWKS, &execRole, &created); err != nil {
		return M2MClient{}, err
	}
	if policy.Valid {
		c.AccessPolicy = []byte(policy.String)
	}
	c.ExecutionRoleID, c.CreatedAt = execRole.String, fromMS(created)
	return c, nil
}

func nullBytes(b []byte) sql.NullString {
	return sql.NullString{String: string(b), Valid: b != nil}
}

// CreateM2M inserts c. Errors: ErrConflict.
func (s *Store) CreateM2M(ctx context.Context, c M2MClient) error {
	_, err := s.exec(ctx, `INSERT INTO m2m_clients (`+m2mCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ProjectID, c.ID, c.ClientID, c.SecretHash, c.Name, c.Description, nullBytes(c.AccessPolicy), c.JWKSURL, c.JWKS, nullString(c.ExecutionRoleID), ms(c.CreatedAt))
	if err != nil {
		return fmt.Errorf("create m2m client: %w", err)
	}
	return nil
}

// GetM2M returns one client of the project. Errors: ErrNotFound.
func (s *Store) GetM2M(ctx context.Context, projectID, id string) (M2MClient, error) {
	c, err := scanM2M(s.queryRow(ctx, `SELECT `+m2mCols+` FROM m2m_clients WHERE project_id = ? AND id = ?`, projectID, id))
	if err != nil {
		return M2MClient{}, fmt.Errorf("get m2m client: %w", s.mapErr(err))
	}
	return c, nil
}

// GetM2MByClientID finds a client by its OAuth client id, in any project
// (the token endpoint learns the project from the client). Errors: ErrNotFound.
func (s *Store) GetM2MByClientID(ctx context.Context, clientID string) (M2MClient, error) {
	c, err := scanM2M(s.queryRow(ctx, `SELECT `+m2mCols+` FROM m2m_clients WHERE client_id = ?`, clientID))
	if err != nil {
		return M2MClient{}, fmt.Errorf("get m2m client: %w", s.mapErr(err))
	}
	return c, nil
}

// GetExecutionRoleClient returns the hidden client of a role. Errors: ErrNotFound.
func (s *Store) GetExecutionRoleClient(ctx context.Context, projectID, roleID string) (M2MClient, error) {
	c, err := scanM2M(s.queryRow(ctx, `SELECT `+m2mCols+` FROM m2m_clients WHERE project_id = ? AND execution_role_id = ?`, projectID, roleID))
	if err != nil {
		return M2MClient{}, fmt.Errorf("get execution role client: %w", s.mapErr(err))
	}
	return c, nil
}

// M2MFilter selects clients for ListM2M. Empty fields do not filter.
type M2MFilter struct {
	Name          string // substring, case-insensitive
	ID            string
	RoleID        string
	IncludeHidden bool // include execution-role clients
	SortByName    bool // else by id
	Descending    bool
	After         string // cursor: the sort key and id of the last row returned
	Limit         int    // 0 means no limit
}

// ListM2M returns the project's clients matching f.
func (s *Store) ListM2M(ctx context.Context, projectID string, f M2MFilter) ([]M2MClient, error) {
	where := []string{`project_id = ?`}
	args := []any{projectID}
	if !f.IncludeHidden {
		where = append(where, `execution_role_id IS NULL`)
	}
	if f.Name != "" {
		where = append(where, `LOWER(name) LIKE ?`)
		args = append(args, "%"+strings.ToLower(f.Name)+"%")
	}
	if f.ID != "" {
		where = append(where, `id = ?`)
		args = append(args, f.ID)
	}
	if f.RoleID != "" {
		where = append(where, `id IN (SELECT holder_id FROM role_holders WHERE project_id = ? AND holder_kind = 'm2m' AND role_id = ?)`)
		args = append(args, projectID, f.RoleID)
	}
	key, op, dir := "id", ">", "ASC"
	if f.SortByName {
		key = "name"
	}
	if f.Descending {
		op, dir = "<", "DESC"
	}
	if f.After != "" {
		sortVal, afterID, _ := strings.Cut(f.After, "\x00")
		if f.SortByName {
			where = append(where, `(name `+op+` ? OR (name = ? AND id `+op+` ?))`)
			args = append(args, sortVal, sortVal, afterID)
		} else {
			where = append(where, `id `+op+` ?`)
			args = append(args, afterID)
		}
	}
	q := `SELECT ` + m2mCols + ` FROM m2m_clients WHERE ` + strings.Join(where, " AND ") + ` ORDER BY ` + key + ` ` + dir + `, id ` + dir
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list m2m clients: %w", err)
	}
	defer rows.Close()
	var out []M2MClient
	for rows.Next() {
		c, err := scanM2M(rows)
		if err != nil {
			return nil, fmt.Errorf("list m2m clients: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// UpdateM2M overwrites name, description, policy and jwks url. Errors: ErrNotFound.
func (s *Store) UpdateM2M(ctx context.Context, c M2MClient) error {
	res, err := s.exec(ctx, `UPDATE m2m_clients SET name = ?, description = ?, access_policy = ?, jwks_url = ?, jwks = ? WHERE project_id = ? AND id = ?`,
		c.Name, c.Description, nullBytes(c.AccessPolicy), c.JWKSURL, c.JWKS, c.ProjectID, c.ID)
	return affectedOne(res, err, "update m2m client")
}

// SetM2MSecret replaces the client's secret hash. Errors: ErrNotFound.
func (s *Store) SetM2MSecret(ctx context.Context, projectID, id, secretHash string) error {
	res, err := s.exec(ctx, `UPDATE m2m_clients SET secret_hash = ? WHERE project_id = ? AND id = ?`, secretHash, projectID, id)
	return affectedOne(res, err, "rotate m2m secret")
}

// DeleteM2M removes a client and its role holdings. Errors: ErrNotFound.
func (s *Store) DeleteM2M(ctx context.Context, projectID, id string) error {
	if _, err := s.exec(ctx, `DELETE FROM role_holders WHERE project_id = ? AND holder_kind = 'm2m' AND holder_id = ?`, projectID, id); err != nil {
		return fmt.Errorf("delete m2m client: %w", err)
	}
	res, err := s.exec(ctx, `DELETE FROM m2m_clients WHERE project_id = ? AND id = ?`, projectID, id)
	return affectedOne(res, err, "delete m2m client")
}
