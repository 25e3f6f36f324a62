// Package r4pkg locates, for tests, the extracted npm package
// hl7.fhir.r4.examples@4.0.1 (CC0-1.0): the R4 StructureDefinitions,
// SearchParameters and 2,900 example resources the schema and search
// models are generated from and checked against. scripts/test.sh installs
// it (testdata/r4pkg/package.json, pinned by its lock) and exports
// WARD_FHIR_EXAMPLES; by hand:
//
//	(cd testdata/r4pkg && npm ci) && export WARD_FHIR_EXAMPLES=$PWD/testdata/r4pkg/node_modules/hl7.fhir.r4.examples
package r4pkg

import (
	"os"
	"path/filepath"
	"testing"
)

// Env names the variable holding the package directory.
const Env = "WARD_FHIR_EXAMPLES"

// Dir returns the package directory. Without it the test is skipped,
// except in CI (CI=true), where the tests must not pass unseen: it fails.
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(Env)
	if dir == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: scripts/test.sh installs hl7.fhir.r4.examples from testdata/r4pkg", Env)
		}
		t.Skipf("%s not set: the hl7.fhir.r4.examples package is not here (see package r4pkg)", Env)
	}
	if _, err := os.Stat(filepath.Join(dir, "Bundle-searchParams.json")); err != nil {
		t.Fatalf("%s=%s does not hold the R4 package: %v", Env, dir, err)
	}
	return dir
}
