package fhirpath

// Roots names the elements of the resource an expression starts from when
// it is a path (or a union of paths) whose every step yields nothing from
// nothing: "Observation.subject.where(resolve() is Patient)" starts from
// subject, "(Observation.value as Quantity) | Observation.component.value"
// from value and component. ok is false when that cannot be told (a
// function such as exists() answers on empty input, or the expression is
// not a path from the resource); then the expression must be evaluated.
// A caller that finds none of the roots in a resource (Present) knows the
// expression yields nothing there.
func (e *Expr) Roots() (names []string, ok bool) {
	return roots(e.root)
}

func roots(n node) ([]string, bool) {
	switch x := n.(type) {
	case *member:
		return []string{x.name}, true
	case *chain:
		if t, ok := x.left.(*typeFilter); ok && t != nil {
			// Type.child at the head: the type keeps the resource.
			switch r := x.right.(type) {
			case *member:
				return []string{r.name}, true
			case *call:
				if r.name == "extension" { // Type.extension('url')
					return []string{"extension"}, true
				}
			}
			return nil, false
		}
		if !emptyOnEmpty(x.right) {
			return nil, false
		}
		return roots(x.left)
	case *typeOp:
		if x.op != "as" {
			return nil, false
		}
		return roots(x.operand)
	case *binary:
		if x.op != "|" {
			return nil, false
		}
		l, ok := roots(x.left)
		if !ok {
			return nil, false
		}
		r, ok := roots(x.right)
		if !ok {
			return nil, false
		}
		return append(l, r...), true
	}
	return nil, false
}

// emptyOnEmpty reports whether n, as a step applied to an empty
// collection, always yields an empty one.
func emptyOnEmpty(n node) bool {
	switch x := n.(type) {
	case *member:
		return true
	case *typeOp:
		return x.op == "as"
	case *call:
		switch x.name {
		case "where", "first", "as", "ofType", "resolve", "extension":
			return true
		}
	}
	return false
}

// Members lists the names a resource's elements answer to, for Present:
// each key, and for a choice element (valueQuantity) its name (value).
func Members(resource map[string]any) map[string]bool {
	out := make(map[string]bool, len(resource)+2)
	for k := range resource {
		out[k] = true
		for i := 1; i < len(k); i++ {
			if k[i] >= 'A' && k[i] <= 'Z' {
				if _, ok := choiceSuffix[k[i:]]; ok {
					out[k[:i]] = true
				}
			}
		}
	}
	return out
}

// Present reports whether one of names (Roots) is among members (Members).
func Present(members map[string]bool, names []string) bool {
	for _, name := range names {
		if members[name] {
			return true
		}
	}
	return false
}
