package fhir

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/fhir/terminology"
)

// Token :in and :not-in name a ValueSet by its canonical url
// (code:in=http://example.org/fhir/ValueSet/vitals). A url no ValueSet of
// the project has is looked up among the R4 core value sets (package
// terminology, which expands their hierarchy filters too). Otherwise it
// expands the project's own ValueSet resources,
// found by url as the caller (FHIR:Search on ValueSet), from their
// expansion.contains or, without one, their compose: included concepts,
// whole code systems and other ValueSets, minus the excluded ones. A
// compose with filters (is-a, regex...) needs a terminology server and is a
// 400, as is token :above/:below (code system hierarchies).

// maxExpansion bounds the codes one :in or :not-in may stand for.
const maxExpansion = 5000

// nothing is a token value no resource holds: an empty expansion.
var nothing = search.Cond{System: "\x00", Code: "\x00", HasSystem: true}

// expandValueSets returns q with each token :in / :not-in clause (at any
// depth: chains and _has too) replaced by the codes its ValueSets hold, as
// a plain or :not token clause; q itself is left as it was (its Encode
// makes the self link).
func (s *Service) expandValueSets(ctx context.Context, p auth.Principal, q *search.Query) (*search.Query, error) {
	var rewrite func(c *search.Clause) (*search.Clause, error)
	rewrite = func(c *search.Clause) (*search.Clause, error) {
		if c == nil {
			return nil, nil
		}
		out := *c
		var err error
		if out.Chain, err = rewrite(c.Chain); err != nil {
			return nil, err
		}
		if c.Reverse != nil {
			r := *c.Reverse
			if r.Clause, err = rewrite(c.Reverse.Clause); err != nil {
				return nil, err
			}
			out.Reverse = &r
		}
		if c.Param == nil || c.Param.Type != "token" || (c.Modifier != "in" && c.Modifier != "not-in") {
			return &out, nil
		}
		out.Values = nil
		for _, v := range c.Values {
			codes, err := s.expand(ctx, p, v.Text, 0)
			if errors.Is(err, fault.ErrInvalid) {
				return nil, fault.Invalid("%s:%s=%s: %v", c.Param.Name, c.Modifier, v.Text, err)
			}
			if err != nil {
				return nil, err // a 403 on ValueSet stays one
			}
			out.Values = append(out.Values, codes...)
		}
		if len(out.Values) == 0 {
			out.Values = []search.Cond{nothing}
		}
		out.Modifier = map[string]string{"in": "", "not-in": "not"}[c.Modifier]
		return &out, nil
	}
	if !usesValueSets(q.Clauses) && !usesValueSets(q.FilterClauses()) {
		return q, nil
	}
	cq := *q
	cq.Clauses = make([]*search.Clause, len(q.Clauses))
	for i, c := range q.Clauses {
		nc, err := rewrite(c)
		if err != nil {
			return nil, err
		}
		cq.Clauses[i] = nc
	}
	var tree func(n *search.FilterNode) (*search.FilterNode, error)
	tree = func(n *search.FilterNode) (*search.FilterNode, error) {
		out := *n
		out.Kids = make([]*search.FilterNode, len(n.Kids))
		for i, k := range n.Kids {
			var err error
			if out.Kids[i], err = tree(k); err != nil {
				return nil, err
			}
		}
		if n.Clause != nil {
			var err error
			if out.Clause, err = rewrite(n.Clause); err != nil {
				return nil, err
			}
		}
		return &out, nil
	}
	cq.Filters = make([]search.Filter, len(q.Filters))
	for i, f := range q.Filters {
		root, err := tree(f.Root)
		if err != nil {
			return nil, err
		}
		cq.Filters[i] = search.Filter{Text: f.Text, Root: root}
	}
	return &cq, nil
}

// usesValueSets reports whether a clause, at any depth, is token :in or
// :not-in.
func usesValueSets(cs []*search.Clause) bool {
	for _, c := range cs {
		for c != nil {
			if c.Param != nil && c.Param.Type == "token" && (c.Modifier == "in" || c.Modifier == "not-in") {
				return true
			}
			if c.Reverse != nil {
				c = c.Reverse.Clause
				continue
			}
			c = c.Chain
		}
	}
	return false
}

// valueSet is what an expansion reads of a ValueSet.
type valueSet struct {
	Expansion *struct {
		Contains []vsContains `json:"contains"`
	} `json:"expansion"`
	Compose *struct {
		Include []vsInclude `json:"include"`
		Exclude []vsInclude `json:"exclude"`
	} `json:"compose"`
}

type vsContains struct {
	System   string       `json:"system"`
	Code     string       `json:"code"`
	Contains []vsContains `json:"contains"`
}

type vsInclude struct {
	System  string `json:"system"`
	Concept []struct {
		Code string `json:"code"`
	} `json:"concept"`
	Filter   []json.RawMessage `json:"filter"`
	ValueSet []string          `json:"valueSet"`
}

// expand lists the codes of the ValueSet with canonical url canon
// ("url" or "url|version"), as token conditions; a whole code system is
// a condition on the system alone.
func (s *Service) expand(ctx context.Context, p auth.Principal, canon string, depth int) ([]search.Cond, error) {
	if depth > 4 {
		return nil, fault.Invalid("ValueSets include each other too deeply")
	}
	u, version, _ := strings.Cut(canon, "|")
	vals := url.Values{"url": {u}}
	if version != "" {
		vals.Set("version", version)
	}
	vq, err := search.ParseQuery("ValueSet", vals, false)
	if err != nil {
		return nil, fault.Invalid("%q is not a ValueSet url", canon)
	}
	vq.Count = 2
	page, err := s.search(ctx, p, vq, false)
	if err != nil {
		return nil, err
	}
	switch len(page.Matches) {
	case 0:
		return coreValueSet(u, canon)
	case 1:
	default:
		return nil, fault.Invalid("more than one ValueSet has url %s: name its version (url|version)", canon)
	}
	var vs valueSet
	if err := json.Unmarshal(page.Matches[0].Content, &vs); err != nil {
		return nil, err
	}
	type key struct{ system, code string }
	var out []search.Cond
	seen := map[key]bool{}
	add := func(system, code string) error {
		k := key{system, code}
		if seen[k] {
			return nil
		}
		if len(out) >= maxExpansion {
			return fault.Invalid("the ValueSet %s holds more than %d codes", canon, maxExpansion)
		}
		seen[k] = true
		out = append(out, search.Cond{System: system, Code: code, HasSystem: system != "", Text: code})
		return nil
	}
	if vs.Expansion != nil && len(vs.Expansion.Contains) > 0 {
		var walk func([]vsContains) error
		walk = func(cs []vsContains) error {
			for _, c := range cs {
				if c.Code != "" {
					if err := add(c.System, c.Code); err != nil {
						return err
					}
				}
				if err := walk(c.Contains); err != nil {
					return err
				}
			}
			return nil
		}
		return out, walk(vs.Expansion.Contains)
	}
	if vs.Compose == nil {
		return nil, fault.Invalid("the ValueSet %s has neither an expansion nor a compose", canon)
	}
	excluded := map[key]bool{}
	for _, ex := range vs.Compose.Exclude {
		if len(ex.Filter) > 0 || len(ex.ValueSet) > 0 || len(ex.Concept) == 0 {
			return nil, fault.Invalid("the ValueSet %s excludes by filter, value set or whole system, which needs a terminology server", canon)
		}
		for _, c := range ex.Concept {
			excluded[key{ex.System, c.Code}] = true
		}
	}
	for _, in := range vs.Compose.Include {
		if len(in.Filter) > 0 {
			return nil, fault.Invalid("the ValueSet %s includes by filter, which needs a terminology server", canon)
		}
		for _, ref := range in.ValueSet {
			if in.System != "" || len(in.Concept) > 0 {
				return nil, fault.Invalid("the ValueSet %s intersects a value set with a system, which is not supported", canon)
			}
			codes, err := s.expand(ctx, p, ref, depth+1)
			if err != nil {
				return nil, err
			}
			for _, c := range codes {
				if !excluded[key{c.System, c.Code}] {
					if err := add(c.System, c.Code); err != nil {
						return nil, err
					}
				}
			}
		}
		switch {
		case len(in.Concept) > 0:
			for _, c := range in.Concept {
				if !excluded[key{in.System, c.Code}] {
					if err := add(in.System, c.Code); err != nil {
						return nil, err
					}
				}
			}
		case in.System != "":
			if len(excluded) > 0 {
				return nil, fault.Invalid("the ValueSet %s includes a whole code system minus some codes, which needs a terminology server", canon)
			}
			// The whole code system: any code of it.
			if !seen[key{in.System, ""}] {
				seen[key{in.System, ""}] = true
				out = append(out, search.Cond{System: in.System, HasSystem: true})
			}
		}
	}
	return out, nil
}

// coreValueSet expands an R4 core value set for :in and :not-in.
func coreValueSet(u, canon string) ([]search.Cond, error) {
	core := terminology.R4()
	vs, ok := core.ValueSet(u)
	if !ok {
		return nil, fault.Invalid("no ValueSet with url %s is stored in this project or is part of R4", canon)
	}
	codes, err := terminology.NewResolver(core, nil).Expand(context.Background(), vs)
	if err != nil {
		return nil, fault.Invalid("the R4 ValueSet %s cannot be expanded here: %s", canon, termMessage(err))
	}
	if len(codes) > maxExpansion {
		return nil, fault.Invalid("the ValueSet %s holds more than %d codes", canon, maxExpansion)
	}
	// Each code also without a system (|code): an element of type code
	// (Observation.status) is indexed without one, its system implied.
	out := make([]search.Cond, 0, 2*len(codes))
	for _, c := range codes {
		out = append(out, search.Cond{System: c.System, Code: c.Code, HasSystem: c.System != "", Text: c.Code},
			search.Cond{Code: c.Code, HasSystem: true, Text: c.Code})
	}
	return out, nil
}
