package terminology

import (
	"context"
	"errors"
	"fmt"
)

// LookupResult is what $lookup says of a code.
type LookupResult struct {
	Name, Version, Display string
	Parents, Children      []string
}

// Lookup finds code in the code system system. Errors wrap ErrNotFound when either is unknown.
func (r *Resolver) Lookup(ctx context.Context, system, code string) (*LookupResult, error) {
	cs, err := r.CodeSystem(ctx, system)
	if err != nil {
		return nil, err
	}
	k, ok := cs.Lookup(code)
	if !ok {
		return nil, fmt.Errorf("%w: %s has no code %q", ErrNotFound, cs.URL, code)
	}
	out := &LookupResult{Name: cs.Name, Version: cs.Version, Display: k.Display}
	if out.Name == "" {
		out.Name = cs.URL
	}
	for _, p := range k.Parents {
		out.Parents = append(out.Parents, cs.Concepts[p].Code)
	}
	for _, c := range k.Children {
		out.Children = append(out.Children, cs.Concepts[c].Code)
	}
	return out, nil
}

// Validation is the answer of $validate-code.
type Validation struct {
	Result  bool
	Message string
	Display string // the code's display, when known
}

// ValidateCode says whether system|code is in vs (system may be empty: any system of vs), and
// whether display, when given, is the code's. Errors wrap ErrUndecidable when vs cannot be
// expanded here.
func (r *Resolver) ValidateCode(ctx context.Context, vs *ValueSet, system, code, display string) (Validation, error) {
	s, err := r.expand(ctx, vs, 0)
	if err != nil {
		return Validation{}, err
	}
	for _, c := range s.list {
		if c.Code != code || (system != "" && c.System != system) {
			continue
		}
		v := Validation{Result: true, Display: c.Display}
		if display != "" && c.Display != "" && display != c.Display {
			v.Result = false
			v.Message = fmt.Sprintf("the display of %s|%s is %q, not %q", c.System, code, c.Display, display)
		}
		return v, nil
	}
	what := code
	if system != "" {
		what = system + "|" + code
	}
	return Validation{Message: fmt.Sprintf("%s is not in the value set %s", what, vs.URL)}, nil
}

// ValidateCodeInSystem says whether code is a code of the code system system.
func (r *Resolver) ValidateCodeInSystem(ctx context.Context, system, code, display string) (Validation, error) {
	cs, err := r.CodeSystem(ctx, system)
	if err != nil {
		return Validation{}, err
	}
	k, ok := cs.Lookup(code)
	if !ok {
		if !cs.Complete() {
			return Validation{}, fmt.Errorf("%w: %s is not held here with all its codes", ErrUndecidable, cs.URL)
		}
		return Validation{Message: fmt.Sprintf("%q is not a code of %s", code, cs.URL)}, nil
	}
	v := Validation{Result: true, Display: k.Display}
	if display != "" && k.Display != "" && display != k.Display {
		v.Result = false
		v.Message = fmt.Sprintf("the display of %s|%s is %q, not %q", cs.URL, code, k.Display, display)
	}
	return v, nil
}

// Subsumes relates codeA to codeB in system's is-a hierarchy: "equivalent", "subsumes" (A is
// above B), "subsumed-by" or "not-subsumed". An unknown code wraps ErrNotFound.
func (r *Resolver) Subsumes(ctx context.Context, system, codeA, codeB string) (string, error) {
	cs, err := r.CodeSystem(ctx, system)
	if err != nil {
		return "", err
	}
	a, okA := cs.byCode[codeA]
	b, okB := cs.byCode[codeB]
	switch {
	case !okA:
		return "", fmt.Errorf("%w: %s has no code %q", ErrNotFound, cs.URL, codeA)
	case !okB:
		return "", fmt.Errorf("%w: %s has no code %q", ErrNotFound, cs.URL, codeB)
	case a == b:
		return "equivalent", nil
	case cs.ancestor(a, b):
		return "subsumes", nil
	case cs.ancestor(b, a):
		return "subsumed-by", nil
	}
	return "not-subsumed", nil
}

// memberSet is a core value set's expansion, for binding checks.
type memberSet struct {
	set *codeSet
	err error // ErrUndecidable when it cannot be expanded here
}

// members expands a core value set once and keeps the result.
func (c *Core) members(u string) *memberSet {
	if m, ok := c.memo.Load(u); ok {
		return m.(*memberSet)
	}
	m := &memberSet{}
	if vs, ok := c.ValueSet(u); !ok {
		m.err = fmt.Errorf("%w: no ValueSet %s", ErrUndecidable, u)
	} else {
		m.set, m.err = (&Resolver{core: c, exact: true}).expand(context.Background(), vs, 0)
		if m.err != nil && !errors.Is(m.err, ErrUndecidable) {
			m.err = fmt.Errorf("%w: %w", ErrUndecidable, m.err)
		}
	}
	got, _ := c.memo.LoadOrStore(u, m)
	return got.(*memberSet)
}
