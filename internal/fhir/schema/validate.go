package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/wardhealth/ward/internal/fhir/terminology"
)

// Issue is one problem found in a resource, shaped like an OperationOutcome.issue.
//
// Code is a FHIR IssueType:
//   - "structure": the JSON does not have the shape of the type: an unknown property, an array
//     where a single value belongs or the reverse, an object where a primitive belongs, null,
//     resourceType away from a resource root, nesting too deep, several types of one choice
//     element. Also, as a warning, an empty object or array (see ValidateDecoded).
//   - "value": a primitive has the wrong JSON type or does not match its format (including
//     empty strings and integers out of range).
//   - "required": an element with minimum cardinality 1 (or resourceType) is missing.
//   - "not-supported": resourceType names no R4 resource.
//   - "invalid": resourceType names an abstract resource (Resource, DomainResource).
//
// Expression is the resource type followed by the JSON path of the offending property, with
// array positions: "Patient.name[0].given[1]", "Patient._birthDate.extension[0].url",
// "Bundle.entry[2].resource.code". A root whose type is not known is called "Resource".
type Issue struct {
	Severity   string // "error", or "warning" for an empty object or array (dropped)
	Code       string
	Expression string
	Message    string
}

// ErrNotJSON is returned (wrapped) by Validate when the input is not a single JSON object.
var ErrNotJSON = errors.New("schema: not a JSON object")

// maxDepth bounds the nesting of objects and arrays, counting the resource itself as 1. Real
// resources stay far below it; the limit keeps hostile input from costing deep recursion.
const maxDepth = 64

// Validate checks one resource in FHIR JSON against the R4 structure. It returns the
// resourceType as written (when it is a string) and the issues in document order; a valid
// resource has none. err is non-nil, wrapping ErrNotJSON, only when resource is not one JSON
// object. Safe for concurrent use.
//
// Coded values are judged against their elements' bindings (code "code-invalid": an error for
// a required binding, a warning for extensible and preferred ones; package terminology).
//
// Not checked: invariants (FHIRPath constraints such as ext-1 or dom-2), bindings whose value
// set cannot be expanded locally, reference targets, profiles, XHTML content of narratives, and duplicate property names
// (encoding/json keeps the last one).
func Validate(resource []byte) (resourceType string, issues []Issue, err error) {
	dec := json.NewDecoder(bytes.NewReader(resource))
	// Numbers stay as their text: decimals keep their precision, integers their exact form.
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrNotJSON, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", nil, fmt.Errorf("%w: more data after the top-level value", ErrNotJSON)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return "", nil, fmt.Errorf("%w: the top-level value is %s", ErrNotJSON, kindOf(v))
	}
	resourceType, issues = ValidateDecoded(resource, obj)
	return resourceType, issues, nil
}

// ValidateDecoded is Validate for a resource its caller has decoded already
// (encoding/json with UseNumber) into obj; resource is its JSON text, which
// orders the issues. It saves the second decoding of a write's body.
//
// It also removes from obj every empty object and array (and every one that
// holds only those, so {"name":[{}]} loses name), reporting each as a
// warning at its place in resource. R4 allows none, but clients send them
// (Oystehr accepts Group.member: []) and lenient parsers such as HAPI's drop
// them: so does Ward, and what it stores has none. An empty object among the
// ids and extensions of a primitive array ("_given") becomes null, so that
// the two arrays still line up. Nulls and empty strings stay errors.
func ValidateDecoded(resource []byte, obj map[string]any) (resourceType string, issues []Issue) {
	m := theModel()
	resourceType, _ = obj["resourceType"].(string)
	w := walker{m: m, terms: terminology.R4()}
	var root seg
	w.resource(obj, &root, 1)
	if len(w.found) == 0 {
		return resourceType, nil
	}
	if len(w.found) > 1 {
		sortDocumentOrder(resource, w.found)
	}
	label := "Resource"
	if t := m.types[resourceType]; t != nil && t.resource {
		label = resourceType
	}
	issues = make([]Issue, len(w.found))
	for i, f := range w.found {
		issues[i] = f.issue
		issues[i].Expression = label + f.rel
	}
	return resourceType, issues
}

// seg is one step of the path to the value being checked. Segments live on the stack of the
// walk and are rendered into a string only when an issue is reported.
type seg struct {
	parent *seg
	name   string
	index  int // array position, or -1
}

// rel renders the path below the root: ".name[0].given[1]".
func (s *seg) rel() string {
	var parts []*seg
	for p := s; p != nil && p.parent != nil; p = p.parent {
		parts = append(parts, p)
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteByte('.')
		b.WriteString(parts[i].name)
		if parts[i].index >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(parts[i].index))
			b.WriteByte(']')
		}
	}
	return b.String()
}

func child(parent *seg, name string) seg { return seg{parent: parent, name: name, index: -1} }

type found struct {
	issue Issue
	rel   string
}

type walker struct {
	m     *model
	terms *terminology.Core // judges coded values against the elements' bindings
	found []found
}

func (w *walker) add(code string, at *seg, format string, args ...any) {
	w.report("error", code, at, fmt.Sprintf(format, args...))
}

func (w *walker) report(severity, code string, at *seg, msg string) {
	w.found = append(w.found, found{issue: Issue{Severity: severity, Code: code, Message: msg}, rel: at.rel()})
}

// dropped reports an empty value that ValidateDecoded removes; instead says
// what takes its place.
func (w *walker) dropped(at *seg, v any, instead string) {
	msg := "FHIR does not allow empty objects or arrays, and this one holds nothing else: " + instead
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			msg = "FHIR does not allow empty arrays: " + instead
		}
	case map[string]any:
		if len(x) == 0 {
			msg = "FHIR does not allow empty objects: " + instead
		}
	}
	w.report("warning", "structure", at, msg)
}

// isEmpty reports whether v is an empty object or array, or one holding only
// those (at any depth). A null or a primitive is content: not empty.
func isEmpty(v any) bool {
	switch x := v.(type) {
	case []any:
		for _, item := range x {
			if !isEmpty(item) {
				return false
			}
		}
		return true
	case map[string]any:
		for _, item := range x {
			if !isEmpty(item) {
				return false
			}
		}
		return true
	}
	return false
}

// resource checks an object that must be a resource: the root, a contained resource, a
// Bundle entry's resource or a Parameters parameter's resource.
func (w *walker) resource(obj map[string]any, at *seg, depth int) {
	rtAt := child(at, "resourceType")
	raw, ok := obj["resourceType"]
	if !ok {
		w.add("required", &rtAt, "a resource must have a resourceType")
		return
	}
	rt, ok := raw.(string)
	if !ok {
		w.add("value", &rtAt, "resourceType must be a string, found %s", kindOf(raw))
		return
	}
	t := w.m.types[rt]
	switch {
	case t == nil || !t.resource:
		w.add("not-supported", &rtAt, "%q is not a FHIR R4 resource type", rt)
	case !w.m.concrete[rt]:
		w.add("invalid", &rtAt, "%s is an abstract resource type; use a concrete one such as Patient", rt)
	default:
		w.object(t, obj, at, depth)
	}
}

type choiceSeen struct {
	el  *elemInfo
	key string
}

// object checks the properties of one object against t, then its required elements.
func (w *walker) object(t *typeInfo, obj map[string]any, at *seg, depth int) {
	if depth > maxDepth {
		w.add("structure", at, "nesting is deeper than %d levels", maxDepth)
		return
	}
	var seenBuf [4]choiceSeen
	seen := seenBuf[:0]
	for k, v := range obj {
		if k == "resourceType" && t.resource {
			continue
		}
		c := child(at, k)
		p, ok := t.props[k]
		switch {
		case !ok && k == "resourceType":
			// Only here: ExampleScenario.instance has an element of this name.
			w.add("structure", &c, "resourceType is only allowed at the root of a resource, not in %s", t.name)
			continue
		case !ok:
			w.add("structure", &c, "unknown element %q in %s", k, t.name)
			continue
		case isEmpty(v):
			// Dropped before anything else looks at it: then a required
			// element it was is missing, and a choice it was is not one.
			w.dropped(&c, v, "the element is ignored")
			delete(obj, k)
			continue
		case p.el.choice:
			seen = append(seen, choiceSeen{el: p.el, key: strings.TrimPrefix(k, "_")})
		}
		if p.ext {
			w.primitiveExt(p, v, &c, depth, obj)
		} else {
			w.value(p, v, &c, depth, obj)
		}
	}
	if len(seen) > 1 {
		w.choices(seen, at)
	}
	for _, el := range t.required {
		if !present(obj, el) {
			c := child(at, el.name)
			what := el.name
			if el.choice {
				what += "[x]"
			}
			w.add("required", &c, "%s.%s is required (minimum cardinality %d)", t.name, what, el.min)
		}
	}
}

func present(obj map[string]any, el *elemInfo) bool {
	for _, n := range el.jsonNames {
		if _, ok := obj[n]; ok {
			return true
		}
	}
	return false
}

// choices reports choice elements given with more than one type. It runs after the property
// loop so that the report does not depend on map iteration order.
func (w *walker) choices(seen []choiceSeen, at *seg) {
	for i, s := range seen {
		if slices.ContainsFunc(seen[:i], func(o choiceSeen) bool { return o.el == s.el }) {
			continue // reported with the first property of this element
		}
		var keys []string
		for _, o := range seen[i:] {
			if o.el == s.el && !slices.Contains(keys, o.key) {
				keys = append(keys, o.key)
			}
		}
		if len(keys) > 1 {
			slices.Sort(keys)
			c := child(at, s.el.name)
			w.add("structure", &c, "%s[x] may have only one type, found %s", s.el.name, strings.Join(keys, ", "))
		}
	}
}
