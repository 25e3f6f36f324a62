package fhirpath

import (
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"strings"
)

type binary struct {
	op          string
	left, right node
}

func (n *binary) eval(c *evalCtx, focus []Item) ([]Item, error) {
	l, err := n.left.eval(c, focus)
	if err != nil {
		return nil, err
	}
	r, err := n.right.eval(c, focus)
	if err != nil {
		return nil, err
	}
	switch n.op {
	case "|":
		return union(c, l, r)
	case "=", "!=", "~", "!~":
		return equality(n.op, l, r), nil
	case "<", ">", "<=", ">=":
		return compare(n.op, l, r)
	}
	return logic(n.op, l, r)
}

// union concatenates and removes duplicates. Primitives are deduplicated by
// value; objects by identity (the same element reached twice), which is
// cheaper than deep comparison and all that indexing needs. A set keeps it
// linear: a ValueSet expansion can hold thousands of codes.
func union(c *evalCtx, l, r []Item) ([]Item, error) {
	out := make([]Item, 0, len(l)+len(r))
	seen := make(map[any]struct{}, len(l)+len(r))
	for _, part := range [2][]Item{l, r} {
		for _, it := range part {
			if err := c.step(); err != nil {
				return nil, err
			}
			k := identity(it.Value)
			if _, dup := seen[k]; dup {
				continue
			}
			seen[k] = struct{}{}
			out = append(out, it)
		}
	}
	return out, nil
}

// numberKey and objectKey keep identity keys of different kinds apart.
type (
	numberKey string
	objectKey uintptr
)

// identity is the deduplication key of a value for union.
func identity(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return objectKey(reflect.ValueOf(x).Pointer())
	case json.Number:
		f, ok := new(big.Float).SetPrec(256).SetString(string(x))
		if !ok {
			return numberKey(x)
		}
		return numberKey(f.Text('g', -1))
	case string, bool:
		return x
	}
	// Anything else (nested arrays never occur after flattening) is kept.
	return new(int)
}

// equality implements = and ~ (and their negations) on collections: empty
// operands give empty, different sizes are unequal, else item by item.
func equality(op string, l, r []Item) []Item {
	equiv := op == "~" || op == "!~"
	if len(l) == 0 || len(r) == 0 {
		if equiv {
			return boolItems((len(l) == 0 && len(r) == 0) == (op == "~"))
		}
		return nil
	}
	eq := len(l) == len(r)
	for i := 0; eq && i < len(l); i++ {
		eq = valueEqual(l[i].Value, r[i].Value, equiv)
	}
	if op == "!=" || op == "!~" {
		eq = !eq
	}
	return boolItems(eq)
}

func valueEqual(a, b any, equiv bool) bool {
	if eq, ok := primitiveEqual(a, b, equiv); ok {
		return eq
	}
	return reflect.DeepEqual(a, b)
}

// primitiveEqual compares JSON primitives; ok is false when either side is
// not a primitive. Numbers compare by value (1.0 = 1), and equivalence (~)
// ignores case and surrounding whitespace of strings.
func primitiveEqual(a, b any, equiv bool) (eq, ok bool) {
	switch x := a.(type) {
	case string:
		y, isStr := b.(string)
		if !isStr {
			return false, isPrimitive(b)
		}
		if equiv {
			return strings.EqualFold(strings.Join(strings.Fields(x), " "), strings.Join(strings.Fields(y), " ")), true
		}
		return x == y, true
	case bool:
		y, isBool := b.(bool)
		return isBool && x == y, isPrimitive(b)
	case json.Number:
		y, isNum := b.(json.Number)
		if !isNum {
			return false, isPrimitive(b)
		}
		fx, okx := new(big.Float).SetString(string(x))
		fy, oky := new(big.Float).SetString(string(y))
		if !okx || !oky {
			return string(x) == string(y), true
		}
		return fx.Cmp(fy) == 0, true
	}
	return false, false
}

func isPrimitive(v any) bool {
	switch v.(type) {
	case string, bool, json.Number:
		return true
	}
	return false
}

func compare(op string, l, r []Item) ([]Item, error) {
	if len(l) == 0 || len(r) == 0 {
		return nil, nil
	}
	if len(l) > 1 || len(r) > 1 {
		return nil, fmt.Errorf("%s needs single operands", op)
	}
	var cmp int
	switch x := l[0].Value.(type) {
	case string:
		y, ok := r[0].Value.(string)
		if !ok {
			return nil, fmt.Errorf("cannot compare string with %T", r[0].Value)
		}
		cmp = strings.Compare(x, y)
	case json.Number:
		y, ok := r[0].Value.(json.Number)
		fx, okx := new(big.Float).SetString(string(x))
		fy, oky := new(big.Float).SetString(string(y))
		if !ok || !okx || !oky {
			return nil, fmt.Errorf("cannot compare %v with %v", x, r[0].Value)
		}
		cmp = fx.Cmp(fy)
	default:
		return nil, fmt.Errorf("cannot compare %T values", l[0].Value)
	}
	switch op {
	case "<":
		return boolItems(cmp < 0), nil
	case ">":
		return boolItems(cmp > 0), nil
	case "<=":
		return boolItems(cmp <= 0), nil
	}
	return boolItems(cmp >= 0), nil
}

// toBool converts a collection for a boolean context: empty is unknown, a
// single boolean is itself, any other single item is true.
func toBool(items []Item) (val, known bool, err error) {
	switch len(items) {
	case 0:
		return false, false, nil
	case 1:
		if b, ok := items[0].Value.(bool); ok {
			return b, true, nil
		}
		return true, true, nil
	}
	return false, false, fmt.Errorf("expected a single boolean, got %d items", len(items))
}

// logic is three-valued and, or, xor and implies.
func logic(op string, l, r []Item) ([]Item, error) {
	a, aok, err := toBool(l)
	if err != nil {
		return nil, err
	}
	b, bok, err := toBool(r)
	if err != nil {
		return nil, err
	}
	switch op {
	case "and":
		if (aok && !a) || (bok && !b) {
			return boolItems(false), nil
		}
		if aok && bok {
			return boolItems(true), nil
		}
	case "or":
		if (aok && a) || (bok && b) {
			return boolItems(true), nil
		}
		if aok && bok {
			return boolItems(false), nil
		}
	case "xor":
		if aok && bok {
			return boolItems(a != b), nil
		}
	case "implies":
		if (aok && !a) || (bok && b) {
			return boolItems(true), nil
		}
		if aok && bok {
			return boolItems(false), nil
		}
	}
	return nil, nil
}
