package search

import (
	"errors"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// Query is a parsed search: clauses to AND together, plus the result
// parameters.
type Query struct {
	ResourceType string
	Clauses      []*Clause // ANDed; sorted by their canonical key

	Count      int // _count; -1 when absent
	Offset     int // _offset; 0 when absent
	Sort       []SortKey
	Total      string // _total: "", none, estimate or accurate
	Summary    string // _summary: "", true, text, data, count or false
	Elements   []string
	Include    []Include
	RevInclude []Include
	// Filters are the _filter values, ANDed with the clauses.
	Filters []Filter

	// Ignored lists the unknown parameters that lenient parsing skipped, as
	// written; Encode leaves them out, as the self link must (R4 http.html).
	Ignored []string
}

// Clause is one search parameter occurrence: its values are ORed.
type Clause struct {
	Param *Param
	// Modifier is the modifier without its colon ("exact", "missing",
	// "identifier"...), empty for none and for a resource type modifier.
	Modifier string
	// TargetType is the resource type of a reference modifier
	// (subject:Patient) or of a chain, given or inferred.
	TargetType string
	// Chain, when set, is the condition on the referenced resource of type
	// TargetType (subject:Patient.name=x); this clause then has no Values.
	Chain *Clause
	// Reverse, when set, is a _has condition; this clause has no Param.
	Reverse *Reverse
	Values  []Cond
}

// Reverse is _has:Type:ref:param=value: some Type resource whose reference
// parameter Ref points at the candidate matches Clause.
type Reverse struct {
	Type   string
	Ref    *Param
	Clause *Clause
}

// Cond is one value of a clause. Which fields are set depends on the
// parameter type and modifier; Text holds the value as written (unescaped,
// without prefix; for a quantity, its number) except for composites, whose
// parts are in Components, and :of-type, where it is the identifier value.
type Cond struct {
	Prefix Prefix // number, date, quantity; Eq when none was given
	Text   string
	String string // string params and token :text: NormalizeString(Text)

	// token (and reference :identifier, quantity units): HasSystem is true
	// when a "|" was given, so "|code" (no system) differs from "code" (any
	// system). token :of-type puts the type coding in System|Code and the
	// identifier value in Text.
	System, Code string
	HasSystem    bool

	Low, High int64   // date: DateRange(Text)
	Number    float64 // number, quantity: the value of Text

	RefType, RefID, RefURL string // reference: Type/id, id, or absolute URL

	Missing bool // :missing=true

	Components []Cond // composite, in component order

	Box *Box // Location near: the area to search

	// Op, for a string condition, is "eq" (the whole value), "ew" (ends
	// with) or "co" (contains: _text); "" is the search's default, starts
	// with.
	Op string
}

// SortKey is one _sort entry.
type SortKey struct {
	Param string
	Desc  bool
}

// Include is one _include or _revinclude value.
type Include struct {
	Type    string // source resource type, or "*"
	Param   string // reference parameter of Type, or "*"
	Target  string // optional target type
	Iterate bool   // :iterate (or the R3 spelling :recurse)
}

// Limits on one query. Each parameter and each value becomes a condition
// in one SQL statement: SQLite refuses an expression deeper than 1,000
// and PostgreSQL's planner takes minutes over a few hundred ANDed
// subqueries, so a larger query is refused with the limit named instead.
const (
	MaxParams = 100 // parameters (repeats and _filter included)
	MaxValues = 500 // values in the whole query (ORed or ANDed)
)

// Parameters that belong to the HTTP layer, not to the search.
var transportParams = map[string]bool{"_format": true, "_pretty": true}

// ParseQuery parses the query of a search on resourceType. Values are
// trimmed, repeated parameters are ANDed and comma-separated values ORed
// (a "\," is a literal comma). Unknown parameters are an error unless
// lenient, when they are listed in Query.Ignored. Every error is an *Error
// wrapping ErrInvalidQuery.
func ParseQuery(resourceType string, q url.Values, lenient bool) (*Query, error) {
	if !IsResourceType(resourceType) {
		return nil, queryErr("", "unknown resource type %q", resourceType)
	}
	query := &Query{ResourceType: resourceType, Count: -1}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	seen := map[string]bool{}
	params, values := 0, 0
	for _, rawKey := range keys {
		key := strings.TrimSpace(rawKey)
		if transportParams[key] {
			continue
		}
		for _, raw := range q[rawKey] {
			value := strings.TrimSpace(raw)
			if value == "" {
				continue // a blank form field selects nothing
			}
			handled, err := query.parseResultParam(key, value, seen)
			if !handled && err == nil {
				if params++; params > MaxParams {
					return nil, queryErr(key, "a search may have at most %d parameters", MaxParams)
				}
				if values += 1 + strings.Count(value, ","); values > MaxValues {
					return nil, queryErr(key, "a search may have at most %d values (comma-separated or repeated)", MaxValues)
				}
				err = query.parseClause(key, value)
			}
			var qe *Error
			if errors.As(err, &qe) && qe.unknown && lenient {
				if !slices.Contains(query.Ignored, rawKey) {
					query.Ignored = append(query.Ignored, rawKey)
				}
				continue
			}
			if err != nil {
				return nil, err
			}
		}
	}
	sort.SliceStable(query.Clauses, func(i, j int) bool {
		return query.Clauses[i].key() < query.Clauses[j].key()
	})
	return query, nil
}

func (q *Query) parseClause(key, value string) error {
	if key == "_filter" {
		root, err := ParseFilter(q.ResourceType, value)
		if err != nil {
			return queryErr(key, "%v", err)
		}
		q.Filters = append(q.Filters, Filter{Text: value, Root: root})
		return nil
	}
	if key == "_text" {
		// A phrase in the narrative (narrative.go); commas separate
		// alternatives.
		c := &Clause{Param: TextParam}
		for _, part := range splitEscaped(value, ',') {
			t := unescape(part)
			if n := NormalizeString(t); n != "" {
				if len(n) > narrativeOverlap {
					return queryErr(key, "a _text phrase may be at most %d bytes", narrativeOverlap)
				}
				c.Values = append(c.Values, Cond{Text: t, String: n, Op: "co"})
			}
		}
		if len(c.Values) > 0 {
			q.Clauses = append(q.Clauses, c)
		}
		return nil
	}
	if key == "_list" {
		// _list=42: the resources List/42 holds (R4 search.html) is
		// _has:List:item:_id=42, so it is indexed, and access-checked on
		// List, as that is.
		if strings.HasPrefix(value, "$") {
			return queryErr(key, "functional lists such as %s are not supported; name a List by id", value)
		}
		err := q.parseClause("_has:List:item:_id", value)
		var e *Error
		if errors.As(err, &e) {
			e.Param = key
		}
		return err
	}
	c, err := parseKey(q.ResourceType, key)
	if err != nil {
		return err
	}
	target := c
	for target.Chain != nil {
		target = target.Chain
	}
	if c.Reverse != nil {
		target = c.Reverse.Clause
	}
	for _, part := range splitEscaped(value, ',') {
		cond, err := parseCond(target, part)
		if err != nil {
			if e, ok := err.(*Error); ok {
				e.Param = key
				return e
			}
			return &Error{Param: key, Message: err.Error(), Err: err}
		}
		if cond != nil {
			target.Values = append(target.Values, *cond)
		}
	}
	if len(target.Values) > 0 {
		q.Clauses = append(q.Clauses, c)
	}
	return nil
}

// parseKey reads "name[:modifier][.chained[:modifier]]..." or
// "_has:Type:ref:name[:modifier]".
func parseKey(resourceType, key string) (*Clause, error) {
	if rest, ok := strings.CutPrefix(key, "_has:"); ok {
		return parseHas(resourceType, key, rest)
	}
	return parseChain(resourceType, key, key, 1)
}

// maxChain bounds the references one chain follows
// (subject:Patient.organization.partof.name is three).
const maxChain = 3

// parseChain reads s, the part of key about resourceType, whose chain has
// followed depth-1 references so far.
func parseChain(resourceType, key, s string, depth int) (*Clause, error) {
	head, chained, isChain := strings.Cut(s, ".")
	c, err := parseSimpleKey(resourceType, key, head)
	if err != nil || !isChain {
		return c, err
	}
	if c.Param.Type != "reference" {
		return nil, queryErr(key, "%s is a %s parameter and cannot be chained", c.Param.Name, c.Param.Type)
	}
	if c.Modifier != "" {
		return nil, queryErr(key, "modifier :%s cannot be chained", c.Modifier)
	}
	if strings.HasPrefix(chained, "_has") {
		return nil, queryErr(key, "a chain cannot end in _has")
	}
	if depth >= maxChain && strings.Contains(chained, ".") {
		return nil, queryErr(key, "chains of more than %d references are not supported", maxChain)
	}
	next, _, _ := strings.Cut(chained, ".")
	chainName, _, _ := strings.Cut(next, ":")
	if c.TargetType == "" {
		var candidates []string
		for _, t := range c.Param.Targets {
			if _, ok := Lookup(t, chainName); ok {
				candidates = append(candidates, t)
			}
		}
		switch len(candidates) {
		case 0:
			return nil, unknownParam(key, "unknown search parameter %q for any target of %s", chainName, c.Param.Name)
		case 1:
			c.TargetType = candidates[0]
		default:
			return nil, queryErr(key, "chain %s.%s is ambiguous: name the type, e.g. %s:%s.%s",
				c.Param.Name, chainName, c.Param.Name, candidates[0], chainName)
		}
	}
	inner, err := parseChain(c.TargetType, key, chained, depth+1)
	if err != nil {
		return nil, err
	}
	c.Chain = inner
	return c, nil
}

func parseHas(resourceType, key, rest string) (*Clause, error) {
	parts := strings.SplitN(rest, ":", 3)
	if len(parts) != 3 || parts[2] == "" {
		return nil, queryErr(key, "_has needs the form _has:Type:reference:parameter")
	}
	typ, refName, inner := parts[0], parts[1], parts[2]
	if !IsResourceType(typ) {
		return nil, queryErr(key, "unknown resource type %q", typ)
	}
	ref, ok := Lookup(typ, refName)
	if !ok {
		return nil, unknownParam(key, "unknown search parameter %q for %s", refName, typ)
	}
	if ref.Type != "reference" || !slices.Contains(ref.Targets, resourceType) {
		return nil, queryErr(key, "%s.%s does not reference %s", typ, refName, resourceType)
	}
	if strings.HasPrefix(inner, "_has") || strings.Contains(inner, ".") {
		return nil, queryErr(key, "_has with chains or nested _has is not supported")
	}
	c, err := parseSimpleKey(typ, key, inner)
	if err != nil {
		return nil, err
	}
	return &Clause{Reverse: &Reverse{Type: typ, Ref: ref, Clause: c}}, nil
}

// parseSimpleKey reads "name[:modifier]" on resourceType.
func parseSimpleKey(resourceType, key, s string) (*Clause, error) {
	name, mod, hasMod := strings.Cut(s, ":")
	p, ok := Lookup(resourceType, name)
	if !ok {
		return nil, unknownParam(key, "unknown search parameter %q for %s", name, resourceType)
	}
	c := &Clause{Param: p}
	if !hasMod {
		return c, nil
	}
	switch {
	case p.Type == "reference" && IsResourceType(mod):
		if !slices.Contains(p.Targets, mod) {
			return nil, queryErr(key, "%s cannot reference %s", p.Name, mod)
		}
		c.TargetType = mod
	case p.Name == "_id" && mod != "not" && mod != "missing":
		// An id has no display, value set or type: other token modifiers
		// would be ignored, answering a different question.
		return nil, queryErr(key, "modifier :%s is not supported on _id (only :not and :missing)", mod)
	case mod != "[type]" && p.AllowsModifier(mod):
		c.Modifier = mod
	default:
		return nil, queryErr(key, "modifier :%s is not valid on %s parameter %s", mod, p.Type, p.Name)
	}
	return c, nil
}
