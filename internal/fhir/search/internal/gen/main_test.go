package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/wardhealth/ward/internal/fhir/r4pkg"
)

// TestCommittedRegistryIsCurrent regenerates registry.json from the
// package's SearchParameter bundle and compares it with the committed one.
func TestCommittedRegistryIsCurrent(t *testing.T) {
	out := filepath.Join(t.TempDir(), "registry.json")
	if err := run(filepath.Join(r4pkg.Dir(t), "Bundle-searchParams.json"), out); err != nil {
		t.Fatal(err)
	}
	fresh, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(filepath.Join("..", "..", "registry.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, committed) {
		t.Error("registry.json is stale: run go generate in internal/fhir/search")
	}
}
