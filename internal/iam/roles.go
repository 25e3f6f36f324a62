package iam

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// Role is the wire shape of a role.
type Role struct {
	ID           string          `json:"id"`
	Name         string          `json:"name"`
	Description  string          `json:"description,omitempty"`
	AccessPolicy json.RawMessage `json:"accessPolicy"`
	MemberCount  *int            `json:"memberCount,omitempty"`
	Warnings     []string        `json:"warnings,omitempty"`
}

// RoleInput creates or (with nil fields left alone) updates a role.
type RoleInput struct {
	Name         *string         `json:"name"`
	Description  *string         `json:"description"`
	AccessPolicy json.RawMessage `json:"accessPolicy"`
}

var emptyPolicy = []byte(`{"rule":[]}`)

func roleOut(r store.Role) Role {
	return Role{ID: r.ID, Name: r.Name, Description: r.Description, AccessPolicy: r.AccessPolicy}
}

func validName(name *string, what string) (string, error) {
	if name == nil || strings.TrimSpace(*name) == "" {
		return "", fault.Invalid("%s name is required", what)
	}
	if len(*name) > 200 {
		return "", fault.Invalid("%s name is longer than 200 characters", what)
	}
	return strings.TrimSpace(*name), nil
}

// CreateRole adds a role. Errors: Invalid (name, policy), Conflict (name taken).
func (s *Service) CreateRole(ctx context.Context, projectID string, in RoleInput) (Role, error) {
	name, err := validName(in.Name, "role")
	if err != nil {
		return Role{}, err
	}
	pol, warnings, err := parsePolicy(in.AccessPolicy)
	if err != nil {
		return Role{}, err
	}
	if pol == nil {
		pol = emptyPolicy
	}
	now := s.now()
	r := store.Role{ProjectID: projectID, ID: newID(), Name: name, AccessPolicy: pol, CreatedAt: now, UpdatedAt: now}
	if in.Description != nil {
		r.Description = *in.Description
	}
	if err := s.store.CreateRole(ctx, r); err != nil {
		return Role{}, storeErr(err, fmt.Sprintf("a role named %q", name))
	}
	out := roleOut(r)
	out.Warnings = warnings
	return out, nil
}

// GetRole returns one role. Errors: NotFound.
func (s *Service) GetRole(ctx context.Context, projectID, id string) (Role, error) {
	r, err := s.store.GetRole(ctx, projectID, id)
	if err != nil {
		return Role{}, storeErr(err, "role "+id)
	}
	return roleOut(r), nil
}

// ListRoles returns every role of the project with its member count.
func (s *Service) ListRoles(ctx context.Context, projectID string) ([]Role, error) {
	roles, err := s.store.ListRoles(ctx, projectID)
	if err != nil {
		return nil, err
	}
	counts, err := s.store.RoleMemberCounts(ctx, projectID)
	if err != nil {
		return nil, err
	}
	out := make([]Role, 0, len(roles))
	for _, r := range roles {
		n := counts[r.ID]
		o := roleOut(r)
		o.MemberCount = &n
		out = append(out, o)
	}
	return out, nil
}

// UpdateRole changes the fields set in in. Every holder's next request sees it.
func (s *Service) UpdateRole(ctx context.Context, projectID, id string, in RoleInput) (Role, error) {
	r, err := s.store.GetRole(ctx, projectID, id)
	if err != nil {
		return Role{}, storeErr(err, "role "+id)
	}
	if in.Name != nil {
		if r.Name, err = validName(in.Name, "role"); err != nil {
			return Role{}, err
		}
	}
	if in.Description != nil {
		r.Description = *in.Description
	}
	var warnings []string
	if in.AccessPolicy != nil {
		pol, ws, err := parsePolicy(in.AccessPolicy)
		if err != nil {
			return Role{}, err
		}
		if pol == nil {
			pol = emptyPolicy
		}
		r.AccessPolicy, warnings = pol, ws
	}
	r.UpdatedAt = s.now()
	if err := s.write(ctx, projectID, func(tx *store.Tx) error { return tx.UpdateRole(ctx, r) }); err != nil {
		return Role{}, storeErr(err, fmt.Sprintf("a role named %q", r.Name))
	}
	out := roleOut(r)
	out.Warnings = warnings
	return out, nil
}

// DeleteRole removes a role nobody holds. Errors: NotFound; Conflict naming
// the holders (or the project setting) that still use it.
func (s *Service) DeleteRole(ctx context.Context, projectID, id string) error {
	return s.write(ctx, projectID, func(tx *store.Tx) error {
		r, err := tx.GetRole(ctx, projectID, id)
		if err != nil {
			return storeErr(err, "role "+id)
		}
		var uses []string
		p, err := tx.GetProject(ctx, projectID)
		if err != nil {
			return err
		}
		if p.DefaultPatientRoleID == id {
			uses = append(uses, "the project's default patient role")
		}
		if p.DefaultSSOUserRoleID == id {
			uses = append(uses, "the project's default SSO user role")
		}
		holders, err := tx.RoleHolders(ctx, projectID, id)
		if err != nil {
			return err
		}
		var execClient string
		for _, h := range holders {
			if h.Kind == "m2m" {
				if c, err := tx.GetM2M(ctx, projectID, h.ID); err == nil && c.ExecutionRoleID == id {
					execClient = c.ID // goes with the role once no zambda uses it
					continue
				}
			}
			uses = append(uses, describeHolder(ctx, &tx.Store, projectID, h))
		}
		zs, err := tx.ZambdasWithRole(ctx, projectID, id)
		if err != nil {
			return err
		}
		for _, z := range zs {
			uses = append(uses, fmt.Sprintf("zambda %s (%s) as its execution role", z.Name, z.ID))
		}
		if len(uses) == 0 && execClient != "" {
			if err := tx.DeleteM2M(ctx, projectID, execClient); err != nil {
				return err
			}
		}
		if len(uses) > 0 {
			return fault.Conflict("role %q (%s) is in use and cannot be deleted; it is held by: %s. Remove it from them first.", r.Name, id, strings.Join(uses, "; "))
		}
		return storeErr(tx.DeleteRole(ctx, projectID, id), "role "+id)
	})
}

// describeHolder names a holder for an error message.
func describeHolder(ctx context.Context, st *store.Store, projectID string, h store.Holder) string {
	switch h.Kind {
	case "m2m":
		if c, err := st.GetM2M(ctx, projectID, h.ID); err == nil {
			if c.ExecutionRoleID != "" {
				return fmt.Sprintf("execution role client %s", h.ID)
			}
			return fmt.Sprintf("M2M client %s (%s)", h.ID, c.Name)
		}
	case "developer":
		if d, err := st.GetDeveloper(ctx, projectID, h.ID); err == nil {
			return fmt.Sprintf("developer %s (%s)", h.ID, d.Email)
		}
	case "user":
		if u, err := st.GetUser(ctx, projectID, h.ID); err == nil {
			return fmt.Sprintf("user %s (%s)", h.ID, firstNonEmpty(u.Email, u.PhoneNumber, u.Name))
		}
	}
	return h.Kind + " " + h.ID
}

// ValidatePolicy checks an access policy as creating a role does: the
// same Invalid fault and message ("accessPolicy: ... rule[i]..."), and
// the warnings a saved role would carry.
func ValidatePolicy(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 {
		return nil, fault.Invalid("accessPolicy is required")
	}
	_, warnings, err := parsePolicy(raw)
	return warnings, err
}
