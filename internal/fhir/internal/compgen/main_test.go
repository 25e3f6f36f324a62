package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/wardhealth/ward/internal/fhir/r4pkg"
)

// TestCommittedCompartmentsAreCurrent regenerates compartments.json from
// the package's CompartmentDefinitions and compares it with the committed
// one.
func TestCommittedCompartmentsAreCurrent(t *testing.T) {
	out := filepath.Join(t.TempDir(), "compartments.json")
	if err := run(r4pkg.Dir(t), out); err != nil {
		t.Fatal(err)
	}
	fresh, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(filepath.Join("..", "..", "compartments.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, committed) {
		t.Error("compartments.json is stale: run go generate in internal/fhir")
	}
}
