package policy

import (
	"slices"
)

// Source is one policy that applies to a principal: its inline policy or one
// of its roles.
type Source struct {
	Kind string   `json:"kind"` // "inline" | "role"
	ID   string   `json:"id"`
	Name string   `json:"name"`
	Doc  Document `json:"-"`
}

// Set is the compiled, immutable union of a principal's policies. It is safe
// for concurrent use.
//
// The index is built so that Decide does a fixed number of map lookups with
// substrings of the request (no allocation) and reads one precomputed
// verdict: action id -> type -> exact id, where every verdict already merges
// the rules of the wider patterns (id "*", type "*", "*") that also match.
// Z3 is the exception: its glob patterns are scanned per bucket (z3Index).
type Set struct {
	sources []Source
	refs    []ruleRef
	actions []*actionIndex // by action id (see catalog.go); nil = nothing granted or denied
}

// ruleRef names one rule of one source.
type ruleRef struct {
	src   *Source
	index int
	order int // position in the Set: sources in order, then rules
}

// verdict is the precomputed outcome for one cell of the index: the first
// matching Deny, the first unconditional Allow, and the conditional Allows
// (all their conditions, OR-ed).
type verdict struct {
	deny, allow, cond *ruleRef
	conds             []Condition
}

type typeIndex struct {
	wild  verdict             // requests for the type or "*" ids, and ids with no exact rule
	exact map[string]*verdict // ids named by some rule
}

type actionIndex struct {
	service string
	dep     int // action id this action depends on, or -1
	types   map[string]*typeIndex
	anyType verdict // rules on "Service:*" or "*": the answer for types with no rule of their own
	z3      *z3Index
}

// entry is one (rule, resource pattern) pair while the index is built.
type entry struct {
	ref   *ruleRef
	deny  bool
	conds []Condition // non-nil: a conditional Allow
}

type typeBuild struct {
	wild  []entry
	exact map[string][]entry
}

type actionBuild struct {
	types   map[string]*typeBuild
	anyType []entry
	z3      *z3Build
}

// Compile builds the decision index. It never fails: input is expected to be
// validated, and a rule that is not valid is left out, except that the valid
// parts of an invalid Deny are kept (denying too much is the safe mistake).
func Compile(sources ...Source) *Set {
	s := &Set{sources: slices.Clone(sources), actions: make([]*actionIndex, len(allActions))}
	n := 0
	for _, src := range s.sources {
		n += len(src.Doc.Rule)
	}
	s.refs = make([]ruleRef, 0, n)
	builds := make([]*actionBuild, len(allActions))
	for si := range s.sources {
		src := &s.sources[si]
		for ri, r := range src.Doc.Rule {
			c := checkRule(r)
			if len(c.problems) > 0 && r.Effect != Deny {
				continue
			}
			s.refs = append(s.refs, ruleRef{src: src, index: ri, order: len(s.refs)})
			e := entry{ref: &s.refs[len(s.refs)-1], deny: r.Effect == Deny, conds: c.conds}
			for _, a := range c.actions {
				for _, id := range a.expand() {
					for _, p := range c.resources {
						// A Deny is indexed wherever its service matches, even for
						// types its action does not act on: over-denying is safe.
						if matches(allActions[id], p) || e.deny && (p.service == "" || p.service == allActions[id].Service) {
							builds[id] = addEntry(builds[id], id, p, e)
						}
					}
				}
			}
		}
	}
	for id, b := range builds {
		if b != nil {
			s.actions[id] = finish(b, id)
		}
	}
	return s
}

func addEntry(b *actionBuild, id int, p pattern, e entry) *actionBuild {
	if b == nil {
		b = &actionBuild{types: map[string]*typeBuild{}}
	}
	act := allActions[id]
	if act.Service == "Z3" {
		if b.z3 == nil {
			b.z3 = &z3Build{buckets: map[string]*z3BucketBuild{}}
		}
		b.z3.add(p, e)
		return b
	}
	if p.typ == "" {
		b.anyType = append(b.anyType, e)
		return b
	}
	types := []string{p.typ}
	if extra, ok := extraTypes[act.FullName()]; ok {
		types = []string{act.ResourceType, extra} // a grant on either type matches both
	}
	for _, t := range types {
		tb := b.types[t]
		if tb == nil {
			tb = &typeBuild{exact: map[string][]entry{}}
			b.types[t] = tb
		}
		if p.id == "" {
			tb.wild = append(tb.wild, e)
		} else {
			tb.exact[p.id] = append(tb.exact[p.id], e)
		}
	}
	return b
}

func finish(b *actionBuild, id int) *actionIndex {
	act := allActions[id]
	ai := &actionIndex{service: act.Service, dep: -1, types: make(map[string]*typeIndex, len(b.types))}
	if act.DependsOn != "" {
		ai.dep = actionIDs[act.DependsOn]
	}
	ai.anyType = summarize(b.anyType)
	for t, tb := range b.types {
		ti := &typeIndex{wild: summarize(tb.wild, b.anyType), exact: make(map[string]*verdict, len(tb.exact))}
		for exactID, es := range tb.exact {
			v := summarize(es, tb.wild, b.anyType)
			ti.exact[exactID] = &v
		}
		ai.types[t] = ti
	}
	if b.z3 != nil {
		ai.z3 = b.z3.finish()
	}
	return ai
}

// summarize merges the entries that match one cell into its verdict.
func summarize(groups ...[]entry) verdict {
	var all []entry
	for _, g := range groups {
		all = append(all, g...)
	}
	slices.SortStableFunc(all, func(a, b entry) int { return a.ref.order - b.ref.order })
	var v verdict
	for _, e := range all {
		switch {
		case e.deny:
			if v.deny == nil {
				v.deny = e.ref
			}
		case e.conds == nil:
			if v.allow == nil {
				v.allow = e.ref
			}
		default:
			if v.cond == nil {
				v.cond = e.ref
			}
			for _, c := range e.conds {
				if !slices.ContainsFunc(v.conds, func(d Condition) bool { return sameCondition(c, d) }) {
					v.conds = append(v.conds, c)
				}
			}
		}
	}
	return v
}

func sameCondition(a, b Condition) bool {
	return a.Query == b.Query && string(a.Object) == string(b.Object)
}

// Sources returns the Set's sources in order; Decision.Source points into it.
func (s *Set) Sources() []Source { return s.sources }
