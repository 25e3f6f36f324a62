package policy

import (
	"slices"
	"strings"
)

// Decision is the answer to one (action, resource) request.
type Decision struct {
	Allowed bool
	// Effect, Source and RuleIndex name the deciding rule: the first matching
	// Deny, else the first unconditional Allow, else the first conditional
	// Allow. With no deciding rule (default deny) Effect is "", Source nil and
	// RuleIndex -1.
	Effect    Effect
	Source    *Source
	RuleIndex int
	// Conditions is set when only conditional Allows matched: the request is
	// allowed for resources that match at least one of these FHIR searches.
	// It is shared with the Set: do not modify it.
	Conditions []Condition
	// DependencyConditions is set when the action's dependency (FHIR:Read for
	// FHIR:History) was itself granted under different conditions: the
	// resource must also match one of these.
	DependencyConditions []Condition
}

var noRule = Decision{RuleIndex: -1}

// Decide answers whether the Set allows action on resource.
//
// action is "Service:Name" (aliases accepted). resource is concrete per
// segment: "FHIR:Patient:123", or "FHIR:Patient:*" for type-level actions
// (create, search, list), where the "*" only matches a pattern "*";
// "Project:Settings"; "Z3:bucket/a/b.pdf", "Z3:bucket/dir/" (a folder) or
// "Z3:*" (ListBuckets, CreateBucket).
//
// An explicit matching Deny wins; no matching Allow means deny; a dependent
// action (FHIR:History) is allowed only where its dependency (FHIR:Read) is
// allowed too. On a compiled Set, Decide does not allocate.
func (s *Set) Decide(action, resource string) Decision {
	id, ok := actionIDs[action]
	if !ok {
		return noRule
	}
	var buf verdict
	v := s.lookup(id, resource, &buf)
	if v == nil || (v.deny != nil || v.allow == nil && v.cond == nil) {
		return v.decision()
	}
	dep := s.actions[id].dep
	if dep < 0 {
		return v.decision()
	}
	var depBuf verdict
	dv := s.lookup(dep, resource, &depBuf)
	switch {
	case dv != nil && dv.deny != nil:
		return dv.decision() // the dependency is denied explicitly: name that Deny
	case dv == nil || dv.allow == nil && dv.cond == nil:
		return noRule
	}
	d := v.decision()
	switch {
	case d.Conditions != nil && dv.allow == nil && !sameConditions(d.Conditions, dv.conds):
		d.DependencyConditions = dv.conds
	case d.Conditions == nil && dv.allow == nil:
		d.Conditions = dv.conds
	}
	return d
}

// decideOwn decides one action by its own rules, ignoring dependencies.
func (s *Set) decideOwn(id int, resource string) Decision {
	var buf verdict
	return s.lookup(id, resource, &buf).decision()
}

// lookup finds the verdict for action id on resource, or nil when no rule
// can match. Z3 verdicts are assembled in buf.
func (s *Set) lookup(id int, resource string, buf *verdict) *verdict {
	ai := s.actions[id]
	if ai == nil {
		return nil
	}
	i := indexByte(resource, ':')
	svc, rest := resource, ""
	if i >= 0 {
		svc, rest = resource[:i], resource[i+1:]
	}
	if svc != ai.service {
		return nil
	}
	if ai.z3 != nil {
		*buf = ai.z3.lookup(rest)
		return buf
	}
	return ai.lookup(rest)
}

// lookup finds the verdict for "Type[:id]".
func (ai *actionIndex) lookup(rest string) *verdict {
	typ, id := rest, ""
	if j := indexByte(rest, ':'); j >= 0 {
		typ, id = rest[:j], rest[j+1:]
	}
	ti := ai.types[typ]
	if ti == nil {
		return &ai.anyType
	}
	if id == "" || id == "*" {
		return &ti.wild
	}
	if v := ti.exact[id]; v != nil {
		return v
	}
	return &ti.wild
}

// indexByte is strings.IndexByte for the short strings of requests, where a
// plain loop beats the call into the vectorised version.
func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func (v *verdict) decision() Decision {
	switch {
	case v == nil:
		return noRule
	case v.deny != nil:
		return Decision{Effect: Deny, Source: v.deny.src, RuleIndex: v.deny.index}
	case v.allow != nil:
		return Decision{Allowed: true, Effect: Allow, Source: v.allow.src, RuleIndex: v.allow.index}
	case v.cond != nil:
		return Decision{Allowed: true, Effect: Allow, Source: v.cond.src, RuleIndex: v.cond.index, Conditions: v.conds}
	}
	return noRule
}

func sameConditions(a, b []Condition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameCondition(a[i], b[i]) {
			return false
		}
	}
	return true
}

// DeniedIDs lists the ids of typ ("FHIR:Patient") that a rule on that exact
// id denies for action, so a search can leave them out inside its query
// (a Deny on one resource hides it). Sorted.
func (s *Set) DeniedIDs(action, typ string) []string {
	id, ok := actionIDs[action]
	if !ok || s.actions[id] == nil {
		return nil
	}
	ai := s.actions[id]
	svc, rest, _ := strings.Cut(typ, ":")
	if svc != ai.service || ai.z3 != nil {
		return nil
	}
	ti := ai.types[rest]
	if ti == nil {
		return nil
	}
	var out []string
	for rid, v := range ti.exact {
		if v.deny != nil {
			out = append(out, rid)
		}
	}
	slices.Sort(out)
	return out
}
