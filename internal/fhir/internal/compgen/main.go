// Command compgen turns the R4 CompartmentDefinitions (CompartmentDefinition-
// *.json of the npm package hl7.fhir.r4.examples@4.0.1, CC0-1.0) into the
// compact compartments.json that package fhir embeds: for each compartment
// type, each member resource type and the search parameters that link it
// to the compartment's resource. "{def}" (the resource itself, R4
// compartmentdefinition.html) is written as "_id".
//
// Install the package as package r4pkg says (it is never committed), then
// run `go generate ./internal/fhir` from the module root.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

func main() {
	in := flag.String("in", "", "the extracted hl7.fhir.r4.examples package directory")
	out := flag.String("out", "compartments.json", "output file")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "compgen:", err)
		os.Exit(1)
	}
}

// definition is the part of a CompartmentDefinition read here.
type definition struct {
	ResourceType string `json:"resourceType"`
	Code         string `json:"code"`
	Search       bool   `json:"search"`
	Resource     []struct {
		Code  string   `json:"code"`
		Param []string `json:"param"`
	} `json:"resource"`
}

func run(in, out string) error {
	if in == "" {
		return fmt.Errorf("no input: set WARD_FHIR_EXAMPLES to the extracted package directory (see the package comment)")
	}
	files, err := filepath.Glob(filepath.Join(in, "CompartmentDefinition-*.json"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no CompartmentDefinition-*.json in %s", in)
	}
	table := map[string]map[string][]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var d definition
		if err := json.Unmarshal(raw, &d); err != nil {
			return fmt.Errorf("decode %s: %w", f, err)
		}
		// The package's example definition (CompartmentDefinition-example)
		// is a copy of a real one with another url: the code decides.
		if d.ResourceType != "CompartmentDefinition" || !d.Search || table[d.Code] != nil {
			continue
		}
		members := map[string][]string{}
		for _, r := range d.Resource {
			for _, p := range r.Param {
				if p == "{def}" {
					p = "_id"
				}
				members[r.Code] = append(members[r.Code], p)
			}
		}
		table[d.Code] = members
	}
	data, err := encode(table)
	if err != nil {
		return err
	}
	return os.WriteFile(out, data, 0o644)
}

// encode writes one member type per line, in order, so diffs stay small.
func encode(table map[string]map[string][]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("{\n")
	comps := sortedKeys(table)
	for i, c := range comps {
		fmt.Fprintf(&b, "%q: {\n", c)
		types := sortedKeys(table[c])
		for j, typ := range types {
			params, err := json.Marshal(table[c][typ])
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&b, "  %q: %s", typ, params)
			if j < len(types)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString("}")
		if i < len(comps)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("}\n")
	return b.Bytes(), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
