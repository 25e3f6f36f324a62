package search

import (
	"errors"
	"fmt"
	"slices"

	"github.com/wardhealth/ward/internal/fhir/fhirpath"
)

// ErrUnknownType is returned by Extract for a resource type that R4 does
// not define.
var ErrUnknownType = errors.New("unknown resource type")

// Value is one index entry: what a search parameter found in a resource.
// Only the fields of the parameter's type are set.
type Value struct {
	Param string // parameter code, e.g. "birthdate"
	Type  string // parameter type, e.g. "date"

	// string: String is NormalizeString of Exact; Exact is the text as
	// written, for :exact and :contains.
	String, Exact string

	// token: System and Code; Display is the coding's display or a
	// CodeableConcept's text, for :text. Identifier gives system|value,
	// ContactPoint gives its system (phone, email...) and value, primitives
	// (code, boolean, string, id) give Code alone. Reference also sets
	// System and Code from Reference.identifier, for :identifier.
	System, Code, Display string

	// reference: "Patient/123" gives RefType Patient and RefID 123.
	// Absolute URLs, canonicals, urn: and #contained references keep the
	// whole text in RefURL; RefType is still set when the URL's path ends in
	// Type/id (or from Reference.type), for :[Type].
	RefType, RefID, RefURL string

	// date: [Low, High) in Unix ms at the value's precision (DateRange);
	// a Period gives start..end with MinTime/MaxTime for a missing bound.
	Low, High int64

	// number and quantity: Number, with NumberText the decimal as written so
	// that exact comparisons need not go through float64. Unit is the
	// quantity's code, else its unit (a Money's currency); System is the
	// quantity's unit system.
	Number     float64
	NumberText string
	Unit       string

	// uri: the URI as written.
	URI string

	// OfType lists an Identifier's type codings as "system|code", for
	// token :of-type (system|code|value); the index keeps each beside the
	// token as a row of the parameter's OfTypeSuffix name.
	OfType []string

	// composite: one combination of component values, in component order.
	Components []Value
}

// maxCombinations bounds the values one composite element can produce:
// components multiply, and a hostile resource could repeat codings.
const maxCombinations = 256

// Extract runs every search parameter of resourceType over resource and
// returns the index values. Elements whose content does not fit the
// parameter (an unparsable date, a string where a Reference belongs) are
// skipped: validating resources is not the index's job. Errors come only
// from evaluation itself, and name the parameter.
func Extract(resourceType string, resource map[string]any) ([]Value, error) {
	params := Params(resourceType)
	if params == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, resourceType)
	}
	out := make([]Value, 0, len(params)) // most resources fill a fraction of their parameters, some twice
	for _, p := range params {
		if p.expr == nil || p.Type == "special" && !p.IsNear() {
			continue
		}
		items, err := p.expr.EvalItems(resource)
		if err != nil {
			return nil, fmt.Errorf("search parameter %s.%s: %w", resourceType, p.Name, err)
		}
		if p.IsNear() {
			out = appendNear(out, p, items)
			continue
		}
		if p.Type == "composite" {
			out, err = appendComposite(out, p, resource, items)
			if err != nil {
				return nil, fmt.Errorf("search parameter %s.%s: %w", resourceType, p.Name, err)
			}
			continue
		}
		for _, it := range items {
			out = appendValues(out, p.Name, p.Type, it)
		}
	}
	typeContained(resource, out)
	return out, nil
}

// typeContained sets the RefType of "#id" references to the type of the
// contained resource they name, as resolve() sees it, so that a search
// restricted to one target type ("patient") finds them too.
func typeContained(resource map[string]any, vals []Value) {
	var types map[string]string
	for i := range vals {
		v := &vals[i]
		if v.Type != "reference" || v.RefType != "" || len(v.RefURL) < 2 || v.RefURL[0] != '#' {
			continue
		}
		if types == nil {
			types = map[string]string{}
			list, _ := resource["contained"].([]any)
			for _, c := range list {
				cm, _ := c.(map[string]any)
				id, _ := cm["id"].(string)
				rt, _ := cm["resourceType"].(string)
				if id != "" && IsResourceType(rt) {
					types[id] = rt
				}
			}
		}
		v.RefType = types[v.RefURL[1:]]
	}
}

// IndexValues is what the index stores of resource: Extract less the
// values it answers otherwise. _id and _lastUpdated are left out (columns
// of the resource), so are parameters held in other parameters' rows
// (composites included); a parameter that other parameters partly cover
// (see IndexParams) keeps only the values they do not have. Location near
// is two number rows (near.go).
func IndexValues(resourceType string, resource map[string]any) ([]Value, error) {
	params := Params(resourceType)
	if params == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, resourceType)
	}
	out := make([]Value, 0, len(params)/4)
	members := fhirpath.Members(resource)
	var found map[*Param][]Value // values of covering parameters, once each
	eval := func(p *Param) ([]Value, error) {
		if v, ok := found[p]; ok {
			return v, nil
		}
		if p.absent(members) {
			return nil, nil // none of the elements it reads: nothing to evaluate
		}
		items, err := p.expr.EvalItems(resource)
		if err != nil {
			return nil, fmt.Errorf("search parameter %s.%s: %w", resourceType, p.Name, err)
		}
		var vals []Value
		for _, it := range items {
			vals = appendValues(vals, p.Name, p.Type, it)
		}
		if found == nil {
			found = map[*Param][]Value{}
		}
		found[p] = vals
		return vals, nil
	}
	for _, p := range params {
		if p.Type == "composite" && p.own && p.Composite() || p.IsNear() && p.expr != nil {
			if p.absent(members) {
				continue
			}
			items, err := p.expr.EvalItems(resource)
			if err == nil && p.IsNear() {
				out = appendNear(out, p, items)
			} else if err == nil {
				out, err = appendComposite(out, p, resource, items)
			}
			if err != nil {
				return nil, fmt.Errorf("search parameter %s.%s: %w", resourceType, p.Name, err)
			}
			continue
		}
		if !p.own || p.Name == "_id" || p.Name == "_lastUpdated" {
			continue
		}
		vals, err := eval(p)
		if err != nil {
			return nil, err
		}
		if len(p.covers) == 0 {
			out = append(out, vals...)
			continue
		}
		var others []Value
		for _, b := range p.covers {
			bv, err := eval(b)
			if err != nil {
				return nil, err
			}
			others = append(others, bv...)
		}
		for _, v := range vals {
			if !slices.ContainsFunc(others, func(o Value) bool { return sameValue(o, v) }) {
				out = append(out, v)
			}
		}
	}
	typeContained(resource, out)
	if t, ok := resource["text"].(map[string]any); ok {
		if div, ok := t["div"].(string); ok {
			out = appendNarrative(out, div)
		}
	}
	return out, nil
}

// sameValue compares two non-composite values, ignoring the parameter.
func sameValue(a, b Value) bool {
	return a.Type == b.Type && a.String == b.String && a.Exact == b.Exact && a.System == b.System && a.Code == b.Code &&
		a.Display == b.Display && a.RefType == b.RefType && a.RefID == b.RefID && a.RefURL == b.RefURL &&
		a.Low == b.Low && a.High == b.High && a.Number == b.Number && a.NumberText == b.NumberText &&
		a.Unit == b.Unit && a.URI == b.URI
}

func appendComposite(out []Value, p *Param, resource map[string]any, items []fhirpath.Item) ([]Value, error) {
	for _, it := range items {
		combos := [][]Value{nil}
		for _, c := range p.Components {
			if c.expr == nil {
				combos = nil
				break
			}
			sub, err := c.expr.EvalFrom(resource, it)
			if err != nil {
				return nil, err
			}
			var vals []Value
			for _, s := range sub {
				vals = appendValues(vals, c.Code, c.Type, s)
			}
			if c.Type == "token" {
				// A CodeableConcept's text alone: a composite's parts
				// take no :text, so no search would match it.
				vals = slices.DeleteFunc(vals, func(v Value) bool { return v.Code == "" && v.System == "" })
			}
			var next [][]Value
			for _, combo := range combos {
				for _, v := range vals {
					if len(next) == maxCombinations {
						break
					}
					next = append(next, append(append([]Value(nil), combo...), v))
				}
			}
			combos = next
		}
		for _, combo := range combos {
			if len(combo) > 0 {
				out = append(out, Value{Param: p.Name, Type: p.Type, Components: combo})
			}
		}
	}
	return out, nil
}

// appendValues converts one element to the index values of a parameter
// type.
func appendValues(out []Value, param, typ string, it fhirpath.Item) []Value {
	base := Value{Param: param, Type: typ}
	switch typ {
	case "string":
		return appendStrings(out, base, it.Value)
	case "token":
		return appendTokens(out, base, it)
	case "reference":
		return appendReference(out, base, it.Value)
	case "date":
		return appendDates(out, base, it.Value)
	case "number", "quantity":
		return appendQuantities(out, base, it.Value)
	case "uri":
		if s, ok := it.Value.(string); ok {
			base.URI = s
			return append(out, base)
		}
	}
	return out
}
