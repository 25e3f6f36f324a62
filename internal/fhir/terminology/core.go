package terminology

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

//go:embed core.json.gz
var coreData []byte

// Binding is an element's binding in the R4 definitions.
type Binding struct {
	Strength string `json:"strength"` // required, extensible or preferred
	ValueSet string `json:"valueSet"` // canonical url, without version
}

// Core is the R4 core terminology: read-only once built, shared by every request.
type Core struct {
	codeSystems map[string]*CodeSystem
	valueSets   map[string]*ValueSet
	bindings    map[string]Binding
	memo        sync.Map // value set url -> *memberSet: expansions are pure functions of core
}

var loadCore = sync.OnceValues(func() (*Core, error) { return buildCore(coreData) })

// R4 returns the embedded R4 core terminology, decoded on first use. The data is compiled into
// the binary and checked by the tests, so failing to read it is a build defect.
func R4() *Core {
	c, err := loadCore()
	if err != nil {
		panic(fmt.Sprintf("terminology: embedded R4 content is broken: %v", err))
	}
	return c
}

func buildCore(gz []byte) (*Core, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("gunzip core: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("gunzip core: %w", err)
	}
	var j struct {
		CodeSystems []*jsonCodeSystem  `json:"codeSystems"`
		ValueSets   []*jsonValueSet    `json:"valueSets"`
		Bindings    map[string]Binding `json:"bindings"`
	}
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("decode core: %w", err)
	}
	c := &Core{
		codeSystems: make(map[string]*CodeSystem, len(j.CodeSystems)),
		valueSets:   make(map[string]*ValueSet, len(j.ValueSets)),
		bindings:    j.Bindings,
	}
	for _, jc := range j.CodeSystems {
		cs, err := buildCodeSystem(jc)
		if err != nil {
			return nil, fmt.Errorf("CodeSystem %s: %w", jc.URL, err)
		}
		c.codeSystems[cs.URL] = cs
	}
	for _, jv := range j.ValueSets {
		vs, err := buildValueSet(jv)
		if err != nil {
			return nil, fmt.Errorf("ValueSet %s: %w", jv.URL, err)
		}
		c.valueSets[vs.URL] = vs
	}
	return c, nil
}

// CodeSystem returns the core CodeSystem with canonical url u, or false.
func (c *Core) CodeSystem(u string) (*CodeSystem, bool) {
	cs, ok := c.codeSystems[canonical(u)]
	return cs, ok
}

// ValueSet returns the core ValueSet with canonical url u, or false.
func (c *Core) ValueSet(u string) (*ValueSet, bool) {
	vs, ok := c.valueSets[canonical(u)]
	return vs, ok
}

// Binding returns the binding of the element at path ("Patient.gender", "HumanName.use",
// "Observation.component.code"), or false when it has none of strength required, extensible
// or preferred.
func (c *Core) Binding(path string) (Binding, bool) {
	b, ok := c.bindings[path]
	return b, ok
}

// Bindings returns every binding by element path (the caller's copy).
func (c *Core) Bindings() map[string]Binding {
	out := make(map[string]Binding, len(c.bindings))
	for k, v := range c.bindings {
		out[k] = v
	}
	return out
}

// Members returns the codes of the core value set with url u as binding checks see them
// (without the package's snapshot expansions of external code systems); an error wraps
// ErrUndecidable when they cannot be listed here.
func (c *Core) Members(u string) ([]Coding, error) {
	m := c.members(canonical(u))
	if m.err != nil {
		return nil, m.err
	}
	return m.set.list, nil
}
