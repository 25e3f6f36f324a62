// Package fhirpath evaluates the subset of FHIRPath that the R4
// SearchParameter expressions use, over FHIR JSON decoded into
// map[string]any / []any with json.Number numbers (Decoder.UseNumber).
//
// Supported: paths with implicit array flattening, a resource type as the
// first segment (Patient.name), choice elements (Observation.value yields
// valueQuantity, valueString...), the operators | = != ~ !~ < > <= >= and or
// xor implies is as, parentheses, string/number/boolean literals, %resource,
// $this, indexers, and the functions where, select, exists, all, empty,
// first, last, tail, single, count, not, hasValue, as, is, ofType, resolve
// and extension. Anything else is a compile error wrapping ErrUnsupported.
//
// Without a structure model, types are known only where the JSON says so:
// the suffix of a choice element (valueQuantity is a Quantity), a
// resourceType property, and JSON primitives. resolve() does not fetch
// anything: it yields a stub {resourceType, id} typed by the reference's
// type segment (or the contained resource a "#id" reference names), which
// is all `where(resolve() is Patient)` needs.
package fhirpath

import (
	"fmt"
)

// Item is one value of a FHIRPath collection: a JSON value and, when known,
// its FHIR type ("Quantity", "dateTime", "Patient").
type Item struct {
	Value any
	Type  string
}

// Expr is a compiled expression. It is immutable and safe for concurrent use.
type Expr struct {
	src  string
	root node
}

// Compile parses expr. Errors name the position; constructs outside the
// subset wrap ErrUnsupported.
func Compile(expr string) (*Expr, error) {
	toks, err := lex(expr)
	if err != nil {
		return nil, fmt.Errorf("fhirpath %q: %w", expr, err)
	}
	p := &parser{toks: toks}
	root, err := p.parseExpr(0)
	if err != nil {
		return nil, fmt.Errorf("fhirpath %q: %w", expr, err)
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, fmt.Errorf("fhirpath %q: unexpected %q at %d", expr, t.text, t.pos)
	}
	return &Expr{src: expr, root: root}, nil
}

// MustCompile is Compile for expressions known at build time.
func MustCompile(expr string) *Expr {
	e, err := Compile(expr)
	if err != nil {
		panic(err)
	}
	return e
}

// String returns the source text.
func (e *Expr) String() string { return e.src }

// Eval evaluates the expression with resource as both context and
// %resource, and returns the plain values.
func (e *Expr) Eval(resource any) ([]any, error) {
	items, err := e.EvalItems(resource)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(items))
	for i, it := range items {
		out[i] = it.Value
	}
	return out, nil
}

// EvalItems is Eval keeping each value's type.
func (e *Expr) EvalItems(resource any) ([]Item, error) {
	return e.EvalFrom(resource, rootItem(resource))
}

// EvalFrom evaluates with focus as the context ($this) and resource as
// %resource: composite search parameter components are expressions relative
// to an element of the resource.
func (e *Expr) EvalFrom(resource any, focus Item) ([]Item, error) {
	c := &evalCtx{root: rootItem(resource)}
	out, err := e.root.eval(c, []Item{focus})
	if err != nil {
		return nil, fmt.Errorf("fhirpath %q: %w", e.src, err)
	}
	return out, nil
}

func rootItem(resource any) Item {
	it := Item{Value: resource}
	if m, ok := resource.(map[string]any); ok {
		if rt, ok := m["resourceType"].(string); ok {
			it.Type = rt
		}
	}
	return it
}

// evalCtx carries what every node may need besides its input collection.
type evalCtx struct {
	root  Item
	steps int
}

// maxSteps bounds work per evaluation so that no input can make Eval spin:
// search expressions take a few dozen steps per resource.
const maxSteps = 1 << 20

func (c *evalCtx) step() error {
	c.steps++
	if c.steps > maxSteps {
		return fmt.Errorf("evaluation exceeded %d steps", maxSteps)
	}
	return nil
}
