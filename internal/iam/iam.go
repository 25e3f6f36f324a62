// Package iam holds projects, roles, M2M clients and developers, and decides
// requests against a principal's current effective access policy.
package iam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/policy"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
)

// Service is the IAM capability. Construct with New.
type Service struct {
	// Policies decides requests (Authorize, PolicySet); the Service's
	// changes invalidate what it cached.
	*Policies
	store *store.Store
	now   func() time.Time
	log   *slog.Logger // failures of best-effort work the caller is not told of
	// InvitationBase is the URL prefix of developer invitation links.
	invitationBase string
	// acct holds the hooks and login state of users and applications
	// (login.go); its zero value works.
	acct accounts
	// sealer seals users' TOTP secrets; nil: no multi-factor sign-in.
	sealer *seal.Sealer
}

// Deps are what a Service calls besides its store, given at construction.
type Deps struct {
	// Policies decides requests; nil: the Service makes its own. Pass the
	// one the FHIR service decides through, so both see a change at once.
	Policies *Policies
	// Profiles creates users' FHIR profile resources; nil: an invitation
	// must name an existing profile and patients cannot sign up.
	Profiles ProfileWriter
	// Sealer seals users' TOTP secrets with the master key; nil: users
	// cannot enrol in multi-factor sign-in (nor applications require it).
	Sealer *seal.Sealer
	// Log hears of best-effort work that failed after the caller's change
	// committed; nil discards it.
	Log *slog.Logger
}

// New returns a Service on st. invitationBase is the public URL that
// invitation links start with (e.g. "http://127.0.0.1:8080/invite/").
func New(st *store.Store, invitationBase string, now func() time.Time, d Deps) *Service {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Policies == nil {
		d.Policies = NewPolicies(st, d.Log)
	}
	return &Service{Policies: d.Policies, store: st, now: now, log: d.Log, invitationBase: invitationBase,
		acct: accounts{profiles: d.Profiles}, sealer: d.Sealer}
}

// RoleStub is how a principal's roles are listed.
type RoleStub struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func newID() string { return uuid.NewString() }

// parsePolicy validates policy JSON as written by a client and returns its
// normalised form plus warnings (unmet dependencies). nil in, nil out.
func parsePolicy(raw json.RawMessage) ([]byte, []string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil, nil
	}
	doc, err := policy.Parse(raw)
	if err != nil {
		return nil, nil, fault.Invalid("accessPolicy: %v", err)
	}
	warnings, err := policy.Validate(doc)
	if err != nil {
		return nil, nil, fault.Invalid("accessPolicy: %v", err)
	}
	norm, err := json.Marshal(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal policy: %w", err)
	}
	var ws []string
	for _, w := range warnings {
		ws = append(ws, fmt.Sprint(w))
	}
	return norm, ws, nil
}

// storeErr maps store errors to client-safe faults about what.
func storeErr(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return fault.NotFound("%s not found", what)
	case errors.Is(err, store.ErrConflict):
		return fault.Conflict("%s already exists", what)
	}
	return err
}

// notFoundAs is what the caller hears of a store error: as, when the row
// is not there; otherwise the error itself, internal (a 5xx, its cause
// logged), so that a database outage never looks like bad credentials or
// an unknown link.
func notFoundAs(err, as error) error {
	if errors.Is(err, store.ErrNotFound) {
		return as
	}
	return err
}

// checkRoles verifies every id names a role of the project and returns stubs.
func checkRoles(ctx context.Context, st *store.Store, projectID string, ids []string) ([]RoleStub, error) {
	roles, err := st.RolesByID(ctx, projectID, ids)
	if err != nil {
		return nil, err
	}
	byID := map[string]string{}
	for _, r := range roles {
		byID[r.ID] = r.Name
	}
	stubs := make([]RoleStub, 0, len(ids))
	seen := map[string]bool{}
	for _, id := range ids {
		name, ok := byID[id]
		if !ok {
			return nil, fault.Invalid("roles: role %q does not exist in this project", id)
		}
		if !seen[id] {
			seen[id] = true
			stubs = append(stubs, RoleStub{ID: id, Name: name})
		}
	}
	return stubs, nil
}

// roleStubs lists the roles a principal holds.
func roleStubs(ctx context.Context, st *store.Store, projectID string, h store.Holder) ([]RoleStub, error) {
	ids, err := st.RolesOf(ctx, projectID, h)
	if err != nil {
		return nil, err
	}
	return checkRoles(ctx, st, projectID, ids)
}
