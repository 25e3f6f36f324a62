package policy

import (
	"fmt"
	"strings"
)

// Explanation is Decide's answer with its reasons, for people: the admin
// "why was this denied" view and 403 bodies (never other tenants' data: it
// only names the caller's own policies).
type Explanation struct {
	Allowed      bool        `json:"allowed"`
	DecidingRule *RuleRef    `json:"decidingRule,omitempty"`
	Conditions   []Condition `json:"conditions,omitempty"`
	Warnings     []string    `json:"warnings,omitempty"`
}

// RuleRef names a rule of a source and carries it.
type RuleRef struct {
	Source *Source `json:"source"`
	Index  int     `json:"index"`
	Rule   Rule    `json:"rule"`
}

// Explain decides like Decide and says why. It allocates; it is not for the
// hot path.
func (s *Set) Explain(action, resource string) Explanation {
	d := s.Decide(action, resource)
	e := Explanation{Allowed: d.Allowed, Conditions: d.Conditions}
	if d.Source != nil {
		e.DecidingRule = &RuleRef{Source: d.Source, Index: d.RuleIndex, Rule: d.Source.Doc.Rule[d.RuleIndex]}
	}
	warn := func(format string, args ...any) { e.Warnings = append(e.Warnings, fmt.Sprintf(format, args...)) }
	id, ok := actionIDs[action]
	if !ok {
		warn("unknown action %q: no policy can grant it", action)
		return e
	}
	act := allActions[id]
	if canon := act.FullName(); canon != action {
		warn("%q is an alias of %q", action, canon)
	}
	// A name beyond Oystehr's published table is valid, but say where it is
	// documented, so that a reader can check it against Oystehr.
	if origin := act.Origin(); origin != "" {
		warn("IAM action %s is not in Oystehr's published action table (seed 002); it comes from %s", act.FullName(), origin)
	}
	if svc, _, _ := strings.Cut(resource, ":"); svc != act.Service {
		warn("%s acts on %s resources, not %q", act.FullName(), act.Service, resource)
		return e
	}
	notes := len(e.Warnings) // warnings so far say nothing about why a request is denied
	if act.DependsOn != "" {
		own := s.decideOwn(id, resource)
		if own.Allowed && !d.Allowed && d.Effect == "" {
			warn("%s is granted by %s rule %d but has no effect without %s on %q",
				act.FullName(), describe(own.Source), own.RuleIndex, act.DependsOn, resource)
		}
	}
	switch {
	case d.Effect == Deny:
		warn("denied explicitly by %s rule %d", describe(d.Source), d.RuleIndex)
	case !d.Allowed && len(e.Warnings) == notes:
		warn("no Allow rule grants %s on %q", act.FullName(), resource)
	case d.Conditions != nil:
		warn("allowed only for resources matching one of the conditions")
	}
	if d.DependencyConditions != nil {
		warn("the resource must also match one of the %s conditions: %s", act.DependsOn, joinConditions(d.DependencyConditions))
	}
	return e
}

// describe names a source for messages: "role Nurse (id r1)", "inline policy".
func describe(src *Source) string {
	switch {
	case src == nil:
		return "no source"
	case src.Kind == "inline":
		return "the inline policy"
	case src.Name != "":
		return fmt.Sprintf("%s %q", src.Kind, src.Name)
	}
	return fmt.Sprintf("%s %s", src.Kind, src.ID)
}

func joinConditions(cs []Condition) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, " | ")
}
