package store

import (
	"context"
	"fmt"
	"time"
)

// Role is a named access policy that principals hold.
type Role struct {
	ProjectID    string
	ID           string
	Name         string
	Description  string
	AccessPolicy []byte // policy JSON, validated by the caller
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Holder is a principal holding a role: kind is "m2m", "developer" or "user".
type Holder struct {
	Kind string
	ID   string
}

const roleCols = `project_id, id, name, description, access_policy, created_at, updated_at`

func scanRole(row interface{ Scan(...any) error }) (Role, error) {
	var r Role
	var policy string
	var created, updated int64
	if err := row.Scan(&r.ProjectID, &r.ID, &r.Name, &r.Description, &policy, &created, &updated); err != nil {
		return Role{}, err
	}
	r.AccessPolicy, r.CreatedAt, r.UpdatedAt = []byte(policy), fromMS(created), fromMS(updated)
	return r, nil
}

// CreateRole inserts r. Errors: ErrConflict if the name is taken in the project.
func (s *Store) CreateRole(ctx context.Context, r Role) error {
	_, err := s.exec(ctx, `INSERT INTO roles (`+roleCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		r.ProjectID, r.ID, r.Name, r.Description, string(r.AccessPolicy), ms(r.CreatedAt), ms(r.UpdatedAt))
	if err != nil {
		return fmt.Errorf("create role: %w", err)
	}
	return nil
}

// GetRole returns one role of the project. Errors: ErrNotFound.
func (s *Store) GetRole(ctx context.Context, projectID, id string) (Role, error) {
	r, err := scanRole(s.queryRow(ctx, `SELECT `+roleCols+` FROM roles WHERE project_id = ? AND id = ?`, projectID, id))
	if err != nil {
		return Role{}, fmt.Errorf("get role: %w", s.mapErr(err))
	}
	return r, nil
}

// ListRoles returns the project's roles by name.
func (s *Store) ListRoles(ctx context.Context, projectID string) ([]Role, error) {
	return s.rolesWhere(ctx, `project_id = ? ORDER BY name`, projectID)
}

// RolesByID returns those of ids that exist in the project, in no set order.
func (s *Store) RolesByID(ctx context.Context, projectID string, ids []string) ([]Role, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := []any{projectID}
	for _, id := range ids {
		args = append(args, id)
	}
	return s.rolesWhere(ctx, `project_id = ? AND id IN (`+placeholders(len(ids))+`)`, args...)
}

func (s *Store) rolesWhere(ctx context.Context, where string, args ...any) ([]Role, error) {
	rows, err := s.query(ctx, `SELECT `+roleCols+` FROM roles WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list roles: %w", err)
	}
	defer rows.Close()
	var out []Role
	for rows.Next() {
		r, err := scanRole(rows)
		if err != nil {
			return nil, fmt.Errorf("list roles: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// UpdateRole overwrites name, description and policy. Errors: ErrNotFound, ErrConflict.
func (s *Store) UpdateRole(ctx context.Context, r Role) error {
	res, err := s.exec(ctx, `UPDATE roles SET name = ?, description = ?, access_policy = ?, updated_at = ? WHERE project_id = ? AND id = ?`,
		r.Name, r.Description, string(r.AccessPolicy), ms(r.UpdatedAt), r.ProjectID, r.ID)
	return affectedOne(res, err, "update role")
}

// DeleteRole removes a role. Callers check holders first. Errors: ErrNotFound.
func (s *Store) DeleteRole(ctx context.Context, projectID, id string) error {
	res, err := s.exec(ctx, `DELETE FROM roles WHERE project_id = ? AND id = ?`, projectID, id)
	return affectedOne(res, err, "delete role")
}

// RoleHolders lists the principals holding the role.
func (s *Store) RoleHolders(ctx context.Context, projectID, roleID string) ([]Holder, error) {
	rows, err := s.query(ctx, `SELECT holder_kind, holder_id FROM role_holders WHERE project_id = ? AND role_id = ? ORDER BY holder_kind, holder_id`, projectID, roleID)
	if err != nil {
		return nil, fmt.Errorf("role holders: %w", err)
	}
	defer rows.Close()
	var out []Holder
	for rows.Next() {
		var h Holder
		if err := rows.Scan(&h.Kind, &h.ID); err != nil {
			return nil, fmt.Errorf("role holders: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// RoleMemberCounts maps role id to its number of holders in the project.
func (s *Store) RoleMemberCounts(ctx context.Context, projectID string) (map[string]int, error) {
	rows, err := s.query(ctx, `SELECT role_id, COUNT(*) FROM role_holders WHERE project_id = ? GROUP BY role_id`, projectID)
	if err != nil {
		return nil, fmt.Errorf("role member counts: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("role member counts: %w", err)
		}
		out[id] = n
	}
	return out, rows.Err()
}

// SetRoles replaces the roles a principal holds.
func (s *Store) SetRoles(ctx context.Context, projectID string, h Holder, roleIDs []string) error {
	if _, err := s.exec(ctx, `DELETE FROM role_holders WHERE project_id = ? AND holder_kind = ? AND holder_id = ?`, projectID, h.Kind, h.ID); err != nil {
		return fmt.Errorf("set roles: %w", err)
	}
	for _, id := range roleIDs {
		if _, err := s.exec(ctx, `INSERT INTO role_holders (project_id, role_id, holder_kind, holder_id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, projectID, id, h.Kind, h.ID); err != nil {
			return fmt.Errorf("set roles: %w", err)
		}
	}
	return nil
}

// RolesOf returns the role ids a principal holds, sorted.
func (s *Store) RolesOf(ctx context.Context, projectID string, h Holder) ([]string, error) {
	rows, err := s.query(ctx, `SELECT role_id FROM role_holders WHERE project_id = ? AND holder_kind = ? AND holder_id = ? ORDER BY role_id`, projectID, h.Kind, h.ID)
	if err != nil {
		return nil, fmt.Errorf("roles of: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("roles of: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

func placeholders(n int) string {
	b := make([]byte, 0, 2*n)
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '?')
	}
	return string(b)
}
