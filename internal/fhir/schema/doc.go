// Package schema holds the FHIR R4 (4.0.1) structure model and validates resources against it.
//
// The model is generated from the specification's own StructureDefinitions (the snapshots in the
// npm package hl7.fhir.r4.examples@4.0.1, CC0-1.0) into r4.json.gz, which is embedded and indexed
// on first use. To regenerate it, install the package (as scripts/test.sh does; package r4pkg)
// and run go generate here:
//
//	(cd testdata/r4pkg && npm ci) && export WARD_FHIR_EXAMPLES=$PWD/testdata/r4pkg/node_modules/hl7.fhir.r4.examples
//	cd internal/fhir/schema && go generate
//
// Validate checks structure (known elements, cardinality, arrays versus single values, required
// elements, nested and contained resources) and primitive values (JSON types and the spec's
// formats), and coded values against the elements' bindings (package terminology: a code outside
// a required binding's value set is an error, outside an extensible or preferred one a
// warning, when the value set can be expanded locally). It does not evaluate invariants
// (FHIRPath constraints), reference targets or profiles: those need more than the base
// structure.
package schema

//go:generate go run ./internal/gen -pkg=$WARD_FHIR_EXAMPLES
