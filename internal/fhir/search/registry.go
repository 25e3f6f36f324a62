// Package search holds the R4 search parameter registry (generated from the
// specification's SearchParameter definitions), extracts index values from
// resources, and parses search query strings.
package search

import (
	_ "embed"
	"encoding/json"
	"fmt"
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
	}
	return r, nil
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
