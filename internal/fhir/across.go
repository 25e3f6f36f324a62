package fhir

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/store"
)

// Across is a search of several resource types at once: the whole
// system's (GET [base]?_type=...) or a compartment's (GET
// [base]/Patient/1/*). Results come type by type (a compartment's own type
// first, then by name), each type's part in its own order.
//
// It is bounded: one counted query per type (at most every R4 type, 145),
// then at most _count resources read. _sort is refused (an order across
// types would read every type's matches up to the page's end).
type Across struct {
	// Types are the types _type names: each must be searchable by the
	// caller (403 otherwise) and take every parameter (400 otherwise,
	// unless Lenient). Nil: every type (in the compartment, if any), and
	// a type the caller may not search or that lacks a parameter of the
	// query is left out, as it cannot have a match the caller may see.
	Types []string
	// Compartment and ID, when set, confine results to that compartment.
	Compartment, ID string
	Values          url.Values // the search parameters, without _type
	Lenient         bool       // Prefer: handling=lenient
}

// SearchCompartment runs q (on one type) within the compartment of
// comp/id, policy-filtered as a type search is: FHIR:Search on q's type,
// its conditions and Denies.
func (s *Service) SearchCompartment(ctx context.Context, p auth.Principal, comp, id string, q *search.Query) (Page, error) {
	within, err := s.compartmentWithin(comp, id, q.ResourceType)
	if err != nil {
		return Page{}, err
	}
	if within == nil {
		return Page{}, fault.Invalid("%s is not in the %s compartment (R4 CompartmentDefinition %s)", q.ResourceType, comp, strings.ToLower(comp[:1])+comp[1:])
	}
	if err := s.supported(ctx, q); err != nil {
		return Page{}, err
	}
	return s.searchWithin(ctx, p, q, within, q.Total != "none")
}

// checkCompartment refuses a compartment that R4 does not define, or a
// malformed id.
func checkCompartment(comp, id string) error {
	if err := checkType(comp); err != nil {
		return err
	}
	if !r4Compartments.isCompartment(comp) {
		return fault.NotFound("%s is not a compartment: R4 defines Patient, Encounter, RelatedPerson, Practitioner and Device", comp)
	}
	return checkID(id)
}

// compartmentWithin is the parsed membership searches of typ in comp/id,
// nil when typ is not in it.
func (s *Service) compartmentWithin(comp, id, typ string) ([]*search.Query, error) {
	if err := checkCompartment(comp, id); err != nil {
		return nil, err
	}
	var within []*search.Query
	for _, v := range r4Compartments.queries(comp, typ, id) {
		q, err := search.ParseQuery(typ, v, false)
		if err != nil {
			return nil, err // the generated tables are checked by a test
		}
		within = append(within, q)
	}
	return within, nil
}

// SearchAcross runs a search over several types (Across).
func (s *Service) SearchAcross(ctx context.Context, p auth.Principal, ac Across) (Page, error) {
	explicit := ac.Types != nil
	types := ac.Types
	switch {
	case types != nil:
	case ac.Compartment != "":
		if err := checkCompartment(ac.Compartment, ac.ID); err != nil {
			return Page{}, err
		}
		types = r4Compartments.types(ac.Compartment)
	default:
		types = search.ResourceTypes()
	}
	var (
		parts []part
		first *search.Query
		total int
	)
	for _, typ := range types {
		// Parsed leniently to learn which parameters typ lacks.
		q, err := search.ParseQuery(typ, ac.Values, true)
		if err != nil {
			return Page{}, searchErr(err)
		}
		if len(q.Sort) > 0 {
			return Page{}, fault.Invalid("_sort is not supported in a search across types: search one type to sort")
		}
		if len(q.Ignored) > 0 && !ac.Lenient {
			if explicit {
				return Page{}, fault.Invalid("unknown search parameter %q for %s", q.Ignored[0], typ)
			}
			continue // no match of typ meets a parameter it does not have
		}
		var within []*search.Query
		if ac.Compartment != "" {
			if within, err = s.compartmentWithin(ac.Compartment, ac.ID, typ); err != nil {
				return Page{}, err
			}
			if within == nil {
				if explicit {
					return Page{}, fault.Invalid("%s is not in the %s compartment", typ, ac.Compartment)
				}
				continue
			}
		}
		if err := s.supported(ctx, q); err != nil {
			return Page{}, err
		}
		req, err := s.searchRequest(ctx, p, q, within)
		if errors.Is(err, fault.ErrForbidden) && !explicit {
			continue // not searchable by the caller: nothing of it shows
		}
		if err != nil {
			return Page{}, err
		}
		if first == nil {
			first = q
		}
		req.Total, req.Count = true, 0
		_, n, err := s.store.Search(ctx, req)
		if err != nil {
			return Page{}, err
		}
		if n > 0 {
			parts = append(parts, part{req, n})
			total += n
		}
	}
	if first == nil {
		if explicit {
			return Page{}, fault.Invalid("no resource type to search")
		}
		// Nothing the caller may search takes these parameters.
		q, err := search.ParseQuery("Patient", ac.Values, ac.Lenient)
		if err != nil {
			return Page{}, searchErr(err)
		}
		return Page{Query: q, Total: 0, Offset: q.Offset, Count: s.pageSize(q), Matches: []Resource{}}, nil
	}
	count := s.pageSize(first)
	page := Page{Query: first, Total: total, Offset: first.Offset, Count: count, Matches: []Resource{}}
	var err error
	if page.Matches, err = s.pageAcross(ctx, parts, first.Offset, count); err != nil {
		return Page{}, err
	}
	if page.Matches, err = s.readableBinaries(ctx, p, page.Matches); err != nil {
		return Page{}, err
	}
	if page.Included, err = s.includes(ctx, p, first, page.Matches); err != nil {
		return Page{}, err
	}
	return page, nil
}

// parseTypes reads _type (comma-separated, possibly repeated): nil when
// absent.
func parseTypes(vals url.Values) ([]string, error) {
	raw, ok := vals["_type"]
	if !ok {
		return nil, nil
	}
	types := []string{}
	for _, v := range raw {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if t == "" {
				continue
			}
			if !search.IsResourceType(t) {
				return nil, fault.Invalid("_type names %s, which is not an R4 resource type", clipText(t))
			}
			if !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
	}
	if len(types) == 0 {
		return nil, fault.Invalid("_type is empty: name the resource types to search")
	}
	return types, nil
}

// searchIn runs a system or compartment search (in's kind) with vals, and
// sets the page's links to name it.
func (h *Handler) searchIn(ctx context.Context, svc *Service, p auth.Principal, in interaction, vals url.Values, lenient bool) (Page, error) {
	for _, k := range []string{"_format", "_pretty"} {
		delete(vals, k)
	}
	path := h.base // a system search
	if in.typ != "" {
		path += "/" + in.typ + "/" + in.id + "/" + in.target
	}
	var (
		page Page
		err  error
	)
	if in.typ != "" && in.target != "*" {
		if err := checkType(in.target); err != nil {
			return Page{}, err
		}
		q, err := search.ParseQuery(in.target, vals, lenient)
		if err != nil {
			return Page{}, searchErr(err)
		}
		if page, err = svc.SearchCompartment(ctx, p, in.typ, in.id, q); err != nil {
			return Page{}, err
		}
		page.link = func(count, offset int) string {
			q := *page.Query
			q.Count, q.Offset = count, offset
			return path + "?" + q.Encode()
		}
		return page, nil
	}
	types, err := parseTypes(vals)
	if err != nil {
		return Page{}, err
	}
	rest := url.Values{}
	for k, v := range vals {
		if k != "_type" {
			rest[k] = v
		}
	}
	ac := Across{Types: types, Values: rest, Lenient: lenient}
	if in.typ != "" {
		ac.Compartment, ac.ID = in.typ, in.id
	}
	if page, err = svc.SearchAcross(ctx, p, ac); err != nil {
		return Page{}, err
	}
	page.link = func(count, offset int) string {
		q := *page.Query
		q.Count, q.Offset = count, offset
		enc := q.Encode()
		if types != nil {
			t := url.Values{"_type": {strings.Join(types, ",")}}.Encode()
			if enc == "" {
				enc = t
			} else {
				enc = t + "&" + enc
			}
		}
		return path + "?" + enc
	}
	return page, nil
}

// part is one resource type's share of a search across types: its query
// and how many it matches.
type part struct {
	req store.SearchRequest
	n   int
}

// pageAcross reads the page [offset, offset+count) of the parts' matches
// laid end to end, querying only the parts the page overlaps.
func (s *Service) pageAcross(ctx context.Context, parts []part, offset, count int) ([]Resource, error) {
	out := []Resource{}
	skip, want := offset, count
	for _, pt := range parts {
		if want == 0 {
			break
		}
		if skip >= pt.n {
			skip -= pt.n
			continue
		}
		req := pt.req
		req.Total, req.Offset, req.Count = false, skip, want
		rows, _, err := s.store.Search(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			out = append(out, fromStore(r))
		}
		skip, want = 0, want-len(rows)
	}
	return out, nil
}
