// Package policy holds Ward's access policies: the action catalog (generated
// from the seed's action library), the policy document types, validation, the
// compiled decision engine and explanations.
//
// It is pure: it reads no files, calls no services and logs nothing, so the
// decision can be fuzzed and benchmarked on its own. Loading a principal's
// roles and caching its compiled Set belong to the callers.
//
// Semantics in brief (contract section 6): an explicit matching Deny wins; no
// matching Allow means deny; resources are Service:Type:id with "*" or an
// omitted trailing segment meaning "any"; Z3 resources are paths (z3.go);
// FHIR:History takes effect only where FHIR:Read is granted too; a
// conditional Allow grants only the resources its FHIR searches return.
package policy

//go:generate go run ./internal/gencatalog
