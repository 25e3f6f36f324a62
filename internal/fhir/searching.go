package fhir

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/store"
)

// searchErr turns a query parse error into a 400 naming the parameter.
func searchErr(err error) error {
	var qe *search.Error
	if errors.As(err, &qe) {
		return fault.Invalid("%v", qe)
	}
	if errors.Is(err, search.ErrInvalidQuery) {
		return fault.Invalid("%v", err)
	}
	return err
}

// Page is one page of search results.
type Page struct {
	Query    *search.Query
	Matches  []Resource
	Included []Resource
	Total    int // -1 when not counted
	Offset   int
	Count    int
	// link, when set, makes the bundle's page links (count and offset
	// given) of a search that is not a type's: a compartment's or the
	// system's.
	link func(count, offset int) string
}

// Search runs a parsed query as p: FHIR:Search on the type, results limited
// to what the policy's conditions allow (inside the SQL, so totals hold),
// includes limited to what p may read.
func (s *Service) Search(ctx context.Context, p auth.Principal, q *search.Query) (Page, error) {
	if err := checkType(q.ResourceType); err != nil {
		return Page{}, err
	}
	if err := s.supported(ctx, q); err != nil {
		return Page{}, err
	}
	return s.search(ctx, p, q, q.Total != "none")
}

// supported refuses parameters the index does not hold (yet), rather than
// answering them with an empty or partial (wrong) result.
func (s *Service) supported(ctx context.Context, q *search.Query) error {
	for _, cs := range [2][]*search.Clause{q.Clauses, q.FilterClauses()} {
		for _, c := range cs {
			for c != nil {
				if c.Param != nil && (c.Param.Type == "special" && !c.Param.IsNear() || c.Param.Type == "composite" && !c.Param.Composite()) {
					return fault.Invalid("search parameter %q (%s) is not supported yet", c.Param.Name, c.Param.Type)
				}
				if c.Param != nil && c.Param.Type == "token" && (c.Modifier == "above" || c.Modifier == "below") {
					return fault.Invalid("%s:%s needs a code system's hierarchy, which Ward (no terminology server) does not have; list the codes, or use :in with a ValueSet", c.Param.Name, c.Modifier)
				}
				if job := jobFor(c); job != "" {
					if err := s.backfilled(ctx, job); err != nil {
						return err
					}
				}
				if c.Reverse != nil {
					c = c.Reverse.Clause
					continue
				}
				c = c.Chain
			}
		}
	}
	return nil
}

func (s *Service) search(ctx context.Context, p auth.Principal, q *search.Query, total bool) (Page, error) {
	return s.searchWithin(ctx, p, q, nil, total)
}

// searchWithin is search with results also restricted to resources that
// match one of within (a compartment); nil: no such restriction.
func (s *Service) searchWithin(ctx context.Context, p auth.Principal, q *search.Query, within []*search.Query, total bool) (Page, error) {
	req, err := s.searchRequest(ctx, p, q, within)
	if err != nil {
		return Page{}, err
	}
	count := s.pageSize(q)
	if q.Summary == "count" {
		total = true
	}
	req.Count, req.Total = count, total
	if q.Total != "accurate" && q.Summary != "count" {
		req.TotalLimit = s.cfg.TotalLimit
	}
	rows, n, err := s.store.Search(ctx, req)
	if err != nil {
		return Page{}, err
	}
	page := Page{Query: q, Total: n, Offset: q.Offset, Count: count, Matches: make([]Resource, 0, len(rows))}
	for _, r := range rows {
		page.Matches = append(page.Matches, fromStore(r))
	}
	if page.Matches, err = s.readableBinaries(ctx, p, page.Matches); err != nil {
		return Page{}, err
	}
	if page.Included, err = s.includes(ctx, p, q, page.Matches); err != nil {
		return Page{}, err
	}
	return page, nil
}

// pageSize is the page a query asks for, within the configured bounds
// (0 for _summary=count).
func (s *Service) pageSize(q *search.Query) int {
	count := q.Count
	switch {
	case q.Summary == "count":
		count = 0
	case count < 0:
		count = s.cfg.DefaultCount
	case count > s.cfg.MaxCount:
		count = s.cfg.MaxCount
	}
	return count
}

// searchRequest is the store's form of q as p may run it: FHIR:Search on
// its type (an error if denied), the policy's conditions, single-id
// Denies, what chains and _has may look into, and ValueSets expanded.
func (s *Service) searchRequest(ctx context.Context, p auth.Principal, q *search.Query, within []*search.Query) (store.SearchRequest, error) {
	a, err := s.decide(ctx, p, "FHIR:Search", q.ResourceType, "")
	if err != nil {
		return store.SearchRequest{}, err
	}
	hidden, err := s.hidden(ctx, p, q.ResourceType)
	if err != nil {
		return store.SearchRequest{}, err
	}
	inner, err := s.innerAccess(ctx, p, q)
	if err != nil {
		return store.SearchRequest{}, err
	}
	sq, err := s.expandValueSets(ctx, p, q)
	if err != nil {
		return store.SearchRequest{}, err
	}
	contexts, err := s.binaryContexts(ctx, p, q.ResourceType)
	if err != nil {
		return store.SearchRequest{}, err
	}
	return store.SearchRequest{ProjectID: p.ProjectID, Query: sq, Allowed: a.allowed, Hidden: hidden, Inner: inner,
		Within: within, Contexts: contexts, Offset: q.Offset, Now: s.now()}, nil
}

// innerAccess is what p may see of each type that a chain
// (subject:Patient.name=x) or a _has (_has:Observation:subject:code=x) of q
// looks into: such a clause filters on those resources, so it would tell
// which of them match. It needs FHIR:Search on the type, and sees only the
// resources p could find by searching it (conditions, single-id Denies).
func (s *Service) innerAccess(ctx context.Context, p auth.Principal, q *search.Query) (map[string]store.Restriction, error) {
	var types []string
	for _, c := range q.Clauses {
		if c.Reverse != nil {
			types = append(types, c.Reverse.Type)
		}
		for ; c.Chain != nil; c = c.Chain {
			types = append(types, c.TargetType)
		}
	}
	var out map[string]store.Restriction
	for _, typ := range types {
		if _, done := out[typ]; done {
			continue
		}
		a, err := s.decide(ctx, p, "FHIR:Search", typ, "")
		if err != nil {
			return nil, fmt.Errorf("a chain or _has into %s needs the right to search it: %w", typ, err)
		}
		hidden, err := s.hidden(ctx, p, typ)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string]store.Restriction{}
		}
		out[typ] = store.Restriction{Allowed: a.allowed, Hidden: hidden}
	}
	return out, nil
}

// includes resolves _include and _revinclude (one level, plus one :iterate
// round), reading each target type as the caller: a type the caller may not
// search is left out, and conditions apply, so nothing leaks.
func (s *Service) includes(ctx context.Context, p auth.Principal, q *search.Query, matches []Resource) ([]Resource, error) {
	if len(matches) == 0 || (len(q.Include) == 0 && len(q.RevInclude) == 0) {
		return nil, nil
	}
	seen := map[string]bool{}
	for _, m := range matches {
		seen[m.Type+"/"+m.ID] = true
	}
	var out []Resource
	frontier := matches
	for round := 0; round < 2 && len(frontier) > 0; round++ {
		var next []Resource
		byType := map[string][]string{} // target type -> ids to fetch
		for _, inc := range q.Include {
			if round > 0 && !inc.Iterate {
				continue
			}
			refs, err := s.store.ReferencesFrom(ctx, p.ProjectID, idsOf(frontier, inc.Type), inc.Type, inc.Param)
			if err != nil {
				return nil, err
			}
			for _, r := range refs {
				if inc.Target != "" && r.RefType != inc.Target {
					continue
				}
				byType[r.RefType] = append(byType[r.RefType], r.RefID)
			}
		}
		for _, inc := range q.RevInclude {
			if round > 0 && !inc.Iterate {
				continue
			}
			for _, src := range s.revSources(ctx, p, inc.Type) {
				for typ, ids := range groupIDs(frontier) {
					got, err := s.store.ReferencesTo(ctx, p.ProjectID, src, inc.Param, typ, ids)
					if err != nil {
						return nil, err
					}
					byType[src] = append(byType[src], got...)
				}
			}
		}
		for typ, ids := range byType {
			if typ == "" || !search.IsResourceType(typ) || len(ids) == 0 {
				continue // nil IDs would mean every resource of typ
			}
			a, err := s.decide(ctx, p, "FHIR:Read", typ, "")
			if err != nil {
				continue // not readable as a type: include nothing of it
			}
			slices.Sort(ids)
			ids = slices.Compact(ids)
			hidden, err := s.hidden(ctx, p, typ)
			if err != nil {
				return nil, err
			}
			rows, _, err := s.store.Search(ctx, store.SearchRequest{ProjectID: p.ProjectID, Query: &search.Query{ResourceType: typ},
				Allowed: a.allowed, Hidden: hidden, IDs: ids, Count: s.cfg.MaxCount, Now: s.now()})
			if err != nil {
				return nil, err
			}
			for _, r := range rows {
				if k := r.Type + "/" + r.ID; !seen[k] {
					seen[k] = true
					out = append(out, fromStore(r))
					next = append(next, fromStore(r))
				}
			}
		}
		frontier = next
	}
	return s.readableBinaries(ctx, p, out)
}

// revSources lists the types a _revinclude reads references from: its
// type, or for _revinclude=* every type with reference parameters that
// the caller may read (one indexed query each; the others would be
// dropped after reading anyway).
func (s *Service) revSources(ctx context.Context, p auth.Principal, typ string) []string {
	if typ != "*" {
		return []string{typ}
	}
	var out []string
	for _, t := range search.ResourceTypes() {
		if len(search.StoredParams(t, "reference")) == 0 {
			continue
		}
		if _, err := s.decide(ctx, p, "FHIR:Read", t, ""); err == nil {
			out = append(out, t)
		}
	}
	return out
}

// idsOf lists the ids of resources of typ ("*" for all types).
func idsOf(rs []Resource, typ string) map[string][]string {
	out := map[string][]string{}
	for _, r := range rs {
		if typ == "*" || typ == r.Type {
			out[r.Type] = append(out[r.Type], r.ID)
		}
	}
	return out
}

func groupIDs(rs []Resource) map[string][]string { return idsOf(rs, "*") }

// hidden lists the ids of typ that a Deny rule on the single id keeps from
// the caller's reads: searches and includes leave them out in the query.
func (s *Service) hidden(ctx context.Context, p auth.Principal, typ string) ([]string, error) {
	set, err := s.authz.PolicySet(ctx, p)
	if err != nil {
		return nil, err
	}
	return set.DeniedIDs("FHIR:Read", "FHIR:"+typ), nil
}
