// Package terminology answers FHIR terminology questions: it expands ValueSets, looks codes up
// in CodeSystems, validates codes and decides subsumption ($expand, $lookup, $validate-code,
// $subsumes), and judges coded values against the element bindings of the R4 specification.
//
// Content comes from two places: the R4 core CodeSystems and ValueSets (extracted from the
// npm package hl7.fhir.r4.examples@4.0.1, CC0-1.0, into core.json.gz, embedded and decoded on
// first use) and, for the operations, the project's own CodeSystem and ValueSet resources,
// reached through a Source. A project's resource with the same canonical url wins for that
// project. To regenerate core.json.gz, install the package (package r4pkg says how) and run go
// generate here.
//
// What cannot be decided locally is never guessed: a ValueSet that names a code system Ward
// does not hold (SNOMED CT, LOINC, UCUM, BCP-13 ...) without listing its codes, or that filters
// on a property other than the concept hierarchy, cannot be expanded (ErrUndecidable), and a
// binding to it is not enforced.
package terminology

//go:generate go run ./internal/gen -pkg=$WARD_FHIR_EXAMPLES
