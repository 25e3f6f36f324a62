package fhir

import (
	"context"
	"errors"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// ConditionalUpdate is PUT [type]?query: no match creates (at the body's id
// or a new one), one match updates it, several are a 412.
func (s *Service) ConditionalUpdate(ctx context.Context, p auth.Principal, typ, query string, body []byte, ifMatch string) (Resource, bool, error) {
	if err := checkType(typ); err != nil {
		return Resource{}, false, err
	}
	found, err := s.conditionalMatches(ctx, p, typ, query)
	if err != nil {
		return Resource{}, false, err
	}
	m, err := decode(body)
	if err != nil {
		return Resource{}, false, err
	}
	bodyID, _ := m["id"].(string)
	switch len(found) {
	case 0:
		if bodyID == "" {
			return s.Create(ctx, p, typ, body, "")
		}
		if err := s.notOutside(ctx, p, typ, bodyID, query); err != nil {
			return Resource{}, false, err
		}
		return s.Update(ctx, p, typ, bodyID, body, ifMatch)
	case 1:
		id := found[0].ID
		if bodyID != "" && bodyID != id {
			return Resource{}, false, fault.Invalid("the resource's id %q differs from the id %q its condition matched", bodyID, id)
		}
		if bodyID == "" {
			m["id"] = id
			if body, err = marshal(m); err != nil {
				return Resource{}, false, err
			}
		}
		return s.Update(ctx, p, typ, id, body, ifMatch)
	}
	return Resource{}, false, fault.Wrap(fault.ErrPrecondition, nil, "the condition matched %d resources; a conditional update needs at most one", len(found))
}

// ConditionalDelete is DELETE [type]?query: it deletes the one match (none
// is fine) and returns its id ("" for none); several matches are a 412.
func (s *Service) ConditionalDelete(ctx context.Context, p auth.Principal, typ, query string) (string, error) {
	if err := checkType(typ); err != nil {
		return "", err
	}
	found, err := s.conditionalMatches(ctx, p, typ, query)
	if err != nil {
		return "", err
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0].ID, s.Delete(ctx, p, typ, found[0].ID)
	}
	return "", fault.Wrap(fault.ErrPrecondition, nil, "the condition matched %d resources; a conditional delete needs at most one", len(found))
}

// ConditionalPatch is PATCH [type]?query: it patches the one match; none is
// a 404 and several a 412 (R4 http.html#patch).
func (s *Service) ConditionalPatch(ctx context.Context, p auth.Principal, typ, query string, ops []byte, ifMatch string) (Resource, error) {
	if err := checkType(typ); err != nil {
		return Resource{}, err
	}
	found, err := s.conditionalMatches(ctx, p, typ, query)
	if err != nil {
		return Resource{}, err
	}
	switch len(found) {
	case 0:
		return Resource{}, fault.NotFound("no %s matches the condition %q", typ, query)
	case 1:
		return s.Patch(ctx, p, typ, found[0].ID, ops, ifMatch)
	}
	return Resource{}, fault.Wrap(fault.ErrPrecondition, nil, "the condition matched %d resources; a conditional patch needs exactly one", len(found))
}

// notOutside refuses a conditional update whose condition matched nothing
// but whose body names a resource that exists: updating it would write
// past the condition (R4 http.html#cond-update: 409).
func (s *Service) notOutside(ctx context.Context, p auth.Principal, typ, id, query string) error {
	cur, err := s.store.GetResource(ctx, p.ProjectID, typ, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && cur.Deleted {
		return nil
	}
	if err != nil {
		return err
	}
	return fault.Conflict("%s/%s exists but does not match the condition %q", typ, id, query)
}
