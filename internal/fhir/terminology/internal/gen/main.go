// Command gen extracts the R4 core terminology that package terminology embeds (core.json.gz):
// the CodeSystems' concepts (code, display, hierarchy), the ValueSets' compose (and the
// expansion where the package ships one and the compose cannot be expanded locally), and every
// element binding of strength required, extensible or preferred. It reads the definition bundles
// of the npm package hl7.fhir.r4.examples@4.0.1 (CC0-1.0; the same CodeSystems, ValueSets and
// StructureDefinitions as hl7.fhir.r4.core@4.0.1, which npmjs does not carry), installed as
// package r4pkg says, and is run from internal/fhir/terminology as
//
//	go run ./internal/gen -pkg $WARD_FHIR_EXAMPLES
//
// The output depends only on the input: resources are sorted by url, bindings by path, and the
// gzip header carries no name or time.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	pkg := flag.String("pkg", "", "directory of the extracted hl7.fhir.r4.examples package")
	out := flag.String("out", "core.json.gz", "output file")
	flag.Parse()
	if *pkg == "" {
		log.Fatal("gen: -pkg is required; for go generate set WARD_FHIR_EXAMPLES (package r4pkg says how to install it)")
	}
	c, err := build(*pkg)
	if err != nil {
		log.Fatalf("gen: %v", err)
	}
	data, err := encode(c)
	if err != nil {
		log.Fatalf("gen: %v", err)
	}
	if err := os.WriteFile(*out, data, 0o644); err != nil {
		log.Fatalf("gen: %v", err)
	}
	fmt.Printf("gen: wrote %s (%d bytes): %d code systems, %d value sets, %d bindings\n",
		*out, len(data), len(c.CodeSystems), len(c.ValueSets), len(c.Bindings))
}

// core is the output; package terminology decodes the same shape (core.go). CodeSystems and
// ValueSets keep their FHIR JSON shape (trimmed), so one decoder reads them and a project's own.
type core struct {
	CodeSystems []*codeSystem       `json:"codeSystems"`
	ValueSets   []*valueSet         `json:"valueSets"`
	Bindings    map[string]*binding `json:"bindings"` // "Patient.gender", "HumanName.use"
}

type binding struct {
	Strength string `json:"strength"`
	ValueSet string `json:"valueSet"` // canonical without |version
}

type codeSystem struct {
	URL           string     `json:"url"`
	Version       string     `json:"version,omitempty"`
	Name          string     `json:"name,omitempty"`
	Title         string     `json:"title,omitempty"`
	Content       string     `json:"content,omitempty"`
	CaseSensitive *bool      `json:"caseSensitive,omitempty"`
	Concept       []*concept `json:"concept,omitempty"`
}

type concept struct {
	Code    string     `json:"code"`
	Display string     `json:"display,omitempty"`
	Concept []*concept `json:"concept,omitempty"`
}

type valueSet struct {
	URL       string     `json:"url"`
	Version   string     `json:"version,omitempty"`
	Name      string     `json:"name,omitempty"`
	Title     string     `json:"title,omitempty"`
	Compose   *compose   `json:"compose,omitempty"`
	Expansion *expansion `json:"expansion,omitempty"`
}

type compose struct {
	Include []conceptSet `json:"include,omitempty"`
	Exclude []conceptSet `json:"exclude,omitempty"`
}

type conceptSet struct {
	System   string     `json:"system,omitempty"`
	Version  string     `json:"version,omitempty"`
	Concept  []*concept `json:"concept,omitempty"`
	Filter   []filter   `json:"filter,omitempty"`
	ValueSet []string   `json:"valueSet,omitempty"`
}

type filter struct {
	Property string `json:"property"`
	Op       string `json:"op"`
	Value    string `json:"value"`
}

type expansion struct {
	Contains []contains `json:"contains,omitempty"`
}

type contains struct {
	System   string     `json:"system,omitempty"`
	Code     string     `json:"code,omitempty"`
	Display  string     `json:"display,omitempty"`
	Abstract bool       `json:"abstract,omitempty"`
	Contains []contains `json:"contains,omitempty"`
}

// maxShippedExpansion bounds an expansion copied from the package: larger ones (all of
// LOINC's answer lists, UCUM) would make the file large for little use.
const maxShippedExpansion = 2000

type bundle struct {
	Entry []struct {
		Resource json.RawMessage `json:"resource"`
	} `json:"entry"`
}

func readBundle(pkg, name string) ([]json.RawMessage, error) {
	data, err := os.ReadFile(filepath.Join(pkg, name))
	if err != nil {
		return nil, err
	}
	var b bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	out := make([]json.RawMessage, len(b.Entry))
	for i, e := range b.Entry {
		out[i] = e.Resource
	}
	return out, nil
}

func build(pkg string) (*core, error) {
	c := &core{Bindings: map[string]*binding{}}
	csSeen, vsSeen := map[string]bool{}, map[string]bool{}
	for _, name := range []string{"Bundle-valuesets.json", "Bundle-v3-valuesets.json", "Bundle-v2-valuesets.json"} {
		res, err := readBundle(pkg, name)
		if err != nil {
			return nil, err
		}
		for _, raw := range res {
			var head struct {
				ResourceType string `json:"resourceType"`
			}
			if err := json.Unmarshal(raw, &head); err != nil {
				return nil, err
			}
			switch head.ResourceType {
			case "CodeSystem":
				var cs codeSystem
				if err := json.Unmarshal(raw, &cs); err != nil {
					return nil, err
				}
				if cs.Content == "supplement" || csSeen[cs.URL] {
					continue
				}
				csSeen[cs.URL] = true
				c.CodeSystems = append(c.CodeSystems, &cs)
			case "ValueSet":
				var vs valueSet
				if err := json.Unmarshal(raw, &vs); err != nil {
					return nil, err
				}
				vs.Expansion = nil // the definition bundles carry none; see below
				if vsSeen[vs.URL] {
					continue
				}
				vsSeen[vs.URL] = true
				c.ValueSets = append(c.ValueSets, &vs)
			}
		}
	}
	if err := addExpansions(pkg, c, csSeen); err != nil {
		return nil, err
	}
	for _, name := range []string{"Bundle-types.json", "Bundle-resources.json"} {
		res, err := readBundle(pkg, name)
		if err != nil {
			return nil, err
		}
		for _, raw := range res {
			if err := addBindings(raw, c.Bindings); err != nil {
				return nil, err
			}
		}
	}
	sort.Slice(c.CodeSystems, func(i, j int) bool { return c.CodeSystems[i].URL < c.CodeSystems[j].URL })
	sort.Slice(c.ValueSets, func(i, j int) bool { return c.ValueSets[i].URL < c.ValueSets[j].URL })
	return c, nil
}

// addExpansions copies the package's expansion of a ValueSet whose compose names a code system
// the package does not define (so no local expansion is possible), when it is small.
func addExpansions(pkg string, c *core, local map[string]bool) error {
	res, err := readBundle(pkg, "Bundle-valueset-expansions.json")
	if err != nil {
		return err
	}
	byURL := map[string]*valueSet{}
	for _, vs := range c.ValueSets {
		byURL[vs.URL] = vs
	}
	for _, raw := range res {
		var vs struct {
			URL       string `json:"url"`
			Expansion *struct {
				Total     *int       `json:"total"`
				Parameter []struct{} `json:"parameter"`
				Contains  []contains `json:"contains"`
			} `json:"expansion"`
		}
		if err := json.Unmarshal(raw, &vs); err != nil {
			return err
		}
		def := byURL[vs.URL]
		if def == nil || def.Compose == nil || vs.Expansion == nil || len(vs.Expansion.Contains) == 0 {
			continue
		}
		n := count(vs.Expansion.Contains)
		if n > maxShippedExpansion || (vs.Expansion.Total != nil && *vs.Expansion.Total != n) {
			continue // partial or large
		}
		external := false
		for _, in := range def.Compose.Include {
			if in.System != "" && !local[in.System] {
				external = true
			}
		}
		if external {
			def.Expansion = &expansion{Contains: vs.Expansion.Contains}
		}
	}
	return nil
}

func count(cs []contains) int {
	n := 0
	for _, c := range cs {
		if c.Code != "" {
			n++
		}
		n += count(c.Contains)
	}
	return n
}

// addBindings records the bindings of a resource or datatype definition (not of profiles:
// their paths are the base type's and would shadow it).
func addBindings(raw json.RawMessage, out map[string]*binding) error {
	var sd struct {
		ResourceType string `json:"resourceType"`
		Derivation   string `json:"derivation"`
		Snapshot     struct {
			Element []struct {
				Path string `json:"path"`
				Type []struct {
					Code string `json:"code"`
				} `json:"type"`
				Binding *struct {
					Strength string `json:"strength"`
					ValueSet string `json:"valueSet"`
				} `json:"binding"`
			} `json:"element"`
		} `json:"snapshot"`
	}
	if err := json.Unmarshal(raw, &sd); err != nil {
		return err
	}
	if sd.ResourceType != "StructureDefinition" || sd.Derivation == "constraint" {
		return nil
	}
	for _, el := range sd.Snapshot.Element {
		b := el.Binding
		if b == nil || b.ValueSet == "" || (b.Strength != "required" && b.Strength != "extensible" && b.Strength != "preferred") {
			continue
		}
		coded := false
		for _, t := range el.Type {
			switch t.Code {
			case "code", "Coding", "CodeableConcept":
				coded = true
			}
		}
		if !coded {
			continue
		}
		vs, _, _ := strings.Cut(b.ValueSet, "|")
		out[strings.ReplaceAll(el.Path, "[x]", "")] = &binding{Strength: b.Strength, ValueSet: vs}
	}
	return nil
}

// encode writes c as gzipped JSON with a fixed header, so the same input gives the same bytes.
func encode(c *core) ([]byte, error) {
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
