// Command gen turns the FHIR R4 StructureDefinitions into the compact model that package schema
// embeds (r4.json.gz). It reads the snapshots in Bundle-resources.json and Bundle-types.json of the
// npm package hl7.fhir.r4.examples@4.0.1 (CC0-1.0), installed as package r4pkg says, and is run
// from internal/fhir/schema as
//
//	go run ./internal/gen -pkg $WARD_FHIR_EXAMPLES
//
// The output depends only on the input files: types are sorted by name, elements keep snapshot
// order, and the gzip header carries no name or time, so regenerating yields identical bytes.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	pkg := flag.String("pkg", "", "directory of the extracted hl7.fhir.r4.examples package (holds Bundle-types.json)")
	out := flag.String("out", "r4.json.gz", "output file")
	flag.Parse()
	if *pkg == "" {
		log.Fatal("gen: -pkg is required; for go generate set WARD_FHIR_EXAMPLES (package r4pkg says how to install it)")
	}
	m, err := build(*pkg)
	if err != nil {
		log.Fatalf("gen: %v", err)
	}
	data, err := encode(m)
	if err != nil {
		log.Fatalf("gen: %v", err)
	}
	if err := os.WriteFile(*out, data, 0o644); err != nil {
		log.Fatalf("gen: %v", err)
	}
	fmt.Printf("gen: wrote %s (%d bytes): %d resource types, %d complex types, %d primitives\n",
		*out, len(data), len(m.ResourceTypes), len(m.Types)-len(m.ResourceTypes)-len(m.Abstract), len(m.Primitives))
}

// The output model; package schema decodes the same shape (model.go). Keep the two in step.
type model struct {
	FHIRVersion   string                `json:"fhirVersion"`
	ResourceTypes []string              `json:"resourceTypes"` // concrete, sorted
	Abstract      []string              `json:"abstract"`      // abstract resource types, sorted
	Primitives    map[string]*primitive `json:"primitives"`
	Types         map[string]*typeDef   `json:"types"` // resources (abstract too) and complex datatypes
}

type primitive struct {
	Base  string `json:"base"`            // the primitive it specializes, or "Element"
	JSON  string `json:"json"`            // "boolean", "number" or "string": its JSON representation
	Regex string `json:"regex,omitempty"` // the spec's value regex, unanchored
}

type typeDef struct {
	Kind     string     `json:"kind"` // "resource" or "complex-type"
	Base     string     `json:"base,omitempty"`
	Elements []*element `json:"elements"`
}

type element struct {
	Path             string   `json:"path"` // relative to the type: "name", "contact.name", "value[x]"
	Types            []string `json:"types,omitempty"`
	Min              int      `json:"min"`
	Max              string   `json:"max"`
	ContentReference string   `json:"contentReference,omitempty"` // e.g. "#Questionnaire.item"
	Primitive        bool     `json:"primitive,omitempty"`        // every type is a primitive
	// System marks elements typed with a FHIRPath system type (Element.id, Extension.url,
	// Resource.id): plain JSON values that cannot carry a "_name" extension object.
	System bool `json:"system,omitempty"`
	// Summary is the element's isSummary: _summary=true keeps it.
	Summary bool `json:"summary,omitempty"`
}

// The input: just the parts of a StructureDefinition this generator reads.
type bundle struct {
	Entry []struct {
		Resource json.RawMessage `json:"resource"`
	} `json:"entry"`
}

type structureDefinition struct {
	ResourceType   string `json:"resourceType"`
	Name           string `json:"name"`
	Type           string `json:"type"`
	Kind           string `json:"kind"`
	Abstract       bool   `json:"abstract"`
	Derivation     string `json:"derivation"`
	BaseDefinition string `json:"baseDefinition"`
	Snapshot       struct {
		Element []struct {
			Path string `json:"path"`
			Min  int    `json:"min"`
			Max  string `json:"max"`
			Type []struct {
				Code      string `json:"code"`
				Extension []struct {
					URL         string `json:"url"`
					ValueURL    string `json:"valueUrl"`
					ValueString string `json:"valueString"`
				} `json:"extension"`
			} `json:"type"`
			ContentReference string `json:"contentReference"`
			IsSummary        bool   `json:"isSummary"`
			Base             struct {
				Path string `json:"path"`
			} `json:"base"`
		} `json:"element"`
	} `json:"snapshot"`
}

const (
	extFHIRType = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
	extRegex    = "http://hl7.org/fhir/StructureDefinition/regex"
)

func build(dir string) (*model, error) {
	var sds []structureDefinition
	for _, name := range []string{"Bundle-types.json", "Bundle-resources.json"} {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		var b bundle
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, fmt.Errorf("decode %s: %w", name, err)
		}
		for i, e := range b.Entry {
			// Other resources in the bundles (OperationDefinition...) reuse field names with
			// other JSON types, so look at resourceType before decoding the rest.
			var head struct {
				ResourceType string `json:"resourceType"`
			}
			if err := json.Unmarshal(e.Resource, &head); err != nil {
				return nil, fmt.Errorf("%s entry %d: %w", name, i, err)
			}
			if head.ResourceType != "StructureDefinition" {
				continue
			}
			var sd structureDefinition
			if err := json.Unmarshal(e.Resource, &sd); err != nil {
				return nil, fmt.Errorf("%s entry %d: %w", name, i, err)
			}
			sds = append(sds, sd)
		}
	}
	m := &model{FHIRVersion: "4.0.1", Primitives: map[string]*primitive{}, Types: map[string]*typeDef{}}
	for _, sd := range sds {
		switch {
		case sd.Kind == "primitive-type":
			p, err := primitiveOf(sd)
			if err != nil {
				return nil, err
			}
			m.Primitives[sd.Name] = p
		case sd.Derivation == "constraint", sd.Kind == "logical":
			// Profiles (SimpleQuantity, MoneyQuantity) add no elements to their base type, and
			// the logical MetadataResource is not something a client can send.
			continue
		case sd.Kind == "resource" || sd.Kind == "complex-type":
			if sd.Kind == "resource" {
				if sd.Abstract {
					m.Abstract = append(m.Abstract, sd.Name)
				} else {
					m.ResourceTypes = append(m.ResourceTypes, sd.Name)
				}
			}
			m.Types[sd.Name] = typeOf(sd)
		}
	}
	for name, p := range m.Primitives {
		// The JSON form follows the root of the primitive's lineage, not the snapshot's
		// FHIRPath type: 4.0.1 tags positiveInt and unsignedInt values as System.String, yet
		// they are JSON numbers.
		root := name
		for m.Primitives[m.Primitives[root].Base] != nil {
			root = m.Primitives[root].Base
		}
		switch root {
		case "boolean":
			p.JSON = "boolean"
		case "integer", "decimal":
			p.JSON = "number"
		default:
			p.JSON = "string"
		}
	}
	sort.Strings(m.ResourceTypes)
	sort.Strings(m.Abstract)
	for name, t := range m.Types {
		for _, e := range t.Elements {
			e.Primitive = len(e.Types) > 0
			for _, ty := range e.Types {
				if m.Primitives[ty] == nil {
					e.Primitive = false
				}
				if m.Primitives[ty] == nil && m.Types[ty] == nil {
					return nil, fmt.Errorf("%s.%s: unknown type %q", name, e.Path, ty)
				}
			}
		}
	}
	if len(m.ResourceTypes) != 146 {
		return nil, fmt.Errorf("found %d concrete resource types, R4 has 146", len(m.ResourceTypes))
	}
	return m, nil
}

func primitiveOf(sd structureDefinition) (*primitive, error) {
	for _, el := range sd.Snapshot.Element {
		if el.Path != sd.Name+".value" || len(el.Type) != 1 {
			continue
		}
		p := &primitive{Base: strings.TrimPrefix(sd.BaseDefinition, "http://hl7.org/fhir/StructureDefinition/")}
		for _, x := range el.Type[0].Extension {
			if x.URL == extRegex {
				p.Regex = x.ValueString
			}
		}
		return p, nil
	}
	return nil, errors.New(sd.Name + ": primitive without a value element")
}

func typeOf(sd structureDefinition) *typeDef {
	t := &typeDef{Kind: sd.Kind, Base: strings.TrimPrefix(sd.BaseDefinition, "http://hl7.org/fhir/StructureDefinition/")}
	for _, el := range sd.Snapshot.Element[1:] { // [0] is the type itself
		e := &element{
			Path:             strings.TrimPrefix(el.Path, sd.Name+"."),
			Min:              el.Min,
			Max:              el.Max,
			ContentReference: el.ContentReference,
			Summary:          el.IsSummary,
		}
		for _, ty := range el.Type {
			code := ty.Code
			if strings.HasPrefix(code, "http://hl7.org/fhirpath/System.") {
				code = systemType(el.Base.Path, ty.Extension)
				e.System = true
			}
			if !contains(e.Types, code) {
				e.Types = append(e.Types, code)
			}
		}
		t.Elements = append(t.Elements, e)
	}
	return t
}

// systemType names the FHIR type of an element the snapshot types with a FHIRPath system type
// (Element.id, Extension.url, Resource.id). The 4.0.1 snapshots tag Resource.id as "string",
// but the spec's Resource page defines it as "id", and servers must enforce that format.
func systemType(basePath string, ext []struct {
	URL         string `json:"url"`
	ValueURL    string `json:"valueUrl"`
	ValueString string `json:"valueString"`
}) string {
	if basePath == "Resource.id" {
		return "id"
	}
	for _, x := range ext {
		if x.URL == extFHIRType && x.ValueURL != "" {
			return x.ValueURL
		}
	}
	return "string"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// encode writes the model as gzip-compressed JSON. encoding/json sorts map keys, and a zero
// gzip header has no file name or time, so equal models encode to equal bytes.
func encode(m *model) ([]byte, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode model: %w", err)
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return buf.Bytes(), nil
}
