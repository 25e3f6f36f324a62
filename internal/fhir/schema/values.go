package schema

import (
	"encoding/json"
	"fmt"
)

// value checks the JSON value of property p (not a "_name" property): cardinality, then each
// item. obj is the enclosing object, where the primitive's "_name" partner may be.
func (w *walker) value(p propInfo, v any, at *seg, depth int, obj map[string]any) {
	el := p.el
	if v == nil {
		w.add("structure", at, "FHIR does not allow null values")
		return
	}
	if el.max == 0 {
		w.add("structure", at, "%s is not allowed here (maximum cardinality 0)", el.name)
		return
	}
	arr, isArr := v.([]any)
	if el.max == 1 {
		if isArr {
			w.add("structure", at, "%s must be a single value, not an array (maximum cardinality 1)", el.name)
			return
		}
		w.item(p, v, at, depth+1)
		return
	}
	if !w.array(el, v, arr, isArr, at, depth) {
		return
	}
	// A null in a primitive array holds a place whose content is in the "_name" array. An
	// empty partner counts as absent, whether or not the walk has dropped it yet.
	var exts []any
	if p.prim != nil {
		if exts, _ = obj[p.pair].([]any); isEmpty(exts) {
			exts = nil
		}
	}
	var kept []any // arr without its empty items, once one is found
	for i, item := range arr {
		c := seg{parent: at.parent, name: at.name, index: i}
		if item == nil {
			if i >= len(exts) || exts[i] == nil || isEmpty(exts[i]) {
				w.add("structure", &c, "FHIR does not allow null values (a null array entry needs a matching %s entry)", p.pair)
			}
			continue
		}
		if p.prim == nil && isEmpty(item) {
			// Primitive arrays keep their positions (their "_name" partner counts on them):
			// an empty item there is a type error, as before.
			w.dropped(&c, item, "the entry is ignored")
			if kept == nil {
				kept = append(make([]any, 0, len(arr)-1), arr[:i]...)
			}
			continue
		}
		if kept != nil {
			kept = append(kept, item)
		}
		w.item(p, item, &c, depth+2)
	}
	if kept != nil {
		obj[at.name] = kept
	}
}

// array checks what every repeating element shares: an array, not too long, not too deep. (An
// empty one never gets here: object drops it.) It reports false when the items should not be
// looked at.
func (w *walker) array(el *elemInfo, v any, arr []any, isArr bool, at *seg, depth int) bool {
	switch {
	case !isArr:
		w.add("structure", at, "%s must be an array (maximum cardinality %s), found %s", el.name, maxText(el.max), kindOf(v))
	case el.max > 1 && len(arr) > el.max:
		w.add("structure", at, "%s has %d entries, at most %d are allowed", el.name, len(arr), el.max)
	case depth+1 > maxDepth:
		w.add("structure", at, "nesting is deeper than %d levels", maxDepth)
	default:
		return true
	}
	return false
}

// item checks one value of property p's type.
func (w *walker) item(p propInfo, v any, at *seg, depth int) {
	switch p.typ {
	case "code", "Coding", "CodeableConcept":
		// The binding is judged once the value has the right shape, so that
		// a malformed code is reported once.
		before := len(w.found)
		defer func() {
			if len(w.found) > before {
				return
			}
			if f, bad := w.terms.CheckBinding(p.el.path, p.typ, v); bad {
				w.report(f.Severity, "code-invalid", at, f.Message)
			}
		}()
	}
	if p.prim != nil {
		w.primitive(p.prim, v, at)
		return
	}
	obj, ok := v.(map[string]any)
	if !ok {
		w.add("structure", at, "expected a JSON object (%s), found %s", p.typ, kindOf(v))
		return
	}
	if p.typ == "Resource" {
		w.resource(obj, at, depth)
		return
	}
	t := p.el.inline
	if t == nil {
		t = w.m.types[p.typ]
	}
	w.object(t, obj, at, depth)
}

// primitive checks a primitive's JSON type and format.
func (w *walker) primitive(pi *primInfo, v any, at *seg) {
	switch x := v.(type) {
	case bool:
		if pi.json != "boolean" {
			w.add("value", at, "expected %s for %s, found a boolean", jsonKind(pi), pi.name)
		}
	case json.Number:
		if pi.json != "number" {
			w.add("value", at, "expected %s for %s, found a number", jsonKind(pi), pi.name)
		} else if !pi.valid(string(x)) {
			w.add("value", at, "%s is not a valid %s", x, pi.name)
		}
	case string:
		switch {
		case pi.json != "string":
			w.add("value", at, "expected %s for %s, found a string", jsonKind(pi), pi.name)
		case x == "":
			w.add("value", at, "FHIR does not allow empty strings")
		case !pi.valid(x):
			w.add("value", at, "%s is not a valid %s", quoteShort(x), pi.name)
		}
	default:
		w.add("structure", at, "expected %s for %s, found %s", jsonKind(pi), pi.name, kindOf(v))
	}
}

// primitiveExt checks "_name", the id and extensions of primitive p. Its shape follows the
// primitive's cardinality; in arrays it lines up with the values by position.
func (w *walker) primitiveExt(p propInfo, v any, at *seg, depth int, obj map[string]any) {
	el := p.el
	if v == nil {
		w.add("structure", at, "FHIR does not allow null values")
		return
	}
	arr, isArr := v.([]any)
	if el.max == 1 {
		if isArr {
			w.add("structure", at, "%s must be a single object, not an array (maximum cardinality 1)", at.name)
			return
		}
		w.extObject(v, at, depth+1)
		return
	}
	if !w.array(el, v, arr, isArr, at, depth) {
		return
	}
	values, hasValues := obj[p.pair].([]any)
	if isEmpty(values) {
		values, hasValues = nil, false // absent, dropped now or soon
	}
	if hasValues && len(values) != len(arr) {
		w.add("structure", at, "%s has %d entries but %s has %d: they must line up", at.name, len(arr), p.pair, len(values))
	}
	nulled, nulls := false, 0
	for i, item := range arr {
		c := seg{parent: at.parent, name: at.name, index: i}
		if item != nil && isEmpty(item) {
			// null says the same ("no id or extension here") and keeps the positions.
			w.dropped(&c, item, "read as null")
			arr[i], item, nulled = nil, nil, true
		}
		if item == nil {
			nulls++
			if i >= len(values) || values[i] == nil {
				w.add("structure", &c, "FHIR does not allow null values (a null array entry needs a matching %s entry)", p.pair)
			}
			continue
		}
		w.extObject(item, &c, depth+2)
	}
	if nulled && nulls == len(arr) {
		delete(obj, at.name) // nothing left to say
	}
}

func (w *walker) extObject(v any, at *seg, depth int) {
	obj, ok := v.(map[string]any)
	if !ok {
		w.add("structure", at, "expected a JSON object with id and/or extension, found %s", kindOf(v))
		return
	}
	w.object(w.m.element, obj, at, depth)
}

func jsonKind(pi *primInfo) string {
	switch pi.json {
	case "boolean":
		return "a JSON boolean"
	case "number":
		return "a JSON number"
	}
	return "a JSON string"
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func maxText(n int) string {
	if n < 0 {
		return "*"
	}
	return fmt.Sprint(n)
}

// quoteShort quotes a value for a message, cut so a huge bad value does not bloat the outcome.
func quoteShort(s string) string {
	const limit = 64
	if len(s) > limit {
		r := []rune(s[:limit])
		return fmt.Sprintf("%q...", string(r[:len(r)-1]))
	}
	return fmt.Sprintf("%q", s)
}
