package search

import (
	"slices"
	"strconv"
	"strings"
)

var (
	totalModes   = map[string]bool{"none": true, "estimate": true, "accurate": true}
	summaryModes = map[string]bool{"true": true, "text": true, "data": true, "count": true, "false": true}
)

// parseResultParam handles the parameters that shape the result rather
// than select resources. handled is false for anything else.
// Single-valued ones may appear once; seen tracks them.
func (q *Query) parseResultParam(key, value string, seen map[string]bool) (handled bool, err error) {
	name, mod, _ := strings.Cut(key, ":")
	switch name {
	case "_count", "_offset", "_total", "_summary":
		if seen[name] {
			return true, queryErr(key, "%s given more than once", name)
		}
		seen[name] = true
	}
	switch name {
	case "_count", "_offset":
		if mod != "" {
			return true, queryErr(key, "%s takes no modifier", name)
		}
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 {
			return true, queryErr(key, "invalid %s %q (want a non-negative integer)", name, value)
		}
		if name == "_count" {
			q.Count = n
		} else {
			q.Offset = n
		}
	case "_total", "_summary":
		modes, dst := totalModes, &q.Total
		if name == "_summary" {
			modes, dst = summaryModes, &q.Summary
		}
		if mod != "" || !modes[value] {
			return true, queryErr(key, "invalid %s %q", name, value)
		}
		*dst = value
	case "_sort":
		if mod != "" {
			return true, queryErr(key, "_sort takes no modifier")
		}
		for _, s := range strings.Split(value, ",") {
			s = strings.TrimSpace(s)
			desc := strings.HasPrefix(s, "-")
			s = strings.TrimPrefix(s, "-")
			p, ok := Lookup(q.ResourceType, s)
			if !ok {
				return true, queryErr(key, "cannot sort by %q: not a search parameter of %s", s, q.ResourceType)
			}
			if p.Type == "composite" || p.Type == "special" {
				// A composite orders by which part? FHIR leaves it open.
				return true, queryErr(key, "cannot sort by %q: a %s parameter has no single value to order by", s, p.Type)
			}
			q.Sort = append(q.Sort, SortKey{Param: s, Desc: desc})
		}
	case "_elements":
		if mod != "" {
			return true, queryErr(key, "_elements takes no modifier")
		}
		for _, e := range strings.Split(value, ",") {
			e = strings.TrimSpace(e)
			if !isElementPath(e) {
				return true, queryErr(key, "invalid element %q", e)
			}
			q.Elements = append(q.Elements, e)
		}
	case "_include", "_revinclude":
		iterate := false
		switch mod {
		case "":
		case "iterate", "recurse": // recurse is the R3 name
			iterate = true
		default:
			return true, queryErr(key, "unknown modifier :%s", mod)
		}
		inc, err := q.parseInclude(key, value, name == "_revinclude", iterate)
		if err != nil {
			return true, err
		}
		inc.Iterate = iterate
		if name == "_include" {
			q.Include = append(q.Include, inc)
		} else {
			q.RevInclude = append(q.RevInclude, inc)
		}
	default:
		return false, nil
	}
	return true, nil
}

// parseInclude reads "*", "Type:*" or "Type:param[:Target]". For
// _include, Type is the type searched (or, with :iterate, any type); for
// _revinclude it is the type holding the reference, which must be able to
// point at the type searched.
func (q *Query) parseInclude(key, value string, rev, iterate bool) (Include, error) {
	if value == "*" {
		return Include{Type: "*", Param: "*"}, nil
	}
	parts := strings.Split(value, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Include{}, queryErr(key, "invalid %s %q (want Type:parameter[:Target])", key, value)
	}
	inc := Include{Type: parts[0], Param: parts[1]}
	if len(parts) == 3 {
		inc.Target = parts[2]
	}
	if !IsResourceType(inc.Type) {
		return Include{}, queryErr(key, "unknown resource type %q", inc.Type)
	}
	if inc.Param == "*" {
		if !rev && !iterate && inc.Type != q.ResourceType {
			return Include{}, queryErr(key, "%q: _include must start from %s (or use :iterate)", value, q.ResourceType)
		}
		if inc.Target != "" {
			return Include{}, queryErr(key, "%q: a wildcard takes no target", value)
		}
		return inc, nil
	}
	p, ok := Lookup(inc.Type, inc.Param)
	if !ok || p.Type != "reference" {
		return Include{}, queryErr(key, "%s is not a reference parameter of %s", inc.Param, inc.Type)
	}
	if inc.Target != "" && !slices.Contains(p.Targets, inc.Target) {
		return Include{}, queryErr(key, "%s.%s cannot reference %q", inc.Type, inc.Param, inc.Target)
	}
	if !rev && !iterate && inc.Type != q.ResourceType {
		return Include{}, queryErr(key, "%q: _include must start from %s (or use :iterate)", value, q.ResourceType)
	}
	if rev && !slices.Contains(p.Targets, q.ResourceType) {
		return Include{}, queryErr(key, "%s.%s cannot reference %s", inc.Type, inc.Param, q.ResourceType)
	}
	return inc, nil
}

// isElementPath accepts element names, optionally dotted or prefixed by a
// type (Patient.name): letters, digits and underscores.
func isElementPath(s string) bool {
	if s == "" {
		return false
	}
	for _, seg := range strings.Split(s, ".") {
		if seg == "" || !isIdentStart(seg[0]) {
			return false
		}
		for i := 1; i < len(seg); i++ {
			if !isIdentStart(seg[i]) && (seg[i] < '0' || seg[i] > '9') {
				return false
			}
		}
	}
	return true
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}
