package schema

import (
	"slices"
	"strings"
)

// ResourceTypes returns the concrete R4 resource types, sorted. The slice is the caller's.
func ResourceTypes() []string {
	return slices.Clone(theModel().resources)
}

// IsResourceType reports whether name is a concrete R4 resource type ("Patient"; not
// "DomainResource", not "HumanName").
func IsResourceType(name string) bool {
	return theModel().concrete[name]
}

// ElementTypes returns the types an element may have, as the specification names them. path
// is dot-separated below typeName (a resource or a complex datatype) and may continue into
// datatypes: ("Observation", "value") gives every value[x] type, ("Observation",
// "valueQuantity") gives ["Quantity"], ("Patient", "name.family") gives ["string"],
// ("Questionnaire", "item.item") gives ["BackboneElement"]. A trailing "[x]" is accepted. It
// reports false for anything that names no element. The slice is the caller's.
func ElementTypes(typeName, path string) ([]string, bool) {
	m := theModel()
	t := m.types[typeName]
	if t == nil || path == "" {
		return nil, false
	}
	parts := strings.Split(path, ".")
	for i, part := range parts {
		part = strings.TrimSuffix(part, "[x]")
		var types []string
		var next *typeInfo
		if el := t.byName[part]; el != nil {
			types, next = el.types, el.inline
		} else if p, ok := t.props[part]; ok && !p.ext {
			// A concrete choice name: valueQuantity.
			types, next = []string{p.typ}, p.el.inline
		} else {
			return nil, false
		}
		if i == len(parts)-1 {
			return slices.Clone(types), true
		}
		if next == nil && len(types) == 1 {
			next = m.types[types[0]]
		}
		if next == nil {
			return nil, false // a primitive, a choice of several types, or a Resource
		}
		t = next
	}
	return nil, false
}

// Repeats reports whether the element at path below typeName (as ElementTypes reads it) may
// repeat (maximum cardinality above 1), and false for ok when path names no element.
func Repeats(typeName, path string) (repeats, ok bool) {
	m := theModel()
	t := m.types[typeName]
	if t == nil || path == "" {
		return false, false
	}
	parts := strings.Split(path, ".")
	for i, part := range parts {
		el := t.byName[strings.TrimSuffix(part, "[x]")]
		if el == nil {
			return false, false
		}
		if i == len(parts)-1 {
			return el.max != 1, true
		}
		next := el.inline
		if next == nil && len(el.types) == 1 {
			next = m.types[el.types[0]]
		}
		if next == nil {
			return false, false
		}
		t = next
	}
	return false, false
}
