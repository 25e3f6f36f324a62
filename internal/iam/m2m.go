package iam

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/smart/clientauth"
	"github.com/wardhealth/ward/internal/store"
)

// M2M is the wire shape of an M2M client. The secret is never part of it.
type M2M struct {
	ID       string `json:"id"`
	ClientID string `json:"clientId"`
	Profile  string `json:"profile"`
	JWKSURL  string `json:"jwksUrl,omitempty"`
	// JWKS is an inline key set for private_key_jwt (SMART Backend
	// Services), for clients that publish no JWKS URL.
	JWKS         json.RawMessage `json:"jwks,omitempty"`
	Name         string          `json:"name"`
	Description  string          `json:"description,omitempty"`
	AccessPolicy json.RawMessage `json:"accessPolicy,omitempty"`
	Roles        []RoleStub      `json:"roles"`
	Warnings     []string        `json:"warnings,omitempty"`
	// ExecutionRoleID marks a zambda execution role's hidden client.
	ExecutionRoleID string `json:"executionRoleId,omitempty"`
}

// M2MInput creates or (nil fields left alone) updates a client.
type M2MInput struct {
	Name         *string         `json:"name"`
	Description  *string         `json:"description"`
	AccessPolicy json.RawMessage `json:"accessPolicy"`
	Roles        *[]string       `json:"roles"`
	JWKSURL      *string         `json:"jwksUrl"`
	JWKS         json.RawMessage `json:"jwks"` // null removes it
	Profile      *string         `json:"profile"`
}

// validJWKS checks an inline JWKS and returns it compacted; JSON null or
// absent gives "".
func validJWKS(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if _, err := clientauth.ParseJWKS(raw); err != nil {
		return "", fault.Invalid("jwks: %v", err)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "", fault.Invalid("jwks is not valid JSON")
	}
	return b.String(), nil
}

func m2mOut(c store.M2MClient, roles []RoleStub) M2M {
	if roles == nil {
		roles = []RoleStub{}
	}
	out := M2M{ID: c.ID, ClientID: c.ClientID, Profile: "Device/" + c.ID, JWKSURL: c.JWKSURL, Name: c.Name,
		Description: c.Description, AccessPolicy: c.AccessPolicy, Roles: roles, ExecutionRoleID: c.ExecutionRoleID}
	if c.JWKS != "" {
		out.JWKS = json.RawMessage(c.JWKS)
	}
	return out
}

func validJWKSURL(u *string) (string, error) {
	if u == nil || *u == "" {
		return "", nil
	}
	parsed, err := url.Parse(*u)
	if err != nil || (parsed.Scheme != "https" && parsed.Scheme != "http") || parsed.Host == "" {
		return "", fault.Invalid("jwksUrl must be an absolute http(s) URL")
	}
	return *u, nil
}

// CreateM2M adds a client (its secret comes from RotateM2MSecret). Either an
// accessPolicy or roles is required.
func (s *Service) CreateM2M(ctx context.Context, projectID string, in M2MInput) (M2M, error) {
	name, err := validName(in.Name, "M2M client")
	if err != nil {
		return M2M{}, err
	}
	pol, warnings, err := parsePolicy(in.AccessPolicy)
	if err != nil {
		return M2M{}, err
	}
	var roleIDs []string
	if in.Roles != nil {
		roleIDs = *in.Roles
	}
	if pol == nil && len(roleIDs) == 0 {
		return M2M{}, fault.Invalid("an M2M client needs roles or an accessPolicy")
	}
	jwks, err := validJWKSURL(in.JWKSURL)
	if err != nil {
		return M2M{}, err
	}
	inline, err := validJWKS(in.JWKS)
	if err != nil {
		return M2M{}, err
	}
	// An unusable random secret until the first rotation hands one out.
	unusable, err := auth.NewSecret()
	if err != nil {
		return M2M{}, err
	}
	c := store.M2MClient{ProjectID: projectID, ID: newID(), ClientID: newClientID(), SecretHash: auth.HashSecret(unusable),
		Name: name, AccessPolicy: pol, JWKSURL: jwks, JWKS: inline, CreatedAt: s.now()}
	if in.Description != nil {
		c.Description = *in.Description
	}
	var stubs []RoleStub
	err = s.store.WithTx(ctx, func(tx *store.Tx) error {
		if stubs, err = checkRoles(ctx, &tx.Store, projectID, roleIDs); err != nil {
			return err
		}
		if err := tx.CreateM2M(ctx, c); err != nil {
			return storeErr(err, "M2M client")
		}
		return tx.SetRoles(ctx, projectID, holderOf(auth.KindM2M, c.ID), roleIDs)
	})
	if err != nil {
		return M2M{}, err
	}
	out := m2mOut(c, stubs)
	out.Warnings = warnings
	return out, nil
}

func newClientID() string {
	id := newID()
	b := []byte(id)
	return base64.RawURLEncoding.EncodeToString(b)[:32]
}

// GetM2M returns a visible client. Execution-role clients are hidden.
func (s *Service) GetM2M(ctx context.Context, projectID, id string) (M2M, error) {
	c, err := s.store.GetM2M(ctx, projectID, id)
	if err != nil || c.ExecutionRoleID != "" {
		return M2M{}, fault.NotFound("M2M client %s not found", id)
	}
	stubs, err := roleStubs(ctx, s.store, projectID, holderOf(auth.KindM2M, id))
	if err != nil {
		return M2M{}, err
	}
	return m2mOut(c, stubs), nil
}

// ListM2M returns the project's visible clients (without roles, as Oystehr).
func (s *Service) ListM2M(ctx context.Context, projectID string, f store.M2MFilter) ([]M2M, error) {
	clients, err := s.store.ListM2M(ctx, projectID, f)
	if err != nil {
		return nil, err
	}
	out := make([]M2M, 0, len(clients))
	for _, c := range clients {
		o := m2mOut(c, nil)
		o.Roles = nil
		out = append(out, o)
	}
	return out, nil
}

// UpdateM2M changes the fields set in in.
func (s *Service) UpdateM2M(ctx context.Context, projectID, id string, in M2MInput) (M2M, error) {
	var out M2M
	err := s.write(ctx, projectID, func(tx *store.Tx) error {
		c, err := tx.GetM2M(ctx, projectID, id)
		if err != nil || c.ExecutionRoleID != "" {
			return fault.NotFound("M2M client %s not found", id)
		}
		if in.Name != nil {
			if c.Name, err = validName(in.Name, "M2M client"); err != nil {
				return err
			}
		}
		if in.Description != nil {
			c.Description = *in.Description
		}
		if in.JWKSURL != nil {
			if c.JWKSURL, err = validJWKSURL(in.JWKSURL); err != nil {
				return err
			}
		}
		if in.JWKS != nil {
			if c.JWKS, err = validJWKS(in.JWKS); err != nil {
				return err
			}
		}
		if in.AccessPolicy != nil {
			pol, ws, err := parsePolicy(in.AccessPolicy)
			if err != nil {
				return err
			}
			c.AccessPolicy, out.Warnings = pol, ws
		}
		if in.Roles != nil {
			if _, err := checkRoles(ctx, &tx.Store, projectID, *in.Roles); err != nil {
				return err
			}
			if err := tx.SetRoles(ctx, projectID, holderOf(auth.KindM2M, id), *in.Roles); err != nil {
				return err
			}
		}
		if err := tx.UpdateM2M(ctx, c); err != nil {
			return storeErr(err, "M2M client "+id)
		}
		stubs, err := roleStubs(ctx, &tx.Store, projectID, holderOf(auth.KindM2M, id))
		if err != nil {
			return err
		}
		warnings := out.Warnings
		out = m2mOut(c, stubs)
		out.Warnings = warnings
		return nil
	})
	return out, err
}

// DeleteM2M removes a visible client. Its tokens stop working at once
// because the principal no longer resolves.
func (s *Service) DeleteM2M(ctx context.Context, projectID, id string) error {
	c, err := s.store.GetM2M(ctx, projectID, id)
	if err != nil || c.ExecutionRoleID != "" {
		return fault.NotFound("M2M client %s not found", id)
	}
	if err := s.write(ctx, projectID, func(tx *store.Tx) error { return tx.DeleteM2M(ctx, projectID, id) }); err != nil {
		return storeErr(err, "M2M client "+id)
	}
	return nil
}

// RotateM2MSecret issues a new secret; the old one stops working.
func (s *Service) RotateM2MSecret(ctx context.Context, projectID, id string) (string, error) {
	c, err := s.store.GetM2M(ctx, projectID, id)
	if err != nil || c.ExecutionRoleID != "" {
		return "", fault.NotFound("M2M client %s not found", id)
	}
	secret, err := auth.NewSecret()
	if err != nil {
		return "", err
	}
	if err := s.store.SetM2MSecret(ctx, projectID, id, auth.HashSecret(secret)); err != nil {
		return "", storeErr(err, "M2M client "+id)
	}
	return secret, nil
}

// AuthenticateClient checks client credentials and returns the principal
// they identify. Errors: Unauthorized (same message for every failure of
// the credentials); a store error as it is.
func (s *Service) AuthenticateClient(ctx context.Context, clientID, secret string) (auth.Principal, error) {
	bad := fault.Unauthorized("invalid client credentials")
	if clientID == "" || secret == "" {
		return auth.Principal{}, bad
	}
	c, err := s.store.GetM2MByClientID(ctx, clientID)
	if err != nil {
		return auth.Principal{}, notFoundAs(err, bad)
	}
	if !auth.SecretMatches(secret, c.SecretHash) {
		return auth.Principal{}, bad
	}
	return auth.Principal{ProjectID: c.ProjectID, Kind: auth.KindM2M, ID: c.ID, ClientID: c.ClientID}, nil
}

// Me returns the calling client, hidden execution-role clients included.
func (s *Service) Me(ctx context.Context, p auth.Principal) (M2M, error) {
	c, err := s.store.GetM2M(ctx, p.ProjectID, p.ID)
	if err != nil {
		return M2M{}, storeErr(err, fmt.Sprintf("M2M client %s", p.ID))
	}
	stubs, err := roleStubs(ctx, s.store, p.ProjectID, holderOf(auth.KindM2M, p.ID))
	if err != nil {
		return M2M{}, err
	}
	return m2mOut(c, stubs), nil
}

// ExecutionRoleClient returns the hidden M2M client that acts for zambdas
// with the execution role roleID, creating it on first use (seed 000: one
// client per role, shared by every zambda with that role). It holds the
// role and nothing else, so editing the role changes what it may do.
func (s *Service) ExecutionRoleClient(ctx context.Context, projectID, roleID string) (store.M2MClient, error) {
	c, err := s.store.GetExecutionRoleClient(ctx, projectID, roleID)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.M2MClient{}, err
	}
	// No secret is ever handed out: Ward issues its tokens directly.
	unusable, err := auth.NewSecret()
	if err != nil {
		return store.M2MClient{}, err
	}
	c = store.M2MClient{ProjectID: projectID, ID: newID(), ClientID: newClientID(), SecretHash: auth.HashSecret(unusable),
		Name: "execution role " + roleID, ExecutionRoleID: roleID, CreatedAt: s.now()}
	err = s.store.WithTx(ctx, func(tx *store.Tx) error {
		if _, err := checkRoles(ctx, &tx.Store, projectID, []string{roleID}); err != nil {
			return err
		}
		if err := tx.CreateM2M(ctx, c); err != nil {
			return err
		}
		return tx.SetRoles(ctx, projectID, holderOf(auth.KindM2M, c.ID), []string{roleID})
	})
	if errors.Is(err, store.ErrConflict) {
		// Another request or replica created it first: use that one.
		return s.store.GetExecutionRoleClient(ctx, projectID, roleID)
	}
	if err != nil {
		return store.M2MClient{}, err
	}
	s.changed(ctx, projectID)
	return c, nil
}
