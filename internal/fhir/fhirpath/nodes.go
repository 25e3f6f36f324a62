package fhirpath

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// node is one compiled piece of an expression. eval receives the input
// collection (the focus) and returns the output collection.
type node interface {
	eval(c *evalCtx, focus []Item) ([]Item, error)
}

type literal struct{ items []Item }

func (n *literal) eval(*evalCtx, []Item) ([]Item, error) { return n.items, nil }

type rootVar struct{}

func (rootVar) eval(c *evalCtx, _ []Item) ([]Item, error) { return []Item{c.root}, nil }

type thisVar struct{}

func (thisVar) eval(_ *evalCtx, focus []Item) ([]Item, error) { return focus, nil }

// typeFilter is a capitalised name at the head of an expression: it keeps
// the focus items of that type, so "Patient.name" on an Observation is empty.
type typeFilter struct{ name string }

func (n *typeFilter) eval(_ *evalCtx, focus []Item) ([]Item, error) {
	var out []Item
	for _, it := range focus {
		if isType(it, n.name) {
			out = append(out, it)
		}
	}
	return out, nil
}

// member reads a child element from each focus item, flattening arrays and
// resolving choice elements (value -> valueQuantity typed Quantity).
type member struct{ name string }

func (n *member) eval(c *evalCtx, focus []Item) ([]Item, error) {
	var out []Item
	for _, it := range focus {
		if err := c.step(); err != nil {
			return nil, err
		}
		m, ok := it.Value.(map[string]any)
		if !ok {
			continue
		}
		if v, ok := m[n.name]; ok {
			out = appendFlat(out, v, "")
			continue
		}
		out = appendChoice(out, m, n.name)
	}
	return out, nil
}

func appendFlat(out []Item, v any, typ string) []Item {
	switch x := v.(type) {
	case nil:
		return out
	case []any:
		for _, e := range x {
			if e != nil {
				out = append(out, Item{Value: e, Type: typ})
			}
		}
		return out
	}
	return append(out, Item{Value: v, Type: typ})
}

// appendChoice looks for name+TypeSuffix keys. Only FHIR data type names
// count as suffixes, so "value" does not pick up an element like "valueSet".
func appendChoice(out []Item, m map[string]any, name string) []Item {
	for k, v := range m {
		if len(k) <= len(name) || k[:len(name)] != name {
			continue
		}
		if typ, ok := choiceSuffix[k[len(name):]]; ok {
			out = appendFlat(out, v, typ)
		}
	}
	return out
}

// chain evaluates right on the output of left: the "." of a path.
type chain struct{ left, right node }

func (n *chain) eval(c *evalCtx, focus []Item) ([]Item, error) {
	mid, err := n.left.eval(c, focus)
	if err != nil {
		return nil, err
	}
	// No short cut on an empty mid: empty(), exists() and count() have
	// answers for it.
	return n.right.eval(c, mid)
}

type indexer struct{ operand, index node }

func (n *indexer) eval(c *evalCtx, focus []Item) ([]Item, error) {
	items, err := n.operand.eval(c, focus)
	if err != nil {
		return nil, err
	}
	idx, err := n.index.eval(c, focus)
	if err != nil || len(idx) == 0 {
		return nil, err
	}
	i, err := toInt(idx)
	if err != nil {
		return nil, fmt.Errorf("indexer: %w", err)
	}
	if i < 0 || i >= len(items) {
		return nil, nil
	}
	return items[i : i+1], nil
}

func toInt(items []Item) (int, error) {
	if len(items) != 1 {
		return 0, fmt.Errorf("expected one integer, got %d items", len(items))
	}
	num, ok := items[0].Value.(json.Number)
	if !ok {
		return 0, fmt.Errorf("expected an integer, got %T", items[0].Value)
	}
	i, err := strconv.Atoi(string(num))
	if err != nil {
		return 0, fmt.Errorf("expected an integer: %w", err)
	}
	return i, nil
}

// typeOp is the "is" and "as" operators.
type typeOp struct {
	op      string
	operand node
	typ     string
}

func (n *typeOp) eval(c *evalCtx, focus []Item) ([]Item, error) {
	items, err := n.operand.eval(c, focus)
	if err != nil || len(items) == 0 {
		return nil, err
	}
	if n.op == "as" {
		// The spec wants a singleton here; search expressions apply "as" to
		// repeating elements (Observation.component.value as Quantity), so
		// filter like ofType instead of failing.
		return ofType(items, n.typ), nil
	}
	if len(items) > 1 {
		return nil, fmt.Errorf("'is' needs one item, got %d", len(items))
	}
	return boolItems(isType(items[0], n.typ)), nil
}

func ofType(items []Item, typ string) []Item {
	var out []Item
	for _, it := range items {
		if isType(it, typ) {
			out = append(out, it)
		}
	}
	return out
}

func boolItems(b bool) []Item { return []Item{{Value: b, Type: "boolean"}} }

func jsonInt(i int) json.Number { return json.Number(strconv.Itoa(i)) }
