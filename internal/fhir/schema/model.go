package schema

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
)

//go:embed r4.json.gz
var r4Data []byte

// rawModel mirrors what internal/gen writes.
type rawModel struct {
	FHIRVersion   string                   `json:"fhirVersion"`
	ResourceTypes []string                 `json:"resourceTypes"`
	Abstract      []string                 `json:"abstract"`
	Primitives    map[string]*rawPrimitive `json:"primitives"`
	Types         map[string]*rawType      `json:"types"`
}

type rawPrimitive struct {
	Base  string `json:"base"`
	JSON  string `json:"json"`
	Regex string `json:"regex"`
}

type rawType struct {
	Kind     string        `json:"kind"`
	Base     string        `json:"base"`
	Elements []*rawElement `json:"elements"`
}

type rawElement struct {
	Path             string   `json:"path"`
	Types            []string `json:"types"`
	Min              int      `json:"min"`
	Max              string   `json:"max"`
	ContentReference string   `json:"contentReference"`
	Primitive        bool     `json:"primitive"`
	System           bool     `json:"system"`
	Summary          bool     `json:"summary"`
}

// model is the indexed form of rawModel that validation walks. Built once, never changed.
type model struct {
	types     map[string]*typeInfo // resources (abstract too) and complex datatypes
	prims     map[string]*primInfo
	resources []string // concrete resource types, sorted
	concrete  map[string]bool
	element   *typeInfo // the shape of a primitive's "_name" object: id and extension
}

// typeInfo describes one object shape: a resource, a datatype or an inline BackboneElement.
type typeInfo struct {
	name     string
	resource bool
	props    map[string]propInfo  // by JSON property name ("valueQuantity", "_birthDate")
	byName   map[string]*elemInfo // by element name ("value" for value[x])
	required []*elemInfo
}

// propInfo is what one JSON property name means: an element, the concrete type it carries
// and whether it is the "_name" extension object of a primitive.
type propInfo struct {
	el   *elemInfo
	typ  string
	prim *primInfo // nil for complex types
	ext  bool
	pair string // for primitives, the other property of the pair: "_name" for "name" and back
}

type elemInfo struct {
	name      string // without [x]
	path      string // its definition's path without [x] ("Patient.contact.gender"): bindings are keyed by it
	types     []string
	min       int
	max       int // -1 for "*"
	choice    bool
	system    bool      // a FHIRPath system type (Element.id, Extension.url): no "_name" form
	summary   bool      // isSummary: kept by _summary=true
	jsonNames []string  // every property name that carries this element, "_" forms included
	inline    *typeInfo // children of a BackboneElement, or the target of a contentReference
}

type primInfo struct {
	name  string
	json  string // "boolean", "number" or "string"
	valid func(string) bool
}

// loadModel decodes the embedded model on first use; the result is shared read-only.
var loadModel = sync.OnceValues(func() (*model, error) { return buildModel(r4Data) })

// theModel returns the embedded model. The data is compiled into the binary and checked by the
// tests, so failing to read it is a build defect, not a runtime condition.
func theModel() *model {
	m, err := loadModel()
	if err != nil {
		panic(fmt.Sprintf("schema: embedded R4 model is broken: %v", err))
	}
	return m
}

func decodeRaw(gz []byte) (*rawModel, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("gunzip model: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("gunzip model: %w", err)
	}
	var rm rawModel
	if err := json.Unmarshal(raw, &rm); err != nil {
		return nil, fmt.Errorf("decode model: %w", err)
	}
	return &rm, nil
}

func buildModel(gz []byte) (*model, error) {
	rm, err := decodeRaw(gz)
	if err != nil {
		return nil, err
	}
	m := &model{
		types:     make(map[string]*typeInfo, len(rm.Types)),
		prims:     make(map[string]*primInfo, len(rm.Primitives)),
		resources: rm.ResourceTypes,
		concrete:  make(map[string]bool, len(rm.ResourceTypes)),
	}
	for _, name := range rm.ResourceTypes {
		m.concrete[name] = true
	}
	for name, p := range rm.Primitives {
		valid, err := formatCheck(name, p.Regex)
		if err != nil {
			return nil, err
		}
		m.prims[name] = &primInfo{name: name, json: p.JSON, valid: valid}
	}
	// Inline shapes are keyed by their full path so contentReferences ("#Questionnaire.item")
	// can be resolved once every type is built.
	inline := map[string]*typeInfo{}
	var refs []*elemInfo
	var refTargets []string
	for name, rt := range rm.Types {
		root := newTypeInfo(name, rt.Kind == "resource")
		m.types[name] = root
		inline[name] = root
		for _, re := range rt.Elements {
			parentPath, elName := name, re.Path
			if i := strings.LastIndexByte(re.Path, '.'); i >= 0 {
				parentPath, elName = name+"."+re.Path[:i], re.Path[i+1:]
			}
			parent := inline[parentPath]
			if parent == nil {
				return nil, fmt.Errorf("%s.%s: element before its parent", name, re.Path)
			}
			el, err := newElemInfo(elName, re)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", name, re.Path, err)
			}
			el.path = parentPath + "." + el.name
			parent.byName[el.name] = el
			if el.min > 0 {
				parent.required = append(parent.required, el)
			}
			if re.ContentReference != "" {
				refs = append(refs, el)
				refTargets = append(refTargets, strings.TrimPrefix(re.ContentReference, "#"))
			} else if len(el.types) == 1 && (el.types[0] == "BackboneElement" || el.types[0] == "Element") && name != "Element" && name != "BackboneElement" {
				el.inline = newTypeInfo(parentPath+"."+el.name, false)
				inline[parentPath+"."+el.name] = el.inline
			}
		}
	}
	for i, el := range refs {
		target := inline[refTargets[i]]
		if target == nil {
			return nil, fmt.Errorf("contentReference #%s: no such element", refTargets[i])
		}
		el.inline = target
		el.types = []string{"BackboneElement"}
	}
	// Properties are filled in only now, since contentReference elements learn their types
	// from the target.
	for _, t := range inline {
		for _, el := range t.byName {
			if err := m.addProps(t, el); err != nil {
				return nil, fmt.Errorf("%s.%s: %w", t.name, el.name, err)
			}
		}
	}
	m.element = m.types["Element"]
	if m.element == nil || len(m.resources) == 0 {
		return nil, fmt.Errorf("model lacks Element or resource types")
	}
	return m, nil
}

func newTypeInfo(name string, resource bool) *typeInfo {
	return &typeInfo{name: name, resource: resource, props: map[string]propInfo{}, byName: map[string]*elemInfo{}}
}

func newElemInfo(name string, re *rawElement) (*elemInfo, error) {
	el := &elemInfo{name: strings.TrimSuffix(name, "[x]"), types: re.Types, min: re.Min, max: -1, system: re.System, summary: re.Summary}
	el.choice = el.name != name
	if re.Max != "*" {
		if _, err := fmt.Sscanf(re.Max, "%d", &el.max); err != nil {
			return nil, fmt.Errorf("max %q: %w", re.Max, err)
		}
	}
	return el, nil
}

// addProps registers the JSON property names of one element: "name" (or "nameType" for each
// type of a choice) and, for primitives, "_name".
func (m *model) addProps(t *typeInfo, el *elemInfo) error {
	for _, typ := range el.types {
		key := el.name
		if el.choice {
			key += strings.ToUpper(typ[:1]) + typ[1:]
		}
		if _, dup := t.props[key]; dup {
			return fmt.Errorf("property %q defined twice", key)
		}
		p := propInfo{el: el, typ: typ, prim: m.prims[typ], pair: "_" + key}
		if p.prim == nil && m.types[typ] == nil && el.inline == nil {
			return fmt.Errorf("unknown type %q", typ)
		}
		t.props[key] = p
		el.jsonNames = append(el.jsonNames, key)
		if p.prim != nil && !el.system {
			p.ext, p.pair = true, key
			t.props["_"+key] = p
			el.jsonNames = append(el.jsonNames, "_"+key)
		}
	}
	return nil
}
