// Command gen turns the R4 SearchParameter bundle (Bundle-searchParams.json
// from the npm package hl7.fhir.r4.examples@4.0.1, CC0-1.0) into the compact
// registry.json that package search embeds.
//
// Install the package as package r4pkg says (it is never committed), then
// run `go generate ./internal/fhir/search` from the module root.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

func main() {
	in := flag.String("in", "", "path to Bundle-searchParams.json")
	out := flag.String("out", "registry.json", "output file")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	if in == "" || in == "/Bundle-searchParams.json" {
		return fmt.Errorf("no input: set WARD_FHIR_EXAMPLES to the extracted package directory (see the package comment)")
	}
	raw, err := os.ReadFile(in)
	if err != nil {
		return fmt.Errorf("read bundle: %w", err)
	}
	var b bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		return fmt.Errorf("decode %s: %w", in, err)
	}
	reg, err := build(b)
	if err != nil {
		return err
	}
	data, err := encode(reg)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return fmt.Errorf("write registry: %w", err)
	}
	return nil
}
