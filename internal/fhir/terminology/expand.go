package terminology

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// ErrTooLarge is returned (wrapped) when an expansion would hold more than MaxExpansion codes.
var ErrTooLarge = errors.New("terminology: expansion too large")

// MaxExpansion bounds the codes one expansion may hold: a hostile ValueSet (a filter over a
// large code system, value sets including each other) costs at most this much.
const MaxExpansion = 100_000

// maxValueSetDepth bounds value sets including value sets.
const maxValueSetDepth = 8

// Source finds a project's own CodeSystem and ValueSet resources by canonical url (without
// version). Both return an error wrapping ErrNotFound when the project has none; a project
// must never see another's.
type Source interface {
	CodeSystem(ctx context.Context, url string) (*CodeSystem, error)
	ValueSet(ctx context.Context, url string) (*ValueSet, error)
}

// Resolver answers terminology questions for one project: its own resources (src) first, then
// the R4 core. Cheap to build: one per request.
type Resolver struct {
	core *Core
	src  Source // nil: core only
	// exact leaves out the expansions the package ships for value sets over external code
	// systems: they are a snapshot of, say, SNOMED CT in 2019, fine for $expand but not proof
	// that a newer code is outside the value set.
	exact bool
	// memo holds the expansions of value sets this resolver has expanded by url, and steps
	// counts expansions: a value set naming others many times over must not cost their product.
	memo  map[string]*codeSet
	steps int
}

// maxExpandSteps bounds the value sets one resolver expands.
const maxExpandSteps = 1000

// NewResolver returns a Resolver over core and src (nil for core only).
func NewResolver(core *Core, src Source) *Resolver { return &Resolver{core: core, src: src} }

// CodeSystem finds a code system by canonical url: the project's, else core's.
func (r *Resolver) CodeSystem(ctx context.Context, u string) (*CodeSystem, error) {
	u = canonical(u)
	if r.src != nil {
		cs, err := r.src.CodeSystem(ctx, u)
		if err == nil || !errors.Is(err, ErrNotFound) {
			return cs, err
		}
	}
	if cs, ok := r.core.CodeSystem(u); ok {
		return cs, nil
	}
	return nil, fmt.Errorf("%w: no CodeSystem %s", ErrNotFound, u)
}

// ValueSet finds a value set by canonical url: the project's, else core's.
func (r *Resolver) ValueSet(ctx context.Context, u string) (*ValueSet, error) {
	u = canonical(u)
	if r.src != nil {
		vs, err := r.src.ValueSet(ctx, u)
		if err == nil || !errors.Is(err, ErrNotFound) {
			return vs, err
		}
	}
	if vs, ok := r.core.ValueSet(u); ok {
		return vs, nil
	}
	return nil, fmt.Errorf("%w: no ValueSet %s", ErrNotFound, u)
}

type codeKey struct{ system, code string }

// codeSet is an ordered set of codings. Its index is built on first need: a whole code
// system's codes are distinct already, and a 10,000-entry map per request is most of an
// $expand's cost.
type codeSet struct {
	list []Coding
	idx  map[codeKey]struct{} // nil until needed
}

func newCodeSet() *codeSet { return &codeSet{} }

func (s *codeSet) index() {
	if s.idx != nil {
		return
	}
	s.idx = make(map[codeKey]struct{}, len(s.list))
	for _, c := range s.list {
		s.idx[codeKey{c.System, c.Code}] = struct{}{}
	}
}

func (s *codeSet) add(c Coding) error {
	s.index()
	k := codeKey{c.System, c.Code}
	if _, ok := s.idx[k]; ok {
		return nil
	}
	if len(s.list) >= MaxExpansion {
		return fmt.Errorf("%w: more than %d codes", ErrTooLarge, MaxExpansion)
	}
	s.idx[k] = struct{}{}
	s.list = append(s.list, c)
	return nil
}

func (s *codeSet) has(system, code string) bool {
	s.index()
	_, ok := s.idx[codeKey{system, code}]
	return ok
}

// Expand lists the codes of vs in order, without duplicates: its compose (included concepts,
// filters on the is-a hierarchy, whole code systems and other value sets, minus the excluded),
// or the expansion it carries when the compose cannot be expanded here.
func (r *Resolver) Expand(ctx context.Context, vs *ValueSet) ([]Coding, error) {
	s, err := r.expand(ctx, vs, 0)
	if err != nil {
		return nil, err
	}
	return s.list, nil
}

func (r *Resolver) expand(ctx context.Context, vs *ValueSet, depth int) (*codeSet, error) {
	if depth > maxValueSetDepth {
		return nil, fmt.Errorf("%w: value sets include each other more than %d deep", ErrInvalid, maxValueSetDepth)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.steps++; r.steps > maxExpandSteps {
		return nil, fmt.Errorf("%w: expanding it takes more than %d value sets", ErrTooLarge, maxExpandSteps)
	}
	var s *codeSet
	var err error
	if vs.Compose != nil {
		s, err = r.compose(ctx, vs.Compose, depth)
		if err == nil || !errors.Is(err, ErrUndecidable) || vs.Expansion == nil || r.exact {
			return s, err
		}
	} else if vs.Expansion == nil || r.exact {
		return nil, fmt.Errorf("%w: the ValueSet %s has neither a compose nor an expansion", ErrUndecidable, vs.URL)
	}
	s = newCodeSet()
	for _, c := range vs.Expansion {
		if err := s.add(c); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (r *Resolver) compose(ctx context.Context, c *Compose, depth int) (*codeSet, error) {
	if len(c.Include) == 1 && len(c.Exclude) == 0 {
		return r.conceptSet(ctx, c.Include[0], depth) // nothing to merge or remove
	}
	excl := newCodeSet()
	for _, ex := range c.Exclude {
		s, err := r.conceptSet(ctx, ex, depth)
		if err != nil {
			return nil, err
		}
		for _, c := range s.list {
			if err := excl.add(c); err != nil {
				return nil, err
			}
		}
	}
	out := newCodeSet()
	for _, in := range c.Include {
		s, err := r.conceptSet(ctx, in, depth)
		if err != nil {
			return nil, err
		}
		for _, c := range s.list {
			if !excl.has(c.System, c.Code) {
				if err := out.add(c); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

// conceptSet expands one include or exclude: its system part intersected with each value set
// it names.
func (r *Resolver) conceptSet(ctx context.Context, cs ConceptSet, depth int) (*codeSet, error) {
	var result *codeSet
	if cs.System != "" {
		s, err := r.systemPart(ctx, cs)
		if err != nil {
			return nil, err
		}
		result = s
	} else if len(cs.Concepts) > 0 || len(cs.Filters) > 0 {
		return nil, fmt.Errorf("%w: an include lists concepts or filters without a system", ErrInvalid)
	}
	for _, ref := range cs.ValueSet {
		vs, err := r.ValueSet(ctx, ref)
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: %w", ErrUndecidable, err)
		}
		if err != nil {
			return nil, err
		}
		sub, ok := r.memo[vs.URL]
		if !ok {
			if sub, err = r.expand(ctx, vs, depth+1); err != nil {
				return nil, err
			}
			if r.memo == nil {
				r.memo = map[string]*codeSet{}
			}
			r.memo[vs.URL] = sub
		}
		if result == nil {
			result = sub
			continue
		}
		both := newCodeSet()
		for _, c := range result.list {
			if sub.has(c.System, c.Code) {
				_ = both.add(c) // no larger than result
			}
		}
		result = both
	}
	if result == nil {
		return nil, fmt.Errorf("%w: an include names neither a system nor a value set", ErrInvalid)
	}
	return result, nil
}

func (r *Resolver) systemPart(ctx context.Context, in ConceptSet) (*codeSet, error) {
	cs, err := r.CodeSystem(ctx, in.System)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	out := newCodeSet()
	if len(in.Concepts) > 0 && len(in.Filters) == 0 {
		// Listed codes stand without their code system (languages, currencies).
		for _, c := range in.Concepts {
			c.System = in.System
			if cs != nil {
				if k, ok := cs.Lookup(c.Code); ok && c.Display == "" {
					c.Display = k.Display
				}
			}
			if err := out.add(c); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	if cs == nil || !cs.Complete() {
		return nil, fmt.Errorf("%w: the code system %s is not held here with all its codes", ErrUndecidable, in.System)
	}
	var picked []int // nil: all
	for _, f := range in.Filters {
		got, err := applyFilter(cs, f)
		if err != nil {
			return nil, err
		}
		if picked == nil {
			picked = got
			continue
		}
		// Sets, not nested scans: two filters over a large code system would be quadratic.
		keep := make(map[int]bool, len(got))
		for _, i := range got {
			keep[i] = true
		}
		picked = slices.DeleteFunc(picked, func(i int) bool { return !keep[i] })
	}
	if len(in.Concepts) > 0 {
		listed := make(map[string]bool, len(in.Concepts))
		for _, c := range in.Concepts {
			listed[c.Code] = true
		}
		picked = slices.DeleteFunc(picked, func(i int) bool { return !listed[cs.Concepts[i].Code] })
	}
	if picked == nil && len(in.Filters) == 0 {
		all := cs.codings()
		if len(all) > MaxExpansion {
			return nil, fmt.Errorf("%w: more than %d codes", ErrTooLarge, MaxExpansion)
		}
		return &codeSet{list: all}, nil // distinct codes; shared, so clipped: an add copies
	}
	if len(picked) > MaxExpansion {
		return nil, fmt.Errorf("%w: more than %d codes", ErrTooLarge, MaxExpansion)
	}
	all := cs.codings()
	out.list = make([]Coding, len(picked)) // distinct indexes: distinct codes
	for n, i := range picked {
		out.list[n] = all[i]
	}
	return out, nil
}

// applyFilter returns the indexes of the concepts of cs a filter selects, in order. It knows
// the hierarchy (is-a, descendent-of, is-not-a), code lists (in, not-in, =) and regex on the
// code; any other property needs the code system's properties, which Ward does not keep.
func applyFilter(cs *CodeSystem, f Filter) ([]int, error) {
	if f.Property != "concept" && f.Property != "code" {
		return nil, fmt.Errorf("%w: filter on property %q of %s", ErrUndecidable, f.Property, cs.URL)
	}
	sub := func(root string, self bool) map[int]bool {
		set := map[int]bool{}
		i, ok := cs.byCode[root]
		if !ok {
			return set
		}
		if self {
			set[i] = true
		}
		for _, k := range cs.descendants(i, map[int]bool{}, nil) {
			set[k] = true
		}
		return set
	}
	var keep func(i int) bool
	switch f.Op {
	case "is-a":
		s := sub(f.Value, true)
		keep = func(i int) bool { return s[i] }
	case "descendent-of":
		s := sub(f.Value, false)
		keep = func(i int) bool { return s[i] }
	case "is-not-a":
		s := sub(f.Value, true)
		keep = func(i int) bool { return !s[i] }
	case "=", "in", "not-in":
		codes := map[string]bool{}
		for _, c := range strings.Split(f.Value, ",") {
			codes[strings.TrimSpace(c)] = true
		}
		not := f.Op == "not-in"
		keep = func(i int) bool { return codes[cs.Concepts[i].Code] != not }
	case "regex":
		re, err := regexp.Compile(`^(?:` + f.Value + `)$`)
		if err != nil {
			return nil, fmt.Errorf("%w: filter regex %q: %w", ErrInvalid, f.Value, err)
		}
		keep = func(i int) bool { return re.MatchString(cs.Concepts[i].Code) }
	default:
		return nil, fmt.Errorf("%w: filter operator %q", ErrUndecidable, f.Op)
	}
	out := []int{}
	for i := range cs.Concepts {
		if keep(i) {
			out = append(out, i)
		}
	}
	return out, nil
}

// Page applies an $expand text filter (each word must start a word of the display, or the
// code must start with the filter; case-insensitive) and then offset and count. It returns the
// number of codes that match and the page.
func Page(codes []Coding, filter string, offset, count int) (int, []Coding) {
	matched := codes
	if f := strings.ToLower(strings.TrimSpace(filter)); f != "" {
		words := strings.Fields(f)
		matched = nil
		for _, c := range codes {
			if matches(c, f, words) {
				matched = append(matched, c)
			}
		}
	}
	total := len(matched)
	if offset >= total {
		return total, []Coding{}
	}
	end := total
	if count >= 0 && offset+count < end {
		end = offset + count
	}
	return total, matched[offset:end]
}

func matches(c Coding, f string, words []string) bool {
	code, disp := c.lowerCode, c.lowerDisplay
	if code == "" {
		code, disp = strings.ToLower(c.Code), strings.ToLower(c.Display)
	}
	if strings.HasPrefix(code, f) {
		return true
	}
	for _, w := range words {
		if !wordPrefix(disp, w) {
			return false
		}
	}
	return true
}

// wordPrefix reports whether some word of s (split at anything not a letter or digit) starts
// with w.
func wordPrefix(s, w string) bool {
	for i := 0; i <= len(s)-len(w); i++ {
		if (i == 0 || !isWordByte(s[i-1])) && strings.HasPrefix(s[i:], w) {
			return true
		}
	}
	return false
}

func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b >= 0x80
}
