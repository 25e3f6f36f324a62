package terminology

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// ErrNotFound is returned (wrapped) when a code system, value set or code is not known.
var ErrNotFound = errors.New("terminology: not found")

// ErrUndecidable is returned (wrapped) when an answer needs content Ward does not hold: a code
// system that is neither in R4 core nor in the project, or a filter it does not implement.
var ErrUndecidable = errors.New("terminology: cannot be decided locally")

// ErrInvalid is returned (wrapped) for a CodeSystem or ValueSet that is not well formed.
var ErrInvalid = errors.New("terminology: invalid resource")

// CodeSystem is the part of a FHIR CodeSystem that terminology reads. Built by
// ParseCodeSystem; read-only afterwards.
type CodeSystem struct {
	URL, Version, Name, Title string
	Content                   string // complete, fragment, example, not-present
	Concepts                  []Concept
	byCode                    map[string]int
	all                       func() []Coding // every concept as a Coding, built once
}

// codings lists every concept as a Coding, in order; the slice is shared and clipped, so an
// append by a caller copies it.
func (cs *CodeSystem) codings() []Coding { return cs.all() }

// Concept is one code of a CodeSystem, with its place in the is-a hierarchy (nested concepts).
type Concept struct {
	Code, Display string
	Parents       []int // indexes in CodeSystem.Concepts
	Children      []int
}

// ValueSet is the part of a FHIR ValueSet that terminology reads.
type ValueSet struct {
	URL, Version, Name, Title string
	Status                    string
	Compose                   *Compose
	Expansion                 []Coding // a shipped expansion (flattened), or nil
}

// Compose is ValueSet.compose.
type Compose struct {
	Include, Exclude []ConceptSet
}

// ConceptSet is one include or exclude.
type ConceptSet struct {
	System   string
	Concepts []Coding // System left empty: it is the set's
	Filters  []Filter
	ValueSet []string
}

// Filter is ConceptSet.filter.
type Filter struct{ Property, Op, Value string }

// Coding is a code of a system, as expansions list it.
type Coding struct {
	System  string `json:"system,omitempty"`
	Version string `json:"version,omitempty"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
	// lowered code and display, for text filters; set on a code system's own list
	lowerCode, lowerDisplay string
}

// Lookup returns the concept with code, or false.
func (cs *CodeSystem) Lookup(code string) (*Concept, bool) {
	i, ok := cs.byCode[code]
	if !ok {
		return nil, false
	}
	return &cs.Concepts[i], true
}

// Complete reports whether the CodeSystem lists all its codes (content complete), so that a
// code it lacks is not one of its codes.
func (cs *CodeSystem) Complete() bool { return cs.Content == "" || cs.Content == "complete" }

// descendants appends to out the indexes of every concept below i (not i itself, unless the
// hierarchy loops back to it). Iterative, and each concept once: a hostile code system's
// repeated codes can make the hierarchy a deep graph with cycles.
func (cs *CodeSystem) descendants(i int, seen map[int]bool, out []int) []int {
	stack := []int{i}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, k := range cs.Concepts[n].Children {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
				stack = append(stack, k)
			}
		}
	}
	return out
}

// ancestor reports whether a is b or above it in the hierarchy.
func (cs *CodeSystem) ancestor(a, b int) bool {
	seen := map[int]bool{}
	stack := []int{b}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i == a {
			return true
		}
		if seen[i] {
			continue
		}
		seen[i] = true
		stack = append(stack, cs.Concepts[i].Parents...)
	}
	return false
}

// The FHIR JSON shapes read by the parsers (core.json.gz has the same ones).
type jsonCodeSystem struct {
	ResourceType string         `json:"resourceType"`
	URL          string         `json:"url"`
	Version      string         `json:"version"`
	Name         string         `json:"name"`
	Title        string         `json:"title"`
	Content      string         `json:"content"`
	Concept      []*jsonConcept `json:"concept"`
}

type jsonConcept struct {
	Code    string         `json:"code"`
	Display string         `json:"display"`
	Concept []*jsonConcept `json:"concept"`
}

type jsonValueSet struct {
	ResourceType string `json:"resourceType"`
	URL          string `json:"url"`
	Version      string `json:"version"`
	Name         string `json:"name"`
	Title        string `json:"title"`
	Status       string `json:"status"`
	Compose      *struct {
		Include []jsonConceptSet `json:"include"`
		Exclude []jsonConceptSet `json:"exclude"`
	} `json:"compose"`
	Expansion *struct {
		Contains []jsonContains `json:"contains"`
	} `json:"expansion"`
}

type jsonConceptSet struct {
	System  string `json:"system"`
	Concept []struct {
		Code    string `json:"code"`
		Display string `json:"display"`
	} `json:"concept"`
	Filter []struct {
		Property string `json:"property"`
		Op       string `json:"op"`
		Value    string `json:"value"`
	} `json:"filter"`
	ValueSet []string `json:"valueSet"`
}

type jsonContains struct {
	System   string         `json:"system"`
	Version  string         `json:"version"`
	Code     string         `json:"code"`
	Display  string         `json:"display"`
	Contains []jsonContains `json:"contains"`
}

// maxConceptDepth bounds the nesting of concepts a parser follows.
const maxConceptDepth = 64

// ParseCodeSystem reads a CodeSystem resource in FHIR JSON. A concept without a code, nesting
// deeper than 64 levels or resourceType other than CodeSystem is ErrInvalid. A code that
// appears under several parents is one concept with several parents.
func ParseCodeSystem(data []byte) (*CodeSystem, error) {
	var j jsonCodeSystem
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if j.ResourceType != "" && j.ResourceType != "CodeSystem" {
		return nil, fmt.Errorf("%w: resourceType is %q, not CodeSystem", ErrInvalid, j.ResourceType)
	}
	return buildCodeSystem(&j)
}

func buildCodeSystem(j *jsonCodeSystem) (*CodeSystem, error) {
	cs := &CodeSystem{URL: j.URL, Version: j.Version, Name: j.Name, Title: j.Title, Content: j.Content, byCode: map[string]int{}}
	var walk func(cs []*jsonConcept, parent, depth int) error
	walk = func(list []*jsonConcept, parent, depth int) error {
		if depth > maxConceptDepth {
			return fmt.Errorf("%w: concepts nest deeper than %d levels", ErrInvalid, maxConceptDepth)
		}
		for _, c := range list {
			if c == nil || c.Code == "" {
				return fmt.Errorf("%w: a concept has no code", ErrInvalid)
			}
			i, seen := cs.byCode[c.Code]
			if !seen {
				i = len(cs.Concepts)
				cs.byCode[c.Code] = i
				cs.Concepts = append(cs.Concepts, Concept{Code: c.Code, Display: c.Display})
			}
			// A repeated code gains another parent. No cycle check: it would cost a walk per
			// repeat (quadratic on hostile input), and every walk of the hierarchy keeps a
			// seen set instead.
			if parent >= 0 && parent != i {
				cs.Concepts[i].Parents = append(cs.Concepts[i].Parents, parent)
				cs.Concepts[parent].Children = append(cs.Concepts[parent].Children, i)
			}
			if err := walk(c.Concept, i, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(j.Concept, -1, 0); err != nil {
		return nil, err
	}
	cs.all = sync.OnceValue(func() []Coding {
		out := make([]Coding, len(cs.Concepts))
		for i, k := range cs.Concepts {
			out[i] = Coding{System: cs.URL, Version: cs.Version, Code: k.Code, Display: k.Display,
				lowerCode: strings.ToLower(k.Code), lowerDisplay: strings.ToLower(k.Display)}
		}
		return slices.Clip(out)
	})
	return cs, nil
}

// ParseValueSet reads a ValueSet resource in FHIR JSON.
func ParseValueSet(data []byte) (*ValueSet, error) {
	var j jsonValueSet
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if j.ResourceType != "" && j.ResourceType != "ValueSet" {
		return nil, fmt.Errorf("%w: resourceType is %q, not ValueSet", ErrInvalid, j.ResourceType)
	}
	return buildValueSet(&j)
}

func buildValueSet(j *jsonValueSet) (*ValueSet, error) {
	vs := &ValueSet{URL: j.URL, Version: j.Version, Name: j.Name, Title: j.Title, Status: j.Status}
	if j.Compose != nil {
		vs.Compose = &Compose{}
		conv := func(in []jsonConceptSet) []ConceptSet {
			out := make([]ConceptSet, len(in))
			for i, s := range in {
				out[i] = ConceptSet{System: s.System, ValueSet: s.ValueSet}
				for _, c := range s.Concept {
					out[i].Concepts = append(out[i].Concepts, Coding{Code: c.Code, Display: c.Display})
				}
				for _, f := range s.Filter {
					out[i].Filters = append(out[i].Filters, Filter{Property: f.Property, Op: f.Op, Value: f.Value})
				}
			}
			return out
		}
		vs.Compose.Include = conv(j.Compose.Include)
		vs.Compose.Exclude = conv(j.Compose.Exclude)
	}
	if j.Expansion != nil {
		var flat func([]jsonContains, int) error
		flat = func(cs []jsonContains, depth int) error {
			if depth > maxConceptDepth {
				return fmt.Errorf("%w: expansion.contains nests deeper than %d levels", ErrInvalid, maxConceptDepth)
			}
			for _, c := range cs {
				if c.Code != "" {
					vs.Expansion = append(vs.Expansion, Coding{System: c.System, Version: c.Version, Code: c.Code, Display: c.Display})
				}
				if err := flat(c.Contains, depth+1); err != nil {
					return err
				}
			}
			return nil
		}
		if err := flat(j.Expansion.Contains, 0); err != nil {
			return nil, err
		}
	}
	return vs, nil
}

// canonical drops a "|version" from a canonical url: Ward holds one version of each.
func canonical(u string) string {
	u, _, _ = strings.Cut(u, "|")
	return u
}
