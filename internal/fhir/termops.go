package fhir

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/fhir/terminology"
	"github.com/wardhealth/ward/internal/store"
)

// The terminology operations (docs/terminology.md). Each answers from the R4 core content and
// the project's own CodeSystem and ValueSet resources (a project's resource with the same url
// wins). Access: the type-level form ([type]/$op) needs FHIR:Search on the type (ValueSet or
// CodeSystem), and sees only what the policy's conditions on that type let the caller find;
// the instance form ([type]/[id]/$op) needs FHIR:Read on the instance. Other terminology
// resources a value set draws on (its code systems, the value sets it includes) are read as
// the project's content, never another project's.

func (h *Handler) registerTerminology() {
	h.Operation("ValueSet", "$expand", h.expandOp)
	h.Operation("ValueSet", "$validate-code", h.valueSetValidateOp)
	h.Operation("CodeSystem", "$lookup", h.lookupOp)
	h.Operation("CodeSystem", "$validate-code", h.codeSystemValidateOp)
	h.Operation("CodeSystem", "$subsumes", h.subsumesOp)
}

// projectTerms is a terminology.Source over one project's stored resources.
type projectTerms struct {
	s         *Service
	projectID string
	typ       string          // the operation's type, to which allowed applies
	allowed   []*search.Query // the caller's conditions on typ; nil: unrestricted
	vs        *terminology.ValueSet
	cs        *terminology.CodeSystem // an instance operation's resource: found first by its url
}

var _ terminology.Source = projectTerms{}

func (pt projectTerms) CodeSystem(ctx context.Context, u string) (*terminology.CodeSystem, error) {
	if pt.cs != nil && pt.cs.URL == u {
		return pt.cs, nil
	}
	row, err := pt.find(ctx, "CodeSystem", u)
	if err != nil {
		return nil, err
	}
	return cachedParse(pt.s.termCache, pt.projectID, row, terminology.ParseCodeSystem)
}

func (pt projectTerms) ValueSet(ctx context.Context, u string) (*terminology.ValueSet, error) {
	if pt.vs != nil && pt.vs.URL == u {
		return pt.vs, nil
	}
	row, err := pt.find(ctx, "ValueSet", u)
	if err != nil {
		return nil, err
	}
	return cachedParse(pt.s.termCache, pt.projectID, row, terminology.ParseValueSet)
}

// cachedParse parses a stored terminology resource once per version.
func cachedParse[T any](c *termCache, projectID string, row store.Resource, parse func([]byte) (T, error)) (T, error) {
	k := termKey{project: projectID, typ: row.Type, id: row.ID, version: row.VersionID}
	if v, ok := c.get(k); ok {
		return v.(T), nil
	}
	v, err := parse(row.Content)
	if err != nil {
		var zero T
		return zero, fault.Invalid("%s/%s: %s", row.Type, row.ID, termMessage(err))
	}
	c.put(k, v)
	return v, nil
}

// find reads the project's resource of type typ with canonical url u.
func (pt projectTerms) find(ctx context.Context, typ, u string) (store.Resource, error) {
	return pt.s.findTerm(ctx, pt.projectID, typ, u, map[bool][]*search.Query{true: pt.allowed}[typ == pt.typ])
}

// findTerm reads project projectID's resource of type typ with canonical url u, among those
// matching allowed (nil: all).
func (s *Service) findTerm(ctx context.Context, projectID, typ, u string, allowed []*search.Query) (store.Resource, error) {
	q, err := search.ParseQuery(typ, url.Values{"url": {u}}, false)
	if err != nil {
		return store.Resource{}, fault.Invalid("%q is not a canonical url", u)
	}
	rows, _, err := s.store.Search(ctx, store.SearchRequest{ProjectID: projectID, Query: q, Count: 2, Now: s.now(), Allowed: allowed})
	if err != nil {
		return store.Resource{}, err
	}
	switch len(rows) {
	case 0:
		return store.Resource{}, fmt.Errorf("%w: no %s %s", terminology.ErrNotFound, typ, u)
	case 1:
		return rows[0], nil
	}
	return store.Resource{}, fault.Invalid("more than one %s of this project has url %s", typ, u)
}

// terms authorizes a terminology operation on typ (id: on that instance) and returns the
// resolver for p's project and, for an instance, its content.
func (s *Service) terms(ctx context.Context, p auth.Principal, typ, id string) (projectTerms, []byte, error) {
	pt := projectTerms{s: s, projectID: p.ProjectID, typ: typ}
	var inst []byte
	if id != "" {
		res, err := s.Read(ctx, p, typ, id)
		if err != nil {
			return pt, nil, err
		}
		inst = res.Content
	} else {
		a, err := s.decide(ctx, p, "FHIR:Search", typ, "")
		if err != nil {
			return pt, nil, err
		}
		pt.allowed = a.allowed
	}
	return pt, inst, nil
}

// termError maps terminology's errors to client errors.
func termError(err error) error {
	msg := termMessage(err)
	switch {
	case errors.Is(err, terminology.ErrNotFound):
		return fault.NotFound("%s", msg)
	case errors.Is(err, terminology.ErrUndecidable), errors.Is(err, terminology.ErrTooLarge):
		return &unprocessable{msg: msg}
	case errors.Is(err, terminology.ErrInvalid):
		return fault.Invalid("%s", msg)
	}
	return err
}

func termMessage(err error) string {
	msg := err.Error()
	for _, p := range []string{"terminology: not found: ", "terminology: cannot be decided locally: ", "terminology: invalid resource: ", "terminology: expansion too large: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return msg
}

// valueSetFor finds the value set an operation names: the instance, an inline valueSet
// parameter, or url.
func (h *Handler) valueSetFor(ctx context.Context, res *terminology.Resolver, pt *projectTerms, inst []byte, tp termParams) (*terminology.ValueSet, error) {
	var raw []byte
	switch {
	case inst != nil:
		raw = inst
	case tp.resource["valueSet"] != nil:
		raw = tp.resource["valueSet"]
	case tp.get("url") != "":
		vs, err := res.ValueSet(ctx, tp.get("url"))
		if err != nil {
			return nil, termError(err)
		}
		return vs, nil
	default:
		return nil, fault.Invalid("name the value set: ValueSet/[id]/$op, a url parameter or a valueSet resource")
	}
	vs, err := terminology.ParseValueSet(raw)
	if err != nil {
		return nil, termError(err)
	}
	pt.vs = vs
	return vs, nil
}

// An $expand answers at most defaultExpandCount codes unless count says otherwise, and never
// more than maxExpandCount: total tells the client how many there are to page through.
const (
	defaultExpandCount = 1000
	maxExpandCount     = 10_000
)

// expandOp is ValueSet/$expand: filter (text), offset and count page the expansion.
func (h *Handler) expandOp(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
	tp, err := readTermParams(r)
	if err != nil {
		return err
	}
	offset, err := tp.intParam("offset", 0)
	if err != nil {
		return err
	}
	count, err := tp.intParam("count", defaultExpandCount)
	if err != nil {
		return err
	}
	if count > maxExpandCount {
		return fault.Invalid("count may be at most %d; page with offset", maxExpandCount)
	}
	ctx := r.Context()
	pt, inst, err := h.svc.terms(ctx, p, "ValueSet", id)
	if err != nil {
		return err
	}
	res := terminology.NewResolver(terminology.R4(), &pt)
	vs, err := h.valueSetFor(ctx, res, &pt, inst, tp)
	if err != nil {
		return err
	}
	codes, err := res.Expand(ctx, vs)
	if err != nil {
		return termError(err)
	}
	total, page := terminology.Page(codes, tp.get("filter"), offset, count)
	type param struct {
		Name         string `json:"name"`
		ValueString  string `json:"valueString,omitempty"`
		ValueInteger *int   `json:"valueInteger,omitempty"`
	}
	exp := struct {
		Identifier string               `json:"identifier"`
		Timestamp  string               `json:"timestamp"`
		Total      int                  `json:"total"`
		Offset     int                  `json:"offset"`
		Parameter  []param              `json:"parameter,omitempty"`
		Contains   []terminology.Coding `json:"contains,omitempty"`
	}{Identifier: "urn:uuid:" + newID(), Timestamp: h.svc.now().UTC().Format(time.RFC3339), Total: total, Offset: offset, Contains: page}
	if f := tp.get("filter"); f != "" {
		exp.Parameter = append(exp.Parameter, param{Name: "filter", ValueString: f})
	}
	exp.Parameter = append(exp.Parameter, param{Name: "offset", ValueInteger: &offset}, param{Name: "count", ValueInteger: &count})
	out := map[string]any{"resourceType": "ValueSet", "status": "active", "expansion": exp}
	if id != "" {
		out["id"] = id
	}
	for k, v := range map[string]string{"url": vs.URL, "version": vs.Version, "name": vs.Name, "title": vs.Title, "status": vs.Status} {
		if v != "" {
			out[k] = v
		}
	}
	writeFHIR(w, http.StatusOK, out)
	return nil
}

// codeParams reads code, system and display, or a coding parameter.
func codeParams(tp termParams, codeName, codingName string) (system, code, display string) {
	if c := tp.get(codingName + ".code"); c != "" {
		return tp.get(codingName + ".system"), c, tp.get(codingName + ".display")
	}
	return tp.get("system"), tp.get(codeName), tp.get("display")
}

// valueSetValidateOp is ValueSet/$validate-code: is system|code (or coding) in the value set?
func (h *Handler) valueSetValidateOp(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
	tp, err := readTermParams(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	pt, inst, err := h.svc.terms(ctx, p, "ValueSet", id)
	if err != nil {
		return err
	}
	res := terminology.NewResolver(terminology.R4(), &pt)
	vs, err := h.valueSetFor(ctx, res, &pt, inst, tp)
	if err != nil {
		return err
	}
	system, code, display := codeParams(tp, "code", "coding")
	if code == "" {
		return fault.Invalid("give a code (with system) or a coding")
	}
	v, err := res.ValidateCode(ctx, vs, system, code, display)
	if err != nil {
		return termError(err)
	}
	writeFHIR(w, http.StatusOK, validationParameters(v))
	return nil
}

// codeSystemFor finds the code system an operation names: the instance or the system (url)
// parameter.
func codeSystemFor(ctx context.Context, res *terminology.Resolver, pt *projectTerms, inst []byte, system string) (*terminology.CodeSystem, error) {
	if inst != nil {
		cs, err := terminology.ParseCodeSystem(inst)
		if err != nil {
			return nil, termError(err)
		}
		pt.cs = cs
		return cs, nil
	}
	if system == "" {
		return nil, fault.Invalid("name the code system: CodeSystem/[id]/$op or a system (url) parameter")
	}
	cs, err := res.CodeSystem(ctx, system)
	if err != nil {
		return nil, termError(err)
	}
	return cs, nil
}

// codeSystemRequest is what every CodeSystem operation starts from: its
// parameters, the project's terminology (with the instance the URL names,
// if any) and a resolver over them.
type codeSystemRequest struct {
	tp   termParams
	pt   *projectTerms
	inst []byte
	res  *terminology.Resolver
}

func (h *Handler) codeSystemRequest(r *http.Request, p auth.Principal, id string) (*codeSystemRequest, error) {
	tp, err := readTermParams(r)
	if err != nil {
		return nil, err
	}
	pt, inst, err := h.svc.terms(r.Context(), p, "CodeSystem", id)
	if err != nil {
		return nil, err
	}
	q := &codeSystemRequest{tp: tp, pt: &pt, inst: inst}
	q.res = terminology.NewResolver(terminology.R4(), q.pt)
	return q, nil
}

// codeSystem is the system the operation works on (codeSystemFor).
func (q *codeSystemRequest) codeSystem(ctx context.Context, system string) (*terminology.CodeSystem, error) {
	return codeSystemFor(ctx, q.res, q.pt, q.inst, system)
}

// codeSystemValidateOp is CodeSystem/$validate-code: is code a code of the system?
func (h *Handler) codeSystemValidateOp(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
	q, err := h.codeSystemRequest(r, p, id)
	if err != nil {
		return err
	}
	ctx, tp, res := r.Context(), q.tp, q.res
	system, code, display := codeParams(tp, "code", "coding")
	if system == "" {
		system = tp.get("url")
	}
	cs, err := q.codeSystem(ctx, system)
	if err != nil {
		return err
	}
	if code == "" {
		return fault.Invalid("give a code or a coding")
	}
	v, err := res.ValidateCodeInSystem(ctx, cs.URL, code, display)
	if err != nil {
		return termError(err)
	}
	writeFHIR(w, http.StatusOK, validationParameters(v))
	return nil
}

// lookupOp is CodeSystem/$lookup: the display and the neighbours of system|code.
func (h *Handler) lookupOp(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
	q, err := h.codeSystemRequest(r, p, id)
	if err != nil {
		return err
	}
	ctx, tp, res := r.Context(), q.tp, q.res
	system, code, _ := codeParams(tp, "code", "coding")
	cs, err := q.codeSystem(ctx, system)
	if err != nil {
		return err
	}
	if code == "" {
		return fault.Invalid("give a code (with system) or a coding")
	}
	lr, err := res.Lookup(ctx, cs.URL, code)
	if err != nil {
		return termError(err)
	}
	params := []any{map[string]any{"name": "name", "valueString": lr.Name}}
	if lr.Version != "" {
		params = append(params, map[string]any{"name": "version", "valueString": lr.Version})
	}
	if lr.Display != "" {
		params = append(params, map[string]any{"name": "display", "valueString": lr.Display})
	}
	for _, rel := range []struct {
		name  string
		codes []string
	}{{"parent", lr.Parents}, {"child", lr.Children}} {
		for _, c := range rel.codes {
			params = append(params, map[string]any{"name": "property", "part": []any{
				map[string]any{"name": "code", "valueCode": rel.name},
				map[string]any{"name": "value", "valueCode": c},
			}})
		}
	}
	writeFHIR(w, http.StatusOK, map[string]any{"resourceType": "Parameters", "parameter": params})
	return nil
}

// subsumesOp is CodeSystem/$subsumes: how codeA relates to codeB in the is-a hierarchy.
func (h *Handler) subsumesOp(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
	q, err := h.codeSystemRequest(r, p, id)
	if err != nil {
		return err
	}
	ctx, tp, res := r.Context(), q.tp, q.res
	sysA, a, _ := codeParams(tp, "codeA", "codingA")
	sysB, b, _ := codeParams(tp, "codeB", "codingB")
	system := tp.get("system")
	for _, s := range []string{sysA, sysB} {
		if s != "" && system != "" && s != system {
			return fault.Invalid("codingA and codingB must be of the one system %s", system)
		}
		if system == "" {
			system = s
		}
	}
	cs, err := q.codeSystem(ctx, system)
	if err != nil {
		return err
	}
	if a == "" || b == "" {
		return fault.Invalid("give codeA and codeB (with system), or codingA and codingB")
	}
	outcome, err := res.Subsumes(ctx, cs.URL, a, b)
	if err != nil {
		return termError(err)
	}
	writeFHIR(w, http.StatusOK, map[string]any{"resourceType": "Parameters", "parameter": []any{
		map[string]any{"name": "outcome", "valueCode": outcome},
	}})
	return nil
}

func validationParameters(v terminology.Validation) map[string]any {
	params := []any{map[string]any{"name": "result", "valueBoolean": v.Result}}
	if v.Message != "" {
		params = append(params, map[string]any{"name": "message", "valueString": v.Message})
	}
	if v.Display != "" {
		params = append(params, map[string]any{"name": "display", "valueString": v.Display})
	}
	return map[string]any{"resourceType": "Parameters", "parameter": params}
}
