package fhir

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/store"
)

// EverythingParams are the inputs of Patient/[id]/$everything.
type EverythingParams struct {
	Types  []string  // _type: only these types; nil for all
	Since  time.Time // _since: changed at or after; zero for no bound
	Count  int
	Offset int
}

// Everything is Patient/[id]/$everything (R4 patient-operation-everything):
// the patient and every resource of its compartment the caller may read,
// in pages (the patient's own type first, then by type name), plus, as
// includes, what those resources reference outside the compartment
// (Practitioners, Organizations, Medications...). It needs FHIR:Read on the
// patient; a type the caller may not read is left out, and conditions and
// single-id Denies apply inside each type's query, so totals hold.
func (s *Service) Everything(ctx context.Context, p auth.Principal, pid string, ep EverythingParams) (Page, error) {
	if _, err := s.Read(ctx, p, "Patient", pid); err != nil {
		return Page{}, err
	}
	types := r4Compartments.types("Patient")
	if ep.Types != nil {
		types = slices.DeleteFunc(types, func(t string) bool { return !slices.Contains(ep.Types, t) })
	}
	var parts []part
	total := 0
	for _, typ := range types {
		a, err := s.decide(ctx, p, "FHIR:Read", typ, "")
		if err != nil {
			continue // not readable as a type: leave it out, as includes do
		}
		hidden, err := s.hidden(ctx, p, typ)
		if err != nil {
			return Page{}, err
		}
		q := &search.Query{ResourceType: typ}
		if !ep.Since.IsZero() {
			if q, err = search.ParseQuery(typ, url.Values{"_lastUpdated": {"ge" + ep.Since.UTC().Format(time.RFC3339Nano)}}, false); err != nil {
				return Page{}, err
			}
		}
		var within []*search.Query
		for _, v := range r4Compartments.patientQueries(typ, pid) {
			wq, err := search.ParseQuery(typ, url.Values(v), false)
			if err != nil {
				return Page{}, err
			}
			within = append(within, wq)
		}
		req := store.SearchRequest{ProjectID: p.ProjectID, Query: q, Allowed: a.allowed, Hidden: hidden, Within: within, Total: true, Now: s.now()}
		_, n, err := s.store.Search(ctx, req)
		if err != nil {
			return Page{}, err
		}
		if n > 0 {
			parts = append(parts, part{req, n})
			total += n
		}
	}
	page := Page{Query: &search.Query{ResourceType: "Patient"}, Total: total, Offset: ep.Offset, Count: ep.Count, Matches: []Resource{}}
	var err error
	if page.Matches, err = s.pageAcross(ctx, parts, ep.Offset, ep.Count); err != nil {
		return Page{}, err
	}
	inc, err := s.includes(ctx, p, &search.Query{Include: []search.Include{{Type: "*", Param: "*"}}}, page.Matches)
	if err != nil {
		return Page{}, err
	}
	for _, r := range inc {
		if !r4Compartments.holds("Patient", r.Type) {
			page.Included = append(page.Included, r)
		}
	}
	return page, nil
}

// types lists the types in compartment comp, its own type first.
func (c compartments) types(comp string) []string {
	out := []string{comp}
	for _, t := range c.members(comp) {
		if t != comp {
			out = append(out, t)
		}
	}
	return out
}

// holds reports whether typ is in compartment comp.
func (c compartments) holds(comp, typ string) bool {
	_, ok := c[comp][typ]
	return ok || typ == comp
}

// everything serves GET or POST Patient/[id]/$everything with its
// parameters in the URL: _count, _offset, _type, _since (start and end,
// care dates, are refused rather than ignored).
func (h *Handler) everything(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
	vals := r.URL.Query()
	for k := range vals {
		switch k {
		case "_count", "_offset", "_type", "_since", "_format", "_pretty":
		case "start", "end":
			return fault.Invalid("$everything's %s (care dates) is not supported; use _since or _type", k)
		default:
			return fault.Invalid("unknown $everything parameter %q", k)
		}
	}
	hp, err := ParseHistoryParams(vals.Get, h.svc.cfg.MaxCount, h.svc.cfg.MaxCount)
	if err != nil {
		return err
	}
	ep := EverythingParams{Since: hp.Since, Count: hp.Count, Offset: hp.Offset}
	if t := strings.TrimSpace(vals.Get("_type")); t != "" {
		ep.Types = []string{}
		for _, typ := range strings.Split(t, ",") {
			typ = strings.TrimSpace(typ)
			if err := checkType(typ); err != nil {
				return err
			}
			ep.Types = append(ep.Types, typ)
		}
	}
	page, err := h.svc.Everything(r.Context(), p, id, ep)
	if err != nil {
		return err
	}
	b := h.searchBundle(page)
	// searchBundle's links name a Patient search: these name the operation.
	self := h.base + "/Patient/" + id + "/$everything"
	link := func(offset int) string {
		v := url.Values{"_count": {strconv.Itoa(ep.Count)}}
		if offset > 0 {
			v.Set("_offset", strconv.Itoa(offset))
		}
		for _, k := range []string{"_type", "_since"} {
			if x := vals.Get(k); x != "" {
				v.Set(k, x)
			}
		}
		return self + "?" + v.Encode()
	}
	b.Link = []bundleLink{{Relation: "self", URL: link(ep.Offset)}}
	if ep.Offset+len(page.Matches) < page.Total && len(page.Matches) > 0 {
		b.Link = append(b.Link, bundleLink{Relation: "next", URL: link(ep.Offset + len(page.Matches))})
	}
	if ep.Offset > 0 {
		b.Link = append(b.Link, bundleLink{Relation: "previous", URL: link(max(0, ep.Offset-ep.Count))})
	}
	return h.sendBundle(w, b, "the $everything page", "fewer resources per page with _count, or fewer types with _type")
}
