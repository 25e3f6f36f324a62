package fhir

import (
	"context"
	"net/url"
	"strings"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/policy"
	"github.com/wardhealth/ward/internal/smart/scope"
	"github.com/wardhealth/ward/internal/store"
)

// access is what the policy allows for one interaction: everything, or only
// resources matching one of the condition queries.
type access struct {
	allowed []*search.Query // nil: unconditional
}

// decide checks action on FHIR:typ:id against the principal's policy and,
// for a SMART token, its scopes; it returns the restrictions both impose.
// A request must satisfy one policy condition (if any) and one covering
// scope's restriction (if any): scopes narrow, never widen.
func (s *Service) decide(ctx context.Context, p auth.Principal, action, typ, id string) (access, error) {
	d, err := s.authz.Authorize(ctx, p, action, resourceName(typ, id))
	if err != nil {
		return access{}, err
	}
	var alts []url.Values // nil: unrestricted
	conds := append(append([]policy.Condition(nil), d.Conditions...), d.DependencyConditions...)
	if len(conds) > 0 {
		alts = []url.Values{}
		for _, c := range conds {
			v, err := conditionValues(typ, c.Query)
			if err != nil {
				return access{}, err
			}
			alts = append(alts, v)
		}
	}
	if p.Scoped() {
		scoped, err := scopeAccess(p, action, typ, id)
		if err != nil {
			return access{}, err
		}
		alts = intersect(alts, scoped)
	}
	if alts == nil {
		return access{}, nil
	}
	a := access{allowed: []*search.Query{}}
	for _, v := range alts {
		q, err := search.ParseQuery(typ, v, false)
		if err != nil {
			return access{}, fault.Forbidden("the access restriction %q cannot be applied to %s: %v", v.Encode(), typ, err)
		}
		a.allowed = append(a.allowed, q)
	}
	return a, nil
}

// conditionValues parses a policy condition ("Patient?x=y" or "x=y").
func conditionValues(typ, text string) (url.Values, error) {
	query := text
	if t, rest, ok := strings.Cut(text, "?"); ok {
		if t != "" && t != typ {
			return nil, fault.Forbidden("the policy condition %q is about %s, not %s", text, t, typ)
		}
		query = rest
	}
	vals, err := url.ParseQuery(query)
	if err != nil {
		return nil, fault.Forbidden("the policy condition %q is not a valid search", text)
	}
	return vals, nil
}

// scopeLetters maps an interaction to the SMART permissions that allow it
// (App Launch 2.x "scopes and launch context"): instance history is a
// read, type history a search; reading included resources needs r or s.
func scopeLetters(action, id string) scope.Perm {
	switch action {
	case "FHIR:Create":
		return scope.Create
	case "FHIR:Read":
		if id == "" {
			return scope.Read | scope.Search
		}
		return scope.Read
	case "FHIR:Update":
		return scope.Update
	case "FHIR:Delete":
		return scope.Delete
	case "FHIR:Search":
		return scope.Search
	case "FHIR:History":
		if id != "" {
			return scope.Read
		}
		return scope.Search
	}
	return 0
}

// scopeAccess returns the restrictions the principal's scopes put on
// action over typ: nil when one covering scope is unrestricted, else the
// alternatives (patient compartment and ?filter searches).
func scopeAccess(p auth.Principal, action, typ, id string) ([]url.Values, error) {
	set, err := scope.Parse(strings.Join(p.Scopes, " "))
	if err != nil {
		return nil, fault.Forbidden("the token's scopes are malformed: %v", err)
	}
	letters := scopeLetters(action, id)
	covering := set.Covering(typ, letters)
	if len(covering) == 0 {
		return nil, fault.Forbidden("access denied: the token's scopes do not allow %s (%s) on %s", action, letters, typ)
	}
	alts := []url.Values{}
	for _, r := range covering {
		var base []url.Values
		if r.Context == "patient" {
			if p.Patient == "" {
				return nil, fault.Forbidden("access denied: patient/ scopes need a patient context and this token has none")
			}
			base = append(base, r4Compartments.patientQueries(typ, p.Patient)...)
		}
		if base == nil && r.Filter == nil {
			return nil, nil // this scope alone allows the interaction everywhere
		}
		if base == nil {
			base = []url.Values{{}}
		}
		for _, b := range base {
			alts = append(alts, merge(b, r.Filter))
		}
	}
	return alts, nil
}

// intersect ANDs two sets of alternatives (each an OR of searches); nil
// means unrestricted.
func intersect(a, b []url.Values) []url.Values {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	out := make([]url.Values, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, merge(x, y))
		}
	}
	return out
}

// merge ANDs two searches: repeated parameters are ANDed in FHIR search.
func merge(a, b url.Values) url.Values {
	out := url.Values{}
	for _, v := range []url.Values{a, b} {
		for k, vs := range v {
			out[k] = append(out[k], vs...)
		}
	}
	return out
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
