package fhir

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/store"
)

// What bulk export (package fhir/bulk) reads through the FHIR service: the
// same policy filtering as a search by the same principal, walked by id so
// that a job can stop and resume anywhere.

// ExportScope is what an export reads of one type.
type ExportScope struct {
	Type  string
	Since time.Time // _since: changed after; zero for no bound
	// Filters are the _typeFilter searches of Type, ORed; nil: all.
	Filters []url.Values
	// AllPatients confines the type to the Patient compartments of every
	// patient (Patient-level export); Patients to those of these patients
	// (Group export). Neither: the whole type (system-level export).
	AllPatients bool
	Patients    []string
}

// PatientCompartmentTypes lists the types in the Patient compartment,
// Patient first.
func PatientCompartmentTypes() []string { return r4Compartments.types("Patient") }

// CheckExportFilter checks a _typeFilter search of typ (its query, without
// "Type?"): a 400 naming what is wrong, as a search would.
func (s *Service) CheckExportFilter(ctx context.Context, typ, query string) error {
	vals, err := url.ParseQuery(query)
	if err != nil {
		return fault.Invalid("_typeFilter %s?%s is not a valid search: %v", typ, query, err)
	}
	q, err := exportFilter(typ, vals)
	if err != nil {
		return err
	}
	return s.supported(ctx, q)
}

// exportFilter parses a _typeFilter search: result parameters (_count,
// _sort, _include...) shape a page, not a set, so they are refused.
func exportFilter(typ string, vals url.Values) (*search.Query, error) {
	for k := range vals {
		switch strings.SplitN(k, ":", 2)[0] {
		case "_count", "_offset", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total", "_contained", "_containedType":
			return nil, fault.Invalid("_typeFilter may not use %s (a result parameter)", k)
		}
	}
	q, err := search.ParseQuery(typ, vals, false)
	if err != nil {
		return nil, searchErr(err)
	}
	return q, nil
}

// MaySearch reports, as an error, whether p may search typ at all (an
// export leaves out or refuses a type it may not).
func (s *Service) MaySearch(ctx context.Context, p auth.Principal, typ string) error {
	if err := checkType(typ); err != nil {
		return err
	}
	_, err := s.decide(ctx, p, "FHIR:Search", typ, "")
	return err
}

// ExportPage is one read of an export: the resources kept, the last id
// read (kept or not; "" when none), and Full when limit ids were read, so
// there may be more.
type ExportPage struct {
	Resources []Resource
	Last      string
	Full      bool
}

// ExportBatch reads, as p, up to limit resources of sc after the id after,
// in id order: what p could find by searching sc.Type (FHIR:Search, the
// policy's conditions, single-id Denies, SMART scopes), decided now.
func (s *Service) ExportBatch(ctx context.Context, p auth.Principal, sc ExportScope, after string, limit int) (ExportPage, error) {
	a, err := s.decide(ctx, p, "FHIR:Search", sc.Type, "")
	if err != nil {
		return ExportPage{}, err
	}
	hidden, err := s.hidden(ctx, p, sc.Type)
	if err != nil {
		return ExportPage{}, err
	}
	q := &search.Query{ResourceType: sc.Type}
	if !sc.Since.IsZero() {
		// Times are kept to the millisecond: ge from the millisecond of
		// _since keeps a change made in it (a few lines more, never fewer).
		since := sc.Since.UTC().Truncate(time.Millisecond).Format("2006-01-02T15:04:05.000Z07:00")
		if q, err = search.ParseQuery(sc.Type, url.Values{"_lastUpdated": {"ge" + since}}, false); err != nil {
			return ExportPage{}, err
		}
	}
	contexts, err := s.binaryContexts(ctx, p, sc.Type)
	if err != nil {
		return ExportPage{}, err
	}
	req := store.SearchRequest{ProjectID: p.ProjectID, Query: q, Allowed: a.allowed, Hidden: hidden, Contexts: contexts,
		ByID: true, AfterID: after, Count: limit, Now: s.now()}
	for _, v := range sc.Filters {
		fq, err := exportFilter(sc.Type, v)
		if err != nil {
			return ExportPage{}, err
		}
		inner, err := s.innerAccess(ctx, p, fq)
		if err != nil {
			return ExportPage{}, err
		}
		for typ, r := range inner {
			if req.Inner == nil {
				req.Inner = map[string]store.Restriction{}
			}
			if old, ok := req.Inner[typ]; ok && !slices.Equal(old.Hidden, r.Hidden) {
				return ExportPage{}, errors.New("export filters: two restrictions of one type") // same principal: cannot happen
			}
			req.Inner[typ] = r
		}
		if fq, err = s.expandValueSets(ctx, p, fq); err != nil {
			return ExportPage{}, err
		}
		req.Filter = append(req.Filter, fq)
	}
	if req.Within, err = exportWithin(sc); err != nil {
		return ExportPage{}, err
	}
	if req.Within != nil && len(req.Within) == 0 {
		return ExportPage{}, nil // not in the compartment
	}
	rows, _, err := s.store.Search(ctx, req)
	if err != nil {
		return ExportPage{}, err
	}
	page := ExportPage{Resources: make([]Resource, 0, len(rows)), Full: len(rows) == limit}
	if len(rows) > 0 {
		page.Last = rows[len(rows)-1].ID
	}
	keep := func(string) bool { return true }
	if sc.AllPatients && sc.Type != "Patient" {
		// In some patient's compartment: a reference to a Patient through
		// one of the compartment's parameters, tested for the batch's id
		// range in one scan (a chain per parameter in the search was
		// 15-25x slower than a system export, an EXISTS per row 3x).
		in, err := s.store.Referring(ctx, p.ProjectID, sc.Type, after, page.Last, r4Compartments["Patient"][sc.Type], "Patient")
		if err != nil {
			return ExportPage{}, err
		}
		keep = func(id string) bool { return in[id] }
	}
	for _, r := range rows {
		if keep(r.ID) {
			res := fromStore(r)
			res.Content = bundled(res) // a large Binary: no data, no blob name
			page.Resources = append(page.Resources, res)
		}
	}
	// A Binary whose securityContext the caller may not read is left out,
	// as from searches.
	if page.Resources, err = s.readableBinaries(ctx, p, page.Resources); err != nil {
		return ExportPage{}, err
	}
	return page, nil
}

// exportWithin is the compartment restriction of sc: nil for none, empty
// when sc.Type is not in the Patient compartment.
func exportWithin(sc ExportScope) ([]*search.Query, error) {
	if !sc.AllPatients && sc.Patients == nil {
		return nil, nil
	}
	within := []*search.Query{}
	if !r4Compartments.holds("Patient", sc.Type) || sc.Patients != nil && len(sc.Patients) == 0 {
		return within, nil
	}
	var alts []url.Values
	if sc.Type == "Patient" {
		if sc.AllPatients {
			return nil, nil // every patient is in its own compartment
		}
		alts = append(alts, url.Values{"_id": {strings.Join(sc.Patients, ",")}})
	}
	if sc.AllPatients {
		return nil, nil // ExportBatch asks for a reference to any Patient instead
	}
	for _, param := range r4Compartments["Patient"][sc.Type] {
		if param == "_id" {
			continue
		}
		refs := make([]string, len(sc.Patients))
		for i, id := range sc.Patients {
			refs[i] = "Patient/" + id
		}
		alts = append(alts, url.Values{param: {strings.Join(refs, ",")}})
	}
	for _, v := range alts {
		q, err := search.ParseQuery(sc.Type, v, false)
		if err != nil {
			return nil, err // the generated tables are checked by a test
		}
		within = append(within, q)
	}
	return within, nil
}

// ExportPatients checks the patients a POST $export names (ids): each
// must be one p could find by searching Patient (FHIR:Search, the
// policy's conditions, single-id Denies, SMART scopes). One that is not,
// whether unknown, of another project or hidden from p, is the same 400,
// so the answer tells nothing of what p may not see.
func (s *Service) ExportPatients(ctx context.Context, p auth.Principal, ids []string) error {
	a, err := s.decide(ctx, p, "FHIR:Search", "Patient", "")
	if err != nil {
		return err
	}
	hidden, err := s.hidden(ctx, p, "Patient")
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := checkID(id); err != nil {
			return err
		}
	}
	rows, _, err := s.store.Search(ctx, store.SearchRequest{ProjectID: p.ProjectID, Query: &search.Query{ResourceType: "Patient"},
		Allowed: a.allowed, Hidden: hidden, IDs: ids, Count: len(ids), Now: s.now()})
	if err != nil {
		return err
	}
	found := make(map[string]bool, len(rows))
	for _, r := range rows {
		found[r.ID] = true
	}
	for _, id := range ids {
		if !found[id] {
			return fault.Invalid("patient Patient/%s is not known", id)
		}
	}
	return nil
}

// GroupPatients checks that p may export Group/id (FHIR:Export on it,
// conditions included) and returns the ids of its members that are
// Patients. Errors: 404 for a Group that does not exist, 403.
func (s *Service) GroupPatients(ctx context.Context, p auth.Principal, id string) ([]string, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	r, err := s.store.GetResource(ctx, p.ProjectID, "Group", id)
	if errors.Is(err, store.ErrNotFound) || err == nil && r.Deleted {
		// Checked before the policy would be, as a read is: 404 names
		// nothing the caller could not create.
		if _, derr := s.decide(ctx, p, "FHIR:Export", "Group", id); derr != nil {
			return nil, derr
		}
		return nil, fault.NotFound("Group/%s not found", id)
	}
	if err != nil {
		return nil, err
	}
	if err := s.requireCovered(ctx, p, "FHIR:Export", "Group", id); err != nil {
		return nil, err
	}
	var g struct {
		Member []struct {
			Entity struct {
				Reference string `json:"reference"`
			} `json:"entity"`
			Inactive bool `json:"inactive"`
		} `json:"member"`
	}
	if err := json.Unmarshal(r.Content, &g); err != nil {
		return nil, err
	}
	out := []string{}
	for _, m := range g.Member {
		pid, ok := strings.CutPrefix(m.Entity.Reference, "Patient/")
		if ok && !m.Inactive && idPattern.MatchString(pid) && !slices.Contains(out, pid) {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out, nil
}
