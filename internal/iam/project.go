package iam

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/provider"
	"github.com/wardhealth/ward/internal/store"
)

// Project is the wire shape of a project.
type Project struct {
	ID                 string    `json:"id"`
	Name               string    `json:"name"`
	Description        string    `json:"description"`
	SignupEnabled      bool      `json:"signupEnabled"`
	Sandbox            bool      `json:"sandbox"`
	DefaultPatientRole *RoleStub `json:"defaultPatientRole,omitempty"`
	DefaultSSOUserRole *RoleStub `json:"defaultSSOUserRole,omitempty"`
	FHIRVersion        string    `json:"fhirVersion"`
	// AuthorizerZambdaID is the function that validates bearer tokens from
	// an outside identity provider (SMART "HealthLake mode"); issuers
	// limits it to JWTs of those issuers.
	AuthorizerZambdaID string   `json:"authorizerZambdaId,omitempty"`
	AuthorizerIssuers  []string `json:"authorizerIssuers,omitempty"`
	// RateLimitPerMinute is requests per minute per principal (a Ward
	// setting): 0 takes the server's default (--rate-limit), -1 is none.
	RateLimitPerMinute int `json:"rateLimitPerMinute"`
	// Providers names the provider of each outside service (a Ward
	// setting, docs/providers.md), e.g. {"sms":"twilio"}; a service not
	// named uses "local".
	Providers map[string]string `json:"providers"`
}

// ProjectUpdate is the body of PATCH /project. A role id of null clears it.
type ProjectUpdate struct {
	Name                 *string         `json:"name"`
	Description          *string         `json:"description"`
	SignupEnabled        *bool           `json:"signupEnabled"`
	DefaultPatientRoleID json.RawMessage `json:"defaultPatientRoleId"`
	DefaultSSOUserRoleID json.RawMessage `json:"defaultSSOUserRoleId"`
	// AuthorizerZambdaID: a zambda id or name, or null to remove it.
	AuthorizerZambdaID json.RawMessage `json:"authorizerZambdaId"`
	AuthorizerIssuers  *[]string       `json:"authorizerIssuers"`
	RateLimitPerMinute *int            `json:"rateLimitPerMinute"`
	// Providers sets the services it names; a null value returns one to
	// its local provider.
	Providers map[string]*string `json:"providers"`
}

// MaxRateLimit bounds a project's rateLimitPerMinute (a million a minute
// is past what one principal can send).
const MaxRateLimit = 1_000_000

func (s *Service) projectOut(ctx context.Context, st *store.Store, p store.Project) (Project, error) {
	out := Project{ID: p.ID, Name: p.Name, Description: p.Description, SignupEnabled: p.SignupEnabled, Sandbox: p.Sandbox, FHIRVersion: "r4",
		AuthorizerZambdaID: p.AuthorizerZambdaID, AuthorizerIssuers: strings.Fields(p.AuthorizerIssuers), RateLimitPerMinute: p.RateLimit, Providers: map[string]string{}}
	if p.Providers != "" {
		if err := json.Unmarshal([]byte(p.Providers), &out.Providers); err != nil {
			return Project{}, fmt.Errorf("project %s providers: %w", p.ID, err)
		}
	}
	for _, r := range []struct {
		id  string
		dst **RoleStub
	}{{p.DefaultPatientRoleID, &out.DefaultPatientRole}, {p.DefaultSSOUserRoleID, &out.DefaultSSOUserRole}} {
		if r.id == "" {
			continue
		}
		stubs, err := checkRoles(ctx, st, p.ID, []string{r.id})
		if err != nil {
			continue // the role is gone; show no default
		}
		*r.dst = &stubs[0]
	}
	return out, nil
}

// GetProject returns the project.
func (s *Service) GetProject(ctx context.Context, id string) (Project, error) {
	p, err := s.store.GetProject(ctx, id)
	if err != nil {
		return Project{}, storeErr(err, "project "+id)
	}
	return s.projectOut(ctx, s.store, p)
}

// optionalID reads a JSON string-or-null field: (nil, false) when absent.
func optionalID(raw json.RawMessage, field string) (string, bool, error) {
	if raw == nil {
		return "", false, nil
	}
	if string(raw) == "null" {
		return "", true, nil
	}
	var id string
	if err := json.Unmarshal(raw, &id); err != nil {
		return "", false, fault.Invalid("%s must be a role id or null", field)
	}
	return id, true, nil
}

// UpdateProject changes the fields set in in.
func (s *Service) UpdateProject(ctx context.Context, id string, in ProjectUpdate) (Project, error) {
	var out Project
	// Settings cached per project (the authorizer) follow its generation.
	err := s.write(ctx, id, func(tx *store.Tx) error {
		p, err := tx.GetProject(ctx, id)
		if err != nil {
			return storeErr(err, "project "+id)
		}
		if in.Name != nil {
			if p.Name, err = validName(in.Name, "project"); err != nil {
				return err
			}
		}
		if in.Description != nil {
			p.Description = *in.Description
		}
		if in.SignupEnabled != nil {
			p.SignupEnabled = *in.SignupEnabled
		}
		for _, f := range []struct {
			raw   json.RawMessage
			name  string
			field *string
		}{{in.DefaultPatientRoleID, "defaultPatientRoleId", &p.DefaultPatientRoleID}, {in.DefaultSSOUserRoleID, "defaultSSOUserRoleId", &p.DefaultSSOUserRoleID}} {
			roleID, set, err := optionalID(f.raw, f.name)
			if err != nil {
				return err
			}
			if !set {
				continue
			}
			if roleID != "" {
				if _, err := checkRoles(ctx, &tx.Store, id, []string{roleID}); err != nil {
					return fault.Invalid("%s: role %q does not exist in this project", f.name, roleID)
				}
			}
			*f.field = roleID
		}
		zid, set, err := optionalID(in.AuthorizerZambdaID, "authorizerZambdaId")
		if err != nil {
			return err
		}
		if set {
			p.AuthorizerZambdaID = zid
		}
		if in.AuthorizerIssuers != nil {
			for _, iss := range *in.AuthorizerIssuers {
				if iss == "" || strings.ContainsAny(iss, " \t\r\n") || len(iss) > 512 {
					return fault.Invalid("authorizerIssuers: %q is not an issuer URL", iss)
				}
			}
			p.AuthorizerIssuers = strings.Join(*in.AuthorizerIssuers, " ")
		}
		if n := in.RateLimitPerMinute; n != nil {
			if *n < -1 || *n > MaxRateLimit {
				return fault.Invalid("rateLimitPerMinute must be -1 (no limit), 0 (the server's default) or 1 to %d, not %d", MaxRateLimit, *n)
			}
			p.RateLimit = *n
		}
		if len(in.Providers) > 0 {
			prov, err := mergeProviders(p.Providers, in.Providers)
			if err != nil {
				return err
			}
			p.Providers = prov
		}
		if err := tx.UpdateProject(ctx, p); err != nil {
			return err
		}
		out, err = s.projectOut(ctx, &tx.Store, p)
		return err
	})
	return out, err
}

// mergeProviders applies a PATCH's providers to the stored JSON object.
func mergeProviders(stored string, in map[string]*string) (string, error) {
	m := map[string]string{}
	if stored != "" {
		if err := json.Unmarshal([]byte(stored), &m); err != nil {
			return "", fmt.Errorf("stored providers: %w", err)
		}
	}
	for svc, name := range in {
		if name == nil {
			if err := provider.Valid(svc, provider.Local); err != nil {
				return "", fault.Invalid("%v", err)
			}
			delete(m, svc)
			continue
		}
		if err := provider.Valid(svc, *name); err != nil {
			return "", fault.Invalid("%v", err)
		}
		m[svc] = *name
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("providers: %w", err)
	}
	return string(b), nil
}
