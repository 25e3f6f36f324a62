package iam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// Developer is the wire shape of a developer in a project.
type Developer struct {
	ID           string          `json:"id"`
	Email        string          `json:"email"`
	Name         string          `json:"name"`
	Profile      string          `json:"profile"`
	Roles        []RoleStub      `json:"roles"`
	AccessPolicy json.RawMessage `json:"accessPolicy,omitempty"`
	Warnings     []string        `json:"warnings,omitempty"`
}

// DeveloperInvite is the body of POST /developer/invite.
type DeveloperInvite struct {
	Email        string          `json:"email"`
	Practitioner json.RawMessage `json:"practitioner"`
	Roles        []string        `json:"roles"`
	AccessPolicy json.RawMessage `json:"accessPolicy"`
}

// Invitation is the answer to an invite: the only time the link is shown.
type Invitation struct {
	ID             string     `json:"id"`
	Email          string     `json:"email"`
	PractitionerID string     `json:"practitionerId"`
	Roles          []RoleStub `json:"roles"`
	InvitationURL  string     `json:"invitationUrl"`
	Warnings       []string   `json:"warnings,omitempty"`
}

// DeveloperUpdate is the body of PATCH /developer/{id}.
type DeveloperUpdate struct {
	Roles        *[]string       `json:"roles"`
	AccessPolicy json.RawMessage `json:"accessPolicy"`
}

// invitationTTL bounds how long an invitation link works.
const invitationTTL = 7 * 24 * time.Hour

func developerOut(d store.Developer, roles []RoleStub) Developer {
	if roles == nil {
		roles = []RoleStub{}
	}
	return Developer{ID: d.ID, Email: d.Email, Name: d.Name, Profile: "Practitioner/" + d.PractitionerID, Roles: roles, AccessPolicy: d.AccessPolicy}
}

// practitionerName reads a display name from a Practitioner resource, if any.
func practitionerName(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var p struct {
		ResourceType string `json:"resourceType"`
		Name         []struct {
			Text   string   `json:"text"`
			Given  []string `json:"given"`
			Family string   `json:"family"`
		} `json:"name"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return "", fault.Invalid("practitioner must be a FHIR Practitioner resource: %v", err)
	}
	if p.ResourceType != "" && p.ResourceType != "Practitioner" {
		return "", fault.Invalid("practitioner.resourceType must be Practitioner")
	}
	if len(p.Name) == 0 {
		return "", nil
	}
	if p.Name[0].Text != "" {
		return p.Name[0].Text, nil
	}
	return strings.TrimSpace(strings.Join(append(p.Name[0].Given, p.Name[0].Family), " ")), nil
}

// InviteDeveloper adds a developer to the project and returns a one-time
// invitation link (its hash is stored; the link itself is never stored).
func (s *Service) InviteDeveloper(ctx context.Context, projectID string, in DeveloperInvite) (Invitation, error) {
	addr, err := mail.ParseAddress(in.Email)
	if err != nil || addr.Address != in.Email {
		return Invitation{}, fault.Invalid("email must be a plain email address")
	}
	email := strings.ToLower(in.Email)
	name, err := practitionerName(in.Practitioner)
	if err != nil {
		return Invitation{}, err
	}
	pol, warnings, err := parsePolicy(in.AccessPolicy)
	if err != nil {
		return Invitation{}, err
	}
	token, err := auth.NewSecret()
	if err != nil {
		return Invitation{}, err
	}
	now := s.now()
	inv := Invitation{Email: email, PractitionerID: newID(), Warnings: warnings, InvitationURL: s.invitationBase + token}
	err = s.store.WithTx(ctx, func(tx *store.Tx) error {
		if inv.Roles, err = checkRoles(ctx, &tx.Store, projectID, in.Roles); err != nil {
			return err
		}
		id, err := tx.GetDeveloperAccountByEmail(ctx, email)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err != nil {
			id = newID()
			if err := tx.CreateDeveloperAccount(ctx, id, email, name, now); err != nil {
				return storeErr(err, "developer "+email)
			}
		}
		inv.ID = id
		d := store.Developer{ProjectID: projectID, ID: id, PractitionerID: inv.PractitionerID, AccessPolicy: pol,
			InvitationHash: auth.HashSecret(token), InvitationExpiresAt: now.Add(invitationTTL), CreatedAt: now}
		if err := tx.AddDeveloper(ctx, d); err != nil {
			return storeErr(err, fmt.Sprintf("developer %s in this project", email))
		}
		return tx.SetRoles(ctx, projectID, holderOf(auth.KindDeveloper, id), in.Roles)
	})
	if err != nil {
		return Invitation{}, err
	}
	return inv, nil
}

// GetDeveloper returns a developer of the project.
func (s *Service) GetDeveloper(ctx context.Context, projectID, id string) (Developer, error) {
	d, err := s.store.GetDeveloper(ctx, projectID, id)
	if err != nil {
		return Developer{}, storeErr(err, "developer "+id)
	}
	roles, err := roleStubs(ctx, s.store, projectID, holderOf(auth.KindDeveloper, id))
	if err != nil {
		return Developer{}, err
	}
	return developerOut(d, roles), nil
}

// ListDevelopers returns the project's developers (id, email, name, profile).
func (s *Service) ListDevelopers(ctx context.Context, projectID string) ([]Developer, error) {
	ds, err := s.store.ListDevelopers(ctx, projectID)
	if err != nil {
		return nil, err
	}
	out := make([]Developer, 0, len(ds))
	for _, d := range ds {
		o := developerOut(d, nil)
		o.Roles, o.AccessPolicy = nil, nil
		out = append(out, o)
	}
	return out, nil
}

// UpdateDeveloper changes roles and/or the inline policy.
func (s *Service) UpdateDeveloper(ctx context.Context, projectID, id string, in DeveloperUpdate) (Developer, error) {
	var warnings []string
	err := s.write(ctx, projectID, func(tx *store.Tx) error {
		d, err := tx.GetDeveloper(ctx, projectID, id)
		if err != nil {
			return storeErr(err, "developer "+id)
		}
		if in.AccessPolicy != nil {
			pol, ws, err := parsePolicy(in.AccessPolicy)
			if err != nil {
				return err
			}
			warnings = ws
			if err := tx.UpdateDeveloperPolicy(ctx, projectID, d.ID, pol); err != nil {
				return err
			}
		}
		if in.Roles != nil {
			if _, err := checkRoles(ctx, &tx.Store, projectID, *in.Roles); err != nil {
				return err
			}
			return tx.SetRoles(ctx, projectID, holderOf(auth.KindDeveloper, id), *in.Roles)
		}
		return nil
	})
	if err != nil {
		return Developer{}, err
	}
	out, err := s.GetDeveloper(ctx, projectID, id)
	out.Warnings = warnings
	return out, err
}

// RemoveDeveloper takes a developer out of the project.
func (s *Service) RemoveDeveloper(ctx context.Context, projectID, id string) error {
	if err := s.write(ctx, projectID, func(tx *store.Tx) error { return tx.RemoveDeveloper(ctx, projectID, id) }); err != nil {
		return storeErr(err, "developer "+id)
	}
	return nil
}

// MinPasswordLength is the shortest password a developer may choose.
const MinPasswordLength = 12

// AcceptInvitation consumes a one-time invitation link and sets the
// developer's password (bcrypt). Errors: NotFound for an unknown, used or
// expired link; Invalid for a weak password.
func (s *Service) AcceptInvitation(ctx context.Context, token, password string) (Developer, error) {
	if err := checkPassword(password); err != nil {
		return Developer{}, err
	}
	gone := fault.NotFound("this invitation link is unknown, expired or already used")
	hash := auth.HashSecret(token)
	d, err := s.store.FindInvitation(ctx, hash)
	if err != nil {
		return Developer{}, notFoundAs(err, gone)
	}
	if s.now().After(d.InvitationExpiresAt) {
		return Developer{}, gone
	}
	// The same cost as users' passwords (and rehashed the same way).
	pw, err := s.hashPassword(password)
	if err != nil {
		return Developer{}, err
	}
	if err := s.write(ctx, d.ProjectID, func(tx *store.Tx) error { return tx.AcceptInvitation(ctx, d.ProjectID, d.ID, hash, pw) }); err != nil {
		return Developer{}, notFoundAs(err, gone)
	}
	return s.GetDeveloper(ctx, d.ProjectID, d.ID)
}

// ProjectStub names a project.
type ProjectStub struct{ ID, Name string }

// DeveloperProjects lists the projects a developer account belongs to (the
// console's project switcher). It reads membership only: what the
// developer may do in each is still decided per request.
func (s *Service) DeveloperProjects(ctx context.Context, developerID string) ([]ProjectStub, error) {
	ps, err := s.store.DeveloperProjects(ctx, developerID)
	if err != nil {
		return nil, err
	}
	out := make([]ProjectStub, 0, len(ps))
	for _, p := range ps {
		out = append(out, ProjectStub{ID: p.ID, Name: p.Name})
	}
	return out, nil
}
