package fhirpath

import (
	"fmt"
	"strings"
)

// call is a function invocation; fn receives the focus and the argument
// nodes unevaluated, because criteria (where, exists...) run once per item.
type call struct {
	name string
	args []node
	typ  string // the type argument of as, is and ofType
	fn   func(c *evalCtx, n *call, focus []Item) ([]Item, error)
}

func (n *call) eval(c *evalCtx, focus []Item) ([]Item, error) {
	if err := c.step(); err != nil {
		return nil, err
	}
	return n.fn(c, n, focus)
}

type funcSpec struct {
	minArgs, maxArgs int
	typeArg          bool
	fn               func(c *evalCtx, n *call, focus []Item) ([]Item, error)
}

// functions is the supported function table, built once.
var functions = map[string]funcSpec{
	"where":     {1, 1, false, fnWhere},
	"select":    {1, 1, false, fnSelect},
	"exists":    {0, 1, false, fnExists},
	"all":       {1, 1, false, fnAll},
	"empty":     {0, 0, false, func(_ *evalCtx, _ *call, f []Item) ([]Item, error) { return boolItems(len(f) == 0), nil }},
	"hasValue":  {0, 0, false, fnHasValue},
	"count":     {0, 0, false, fnCount},
	"first":     {0, 0, false, func(_ *evalCtx, _ *call, f []Item) ([]Item, error) { return slice(f, 0, 1), nil }},
	"last":      {0, 0, false, func(_ *evalCtx, _ *call, f []Item) ([]Item, error) { return slice(f, len(f)-1, len(f)), nil }},
	"tail":      {0, 0, false, func(_ *evalCtx, _ *call, f []Item) ([]Item, error) { return slice(f, 1, len(f)), nil }},
	"single":    {0, 0, false, fnSingle},
	"not":       {0, 0, false, fnNot},
	"as":        {1, 1, true, func(_ *evalCtx, n *call, f []Item) ([]Item, error) { return ofType(f, n.typ), nil }},
	"ofType":    {1, 1, true, func(_ *evalCtx, n *call, f []Item) ([]Item, error) { return ofType(f, n.typ), nil }},
	"is":        {1, 1, true, fnIs},
	"resolve":   {0, 0, false, fnResolve},
	"extension": {1, 1, false, fnExtension},
}

func newCall(name string, args []node) (node, error) {
	spec, ok := functions[name]
	if !ok {
		return nil, fmt.Errorf("function %s(): %w", name, ErrUnsupported)
	}
	if len(args) < spec.minArgs || len(args) > spec.maxArgs {
		return nil, fmt.Errorf("%s() takes %d to %d arguments, got %d", name, spec.minArgs, spec.maxArgs, len(args))
	}
	n := &call{name: name, args: args, fn: spec.fn}
	if spec.typeArg {
		t, ok := typeName(args[0])
		if !ok {
			return nil, fmt.Errorf("%s() needs a type name", name)
		}
		n.typ = t
	}
	return n, nil
}

func slice(f []Item, from, to int) []Item {
	if from < 0 || from >= to || from >= len(f) {
		return nil
	}
	return f[from:to]
}

// perItem evaluates the criterion with each item as $this.
func perItem(c *evalCtx, crit node, focus []Item, keep func(it Item, res []Item) (bool, error)) error {
	for _, it := range focus {
		res, err := crit.eval(c, []Item{it})
		if err != nil {
			return err
		}
		stop, err := keep(it, res)
		if err != nil || stop {
			return err
		}
	}
	return nil
}

func fnWhere(c *evalCtx, n *call, focus []Item) ([]Item, error) {
	var out []Item
	err := perItem(c, n.args[0], focus, func(it Item, res []Item) (bool, error) {
		b, known, err := toBool(res)
		if err == nil && known && b {
			out = append(out, it)
		}
		return false, err
	})
	return out, err
}

func fnSelect(c *evalCtx, n *call, focus []Item) ([]Item, error) {
	var out []Item
	err := perItem(c, n.args[0], focus, func(_ Item, res []Item) (bool, error) {
		out = append(out, res...)
		return false, nil
	})
	return out, err
}

func fnExists(c *evalCtx, n *call, focus []Item) ([]Item, error) {
	if len(n.args) == 0 {
		return boolItems(len(focus) > 0), nil
	}
	found, err := fnWhere(c, n, focus)
	return boolItems(len(found) > 0), err
}

func fnAll(c *evalCtx, n *call, focus []Item) ([]Item, error) {
	all := true
	err := perItem(c, n.args[0], focus, func(_ Item, res []Item) (bool, error) {
		b, known, err := toBool(res)
		if err != nil || !known || !b {
			all = false
			return true, err
		}
		return false, nil
	})
	return boolItems(all), err
}

func fnHasValue(_ *evalCtx, _ *call, focus []Item) ([]Item, error) {
	return boolItems(len(focus) == 1 && isPrimitive(focus[0].Value)), nil
}

func fnCount(_ *evalCtx, _ *call, focus []Item) ([]Item, error) {
	return []Item{{Value: jsonInt(len(focus)), Type: "integer"}}, nil
}

func fnSingle(_ *evalCtx, _ *call, focus []Item) ([]Item, error) {
	if len(focus) > 1 {
		return nil, fmt.Errorf("single(): %d items", len(focus))
	}
	return focus, nil
}

func fnNot(_ *evalCtx, _ *call, focus []Item) ([]Item, error) {
	b, known, err := toBool(focus)
	if err != nil || !known {
		return nil, err
	}
	return boolItems(!b), nil
}

func fnIs(_ *evalCtx, n *call, focus []Item) ([]Item, error) {
	if len(focus) == 0 {
		return nil, nil
	}
	if len(focus) > 1 {
		return nil, fmt.Errorf("is(): %d items", len(focus))
	}
	return boolItems(isType(focus[0], n.typ)), nil
}

// fnExtension is extension(url): the extensions of each item with that url.
func fnExtension(c *evalCtx, n *call, focus []Item) ([]Item, error) {
	urls, err := n.args[0].eval(c, focus)
	if err != nil {
		return nil, err
	}
	if len(urls) != 1 {
		return nil, nil
	}
	url, ok := urls[0].Value.(string)
	if !ok {
		return nil, fmt.Errorf("extension() needs a string url")
	}
	var out []Item
	for _, it := range focus {
		m, _ := it.Value.(map[string]any)
		exts, _ := m["extension"].([]any)
		for _, e := range exts {
			if em, ok := e.(map[string]any); ok && em["url"] == url {
				out = append(out, Item{Value: em, Type: "Extension"})
			}
		}
	}
	return out, nil
}

// fnResolve types each reference by its target without fetching anything;
// see the package comment.
func fnResolve(c *evalCtx, _ *call, focus []Item) ([]Item, error) {
	var out []Item
	for _, it := range focus {
		var ref string
		switch v := it.Value.(type) {
		case string:
			ref = v
		case map[string]any:
			ref, _ = v["reference"].(string)
		}
		if ref == "" {
			continue
		}
		if strings.HasPrefix(ref, "#") {
			if res, ok := contained(c.root.Value, ref[1:]); ok {
				out = append(out, rootItem(res))
			}
			continue
		}
		typ, id, ok := SplitReference(ref)
		if !ok {
			continue
		}
		out = append(out, Item{Value: map[string]any{"resourceType": typ, "id": id}, Type: typ})
	}
	return out, nil
}

func contained(root any, id string) (any, bool) {
	m, _ := root.(map[string]any)
	list, _ := m["contained"].([]any)
	for _, r := range list {
		if rm, ok := r.(map[string]any); ok && rm["id"] == id {
			return rm, true
		}
	}
	return nil, false
}

// SplitReference returns the type and id of a literal reference, relative
// ("Patient/123") or absolute ("https://x/fhir/Patient/123/_history/2").
// ok is false when no Type/id pair can be found.
func SplitReference(ref string) (typ, id string, ok bool) {
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	ref = strings.TrimSuffix(ref, "/")
	slash := strings.LastIndexByte(ref, '/')
	if slash <= 0 || slash == len(ref)-1 {
		return "", "", false
	}
	id = ref[slash+1:]
	typ = ref[:slash]
	if j := strings.LastIndexByte(typ, '/'); j >= 0 {
		typ = typ[j+1:]
	}
	if typ == "" || typ[0] < 'A' || typ[0] > 'Z' {
		return "", "", false
	}
	return typ, id, true
}
