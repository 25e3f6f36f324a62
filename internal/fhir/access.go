package fhir

import (
	"context"
	"net/url"
	"strings"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/policy"
	"github.com/wardhealth/ward/internal/store"
)

// access is what the policy allows for one interaction: everything, or only
// resources matching one of the condition queries.
type access struct {
	allowed []*search.Query // nil: unconditional
}

// decide checks action on FHIR:typ:id and parses any rule conditions.
func (s *Service) decide(ctx context.Context, p auth.Principal, action, typ, id string) (access, error) {
	d, err := s.authz.Authorize(ctx, p, action, resourceName(typ, id))
	if err != nil {
		return access{}, err
	}
	conds := append(append([]policy.Condition(nil), d.Conditions...), d.DependencyConditions...)
	if len(conds) == 0 {
		return access{}, nil
	}
	a := access{allowed: []*search.Query{}}
	for _, c := range conds {
		q, err := conditionQuery(typ, c)
		if err != nil {
			return access{}, err
		}
		a.allowed = append(a.allowed, q)
	}
	return a, nil
}

// conditionQuery parses a policy condition ("Patient?x=y" or "x=y").
func conditionQuery(typ string, c policy.Condition) (*search.Query, error) {
	text := c.Query
	if t, rest, ok := strings.Cut(text, "?"); ok {
		if t != "" && t != typ {
			return nil, fault.Forbidden("the policy condition %q is about %s, not %s", text, t, typ)
		}
		text = rest
	}
	vals, err := url.ParseQuery(text)
	if err != nil {
		return nil, fault.Forbidden("the policy condition %q is not a valid search", c.Query)
	}
	q, err := search.ParseQuery(typ, vals, false)
	if err != nil {
		return nil, fault.Forbidden("the policy condition %q cannot be applied: %v", c.Query, err)
	}
	return q, nil
}

// covers reports whether the stored resource matches a conditional access.
func (s *Service) covers(ctx context.Context, projectID, typ, id string, a access) (bool, error) {
	if a.allowed == nil {
		return true, nil
	}
	rows, _, err := s.store.Search(ctx, store.SearchRequest{ProjectID: projectID, Query: &search.Query{ResourceType: typ},
		Allowed: a.allowed, IDs: []string{id}, Count: 1, Now: s.now()})
	if err != nil {
		return false, err
	}
	return len(rows) == 1, nil
}

// requireCovered is decide plus covers for an existing resource; outside the
// condition is a 403 naming the action.
func (s *Service) requireCovered(ctx context.Context, p auth.Principal, action, typ, id string) error {
	a, err := s.decide(ctx, p, action, typ, id)
	if err != nil {
		return err
	}
	ok, err := s.covers(ctx, p.ProjectID, typ, id, a)
	if err != nil {
		return err
	}
	if !ok {
		return fault.Forbidden("access denied: %s on %s is allowed only for resources matching the policy's conditions", action, resourceName(typ, id))
	}
	return nil
}

// Require checks action on the stored resource typ/id for p, rule
// conditions included: for operations built on FHIR resources.
func (s *Service) Require(ctx context.Context, p auth.Principal, action, typ, id string) error {
	return s.requireCovered(ctx, p, action, typ, id)
}
