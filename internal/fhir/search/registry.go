// Package search holds the R4 search parameter registry (generated from the
// specification's SearchParameter definitions), extracts index values from
// resources, and parses search query strings.
package search

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/wardhealth/ward/internal/fhir/fhirpath"
)

//go:generate go run ./internal/gen -in $WARD_FHIR_EXAMPLES/Bundle-searchParams.json -out registry.json

//go:embed registry.json
var registryJSON []byte

// Param is one search parameter of one resource type.
type Param struct {
	Name string // the code used in queries, e.g. "birthdate"
	// Type is number, date, string, token, reference, composite, quantity,
	// uri or special.
	Type string
	// Expression is the FHIRPath that yields the indexed elements, restricted
	// to this parameter's base type.
	Expression string
	// Base is the resource type, or "Resource" for the parameters every
	// type shares (_id, _lastUpdated, _tag, _profile, _security, _source).
	Base        string
	Targets     []string    // reference: the resource types it may point to
	Components  []Component // composite: the parts, in order
	Comparators []string    // prefixes the definition lists (eq ne gt...)
	// Modifiers allowed by the parameter's type; the R4 definitions list
	// none themselves, so these come from the search page's type table.
	Modifiers []string

	expr *fhirpath.Expr
	// How the index stores this parameter (see IndexParams): rows holds
	// the names whose rows answer it, refType restricts those rows to one
	// target type, own is false when other parameters' rows hold every
	// value, and covers are the parameters whose values it does not store
	// again.
	rows    []string
	refType string
	own     bool
	covers  []*Param
	// roots are the resource elements expr starts from (fhirpath Roots),
	// nil when it cannot be told: a resource with none of them gives the
	// parameter no values, without evaluating expr.
	roots []string
}

// absent reports whether a resource with these members (fhirpath.Members)
// certainly gives p no values.
func (p *Param) absent(members map[string]bool) bool {
	return p.roots != nil && !fhirpath.Present(members, p.roots)
}

// Component is one part of a composite parameter.
type Component struct {
	Code       string // the code of the component's own parameter
	Type       string
	Expression string // relative to an element the composite's expression yields

	expr *fhirpath.Expr
}

// modifiersByType follows the R4 search page. "[type]" stands for the
// resource-type modifier of references (subject:Patient).
var modifiersByType = map[string][]string{
	"string":    {"contains", "exact", "missing"},
	"token":     {"above", "below", "in", "missing", "not", "not-in", "of-type", "text"},
	"reference": {"[type]", "identifier", "missing"},
	"uri":       {"above", "below", "missing"},
	"number":    {"missing"},
	"date":      {"missing"},
	"quantity":  {"missing"},
	"composite": {"missing"},
	"special":   {"missing"},
}

type registry struct {
	types       map[string]bool
	typeList    []string
	byType      map[string]map[string]*Param // includes the shared Resource params
	sorted      map[string][]*Param
	unsupported map[string]error // "Type.code" -> compile error
}

// loadRegistry decodes and compiles the embedded registry once. The
// result is never modified afterwards.
var loadRegistry = sync.OnceValue(func() *registry {
	r, err := buildRegistry(registryJSON)
	if err != nil {
		// The file is generated and embedded; a test loads it, so this
		// only fires if someone hand-edits registry.json badly.
		panic(fmt.Sprintf("search: embedded registry: %v", err))
	}
	return r
})

type rawRegistry struct {
	Types  []string `json:"types"`
	Params map[string][]struct {
		Name        string   `json:"name"`
		Type        string   `json:"type"`
		Expr        string   `json:"expr"`
		Targets     []string `json:"targets"`
		Comparators []string `json:"comparators"`
		Modifiers   []string `json:"modifiers"`
		Components  []struct {
			Code string `json:"code"`
			Type string `json:"type"`
			Expr string `json:"expr"`
		} `json:"components"`
	} `json:"params"`
}

func buildRegistry(data []byte) (*registry, error) {
	var raw rawRegistry
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	r := &registry{
		types:       map[string]bool{},
		typeList:    raw.Types,
		byType:      map[string]map[string]*Param{},
		sorted:      map[string][]*Param{},
		unsupported: map[string]error{},
	}
	for _, t := range raw.Types {
		r.types[t] = true
	}
	base := map[string][]*Param{}
	for typ, list := range raw.Params {
		for _, rp := range list {
			p := &Param{Name: rp.Name, Type: rp.Type, Expression: rp.Expr, Base: typ,
				Targets: rp.Targets, Comparators: rp.Comparators, Modifiers: rp.Modifiers}
			if len(p.Targets) == 1 && p.Targets[0] == "*" {
				p.Targets = raw.Types
			}
			if p.Modifiers == nil {
				p.Modifiers = modifiersByType[p.Type]
			}
			var err error
			if p.expr, err = fhirpath.Compile(p.Expression); err != nil {
				r.unsupported[typ+"."+p.Name] = err
			} else if roots, ok := p.expr.Roots(); ok {
				p.roots = roots
			}
			for _, rc := range rp.Components {
				c := Component{Code: rc.Code, Type: rc.Type, Expression: rc.Expr}
				if c.expr, err = fhirpath.Compile(c.Expression); err != nil {
					r.unsupported[typ+"."+p.Name+"."+c.Code] = err
				}
				p.Components = append(p.Components, c)
			}
			base[typ] = append(base[typ], p)
		}
	}
	for typ, ps := range wardParams() {
		for _, p := range ps {
			if p.Targets == nil {
				p.Targets = raw.Types
			}
			p.Modifiers = modifiersByType[p.Type]
			var err error
			if p.expr, err = fhirpath.Compile(p.Expression); err != nil {
				return nil, fmt.Errorf("%s.%s: %w", typ, p.Name, err)
			}
			if roots, ok := p.expr.Roots(); ok {
				p.roots = roots
			}
			base[typ] = append(base[typ], p)
		}
	}
	for _, t := range raw.Types {
		m := map[string]*Param{}
		for _, p := range base["Resource"] {
			m[p.Name] = p
		}
		for _, p := range base[t] {
			m[p.Name] = p
		}
		list := make([]*Param, 0, len(m))
		for _, p := range m {
			list = append(list, p)
		}
		slices.SortFunc(list, func(a, b *Param) int { return strings.Compare(a.Name, b.Name) })
		r.byType[t] = m
		r.sorted[t] = list
		planStorage(list)
	}
	return r, nil
}

// SecurityContextParam is the name of Binary.securityContext as a search
// parameter (wardParams).
const SecurityContextParam = "securitycontext"

// wardParams are search parameters Ward defines beyond R4's, by base type:
// Binary.securityContext, a reference to any type, indexed so that a
// search can leave out, inside the SQL, the Binaries whose context the
// caller may not read (totals and pages stay exact).
func wardParams() map[string][]*Param {
	return map[string][]*Param{
		"Binary": {{Name: SecurityContextParam, Type: "reference", Expression: "Binary.securityContext", Base: "Binary"}},
	}
}

// Lookup returns the parameter name of resourceType, including the shared
// ones (_id, _lastUpdated...). Unknown types have no parameters.
func Lookup(resourceType, name string) (*Param, bool) {
	p, ok := loadRegistry().byType[resourceType][name]
	return p, ok
}

// Params returns every parameter of resourceType sorted by name. The slice
// is shared: do not modify it.
func Params(resourceType string) []*Param {
	return loadRegistry().sorted[resourceType]
}

// ResourceTypes returns the R4 resource types a server stores and searches,
// sorted: every concrete type but Parameters, which only carries operation
// inputs and outputs (the generator collects them from the definitions'
// bases and reference targets, which never name Parameters). Shared slice.
func ResourceTypes() []string { return loadRegistry().typeList }

// IsResourceType reports whether name is in ResourceTypes.
func IsResourceType(name string) bool { return loadRegistry().types[name] }

// AllowsModifier reports whether m (without the colon) is valid on p; a
// resource type name is valid on references it may target.
func (p *Param) AllowsModifier(m string) bool {
	if slices.Contains(p.Modifiers, m) {
		return true
	}
	return p.Type == "reference" && slices.Contains(p.Targets, m)
}

// OfTypeSuffix names the rows of a token parameter that hold its
// identifiers' types and values ("identifier:of-type", code
// "system|code|value"), for :of-type.
const OfTypeSuffix = ":of-type"

// IndexParams says which index rows answer a query of parameter name of
// resourceType: rows whose param is one of names and, when refType is set,
// whose reference points at that type. Most parameters are their own rows,
// but the index does not store a value twice for one resource:
//   - a parameter that restricts another to one target type ("patient",
//     Observation.subject.where(resolve() is Patient)) is "subject" rows
//     pointing at a Patient;
//   - a union of other parameters' expressions ("combo-code",
//     Observation.code | Observation.component.code) is their rows, plus
//     its own rows for the parts no other parameter has; a parameter with
//     the same expression as one named before it ("phonetic" and "name")
//     is that one's rows.
//
// Unknown parameters get their own name. _id and _lastUpdated are columns
// of the resource, never rows (IndexValues leaves them out).
func IndexParams(resourceType, name string) (names []string, refType string) {
	if base, ok := strings.CutSuffix(name, OfTypeSuffix); ok {
		// An identifier's type rows sit beside its token rows.
		names, refType = IndexParams(resourceType, base)
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = n + OfTypeSuffix
		}
		return out, refType
	}
	p, ok := Lookup(resourceType, name)
	if !ok || p.rows == nil {
		return []string{name}, ""
	}
	return p.rows, p.refType
}

// Composite reports whether p is a composite the index answers: its
// expression and every component's evaluate, and it has at most three
// components (fhir_idx_composite's columns).
func (p *Param) Composite() bool {
	if p.Type != "composite" || p.expr == nil || len(p.Components) == 0 || len(p.Components) > 3 {
		return false
	}
	for _, c := range p.Components {
		if c.expr == nil {
			return false
		}
	}
	return true
}

// CompositeTypes lists the resource types that have a composite parameter
// the index answers, sorted.
func CompositeTypes() []string {
	var out []string
	for _, typ := range ResourceTypes() {
		if slices.ContainsFunc(Params(typ), (*Param).Composite) {
			out = append(out, typ)
		}
	}
	return out
}

// StoredParams returns the parameters of resourceType of one type
// (reference, token...) that have rows of their own, sorted by name.
func StoredParams(resourceType, paramType string) []string {
	var out []string
	for _, p := range Params(resourceType) {
		if p.Type == paramType && p.own && p.Base != "Resource" {
			out = append(out, p.Name)
		}
	}
	return out
}

// restriction matches "X.where(resolve() is Type)".
var restriction = regexp.MustCompile(`^(.+)\.where\(resolve\(\) is ([A-Za-z]+)\)$`)

// planStorage works out, for the parameters of one type, which values
// the index stores under which name (see IndexParams).
func planStorage(list []*Param) {
	byExpr := map[string]*Param{}
	parts := map[*Param][]string{}
	var indexed []*Param
	for _, p := range list {
		if p.expr == nil || p.Type == "composite" || p.Type == "special" {
			continue
		}
		p.own = true
		if p.Base == "Resource" {
			continue // shared by every type, and stored as itself
		}
		indexed = append(indexed, p)
		parts[p] = unionParts(p.Expression)
		if _, seen := byExpr[p.Type+" "+p.Expression]; !seen {
			byExpr[p.Type+" "+p.Expression] = p
		}
	}
	restricted := map[*Param]*Param{}
	for _, p := range indexed {
		if p.Type != "reference" {
			continue
		}
		if m := restriction.FindStringSubmatch(p.Expression); m != nil {
			if b := byExpr["reference "+m[1]]; b != nil && b != p {
				restricted[p] = b
				p.own, p.refType = false, m[2]
			}
		}
	}
	// covers: b covers p when b's union parts are a subset of p's (a
	// strict one, or equal parts with b named first), both plain.
	for _, p := range indexed {
		if restricted[p] != nil {
			continue
		}
		var cands []*Param
		for _, b := range indexed {
			if b == p || b.Type != p.Type || restricted[b] != nil || !subset(parts[b], parts[p]) {
				continue
			}
			if len(parts[b]) == len(parts[p]) && b.Name > p.Name {
				continue
			}
			cands = append(cands, b)
		}
		// Keep the widest covers: one inside another adds nothing.
		for _, b := range cands {
			wider := false
			for _, c := range cands {
				if c != b && subset(parts[b], parts[c]) && (len(parts[c]) > len(parts[b]) || c.Name < b.Name) {
					wider = true
					break
				}
			}
			if !wider {
				p.covers = append(p.covers, b)
			}
		}
		left := 0
		for _, x := range parts[p] {
			covered := false
			for _, b := range p.covers {
				covered = covered || slices.Contains(parts[b], x)
			}
			if !covered {
				left++
			}
		}
		p.own = left > 0
	}
	var rowsOf func(p *Param) []string
	rowsOf = func(p *Param) []string {
		if p.rows != nil {
			return p.rows
		}
		if b := restricted[p]; b != nil {
			p.rows = rowsOf(b)
			return p.rows
		}
		var names []string
		if p.own {
			names = append(names, p.Name)
		}
		for _, b := range p.covers {
			for _, n := range rowsOf(b) {
				if !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
		}
		slices.Sort(names)
		p.rows = names
		return names
	}
	for _, p := range indexed {
		rowsOf(p)
	}
	planComposites(list)
}

// planComposites: a composite whose expression is the union of other
// composites' whole expressions, with the same components, stores no rows
// of its own; theirs answer it (Observation's combo-code-value-quantity is
// code-value-quantity's rows and component-code-value-quantity's).
func planComposites(list []*Param) {
	same := func(a, b *Param) bool {
		return slices.EqualFunc(a.Components, b.Components, func(x, y Component) bool {
			return x.Type == y.Type && x.Expression == y.Expression
		})
	}
	for _, p := range list {
		if !p.Composite() {
			continue
		}
		p.own, p.rows = true, []string{p.Name}
		parts := unionParts(p.Expression)
		if len(parts) < 2 {
			continue
		}
		var names []string
		for _, part := range parts {
			i := slices.IndexFunc(list, func(b *Param) bool {
				return b != p && b.Composite() && same(b, p) && len(unionParts(b.Expression)) == 1 && unionParts(b.Expression)[0] == part
			})
			if i < 0 {
				names = nil
				break
			}
			names = append(names, list[i].Name)
		}
		if names != nil {
			slices.Sort(names)
			p.own, p.rows = false, names
		}
	}
}

// unionParts splits a FHIRPath expression at its top-level "|" and drops
// parentheses around a whole part, so that "(A.value as Quantity) | B" and
// "A.value as Quantity" share a part.
func unionParts(expr string) []string {
	var out []string
	depth, start := 0, 0
	inQuote := false
	add := func(s string) {
		s = strings.TrimSpace(s)
		for len(s) > 1 && s[0] == '(' && s[len(s)-1] == ')' && balanced(s[1:len(s)-1]) {
			s = strings.TrimSpace(s[1 : len(s)-1])
		}
		out = append(out, s)
	}
	for i := 0; i < len(expr); i++ {
		switch c := expr[i]; {
		case c == '\'':
			inQuote = !inQuote
		case inQuote:
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == '|' && depth == 0:
			add(expr[start:i])
			start = i + 1
		}
	}
	add(expr[start:])
	slices.Sort(out)
	return slices.Compact(out)
}

// balanced reports whether s's parentheses pair up without closing below
// zero (so "(a) | (b)" is not one parenthesised part).
func balanced(s string) bool {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return false
			}
		}
	}
	return depth == 0
}

// subset reports whether every element of a is in b.
func subset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
