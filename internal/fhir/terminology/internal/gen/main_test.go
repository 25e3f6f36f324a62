package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/wardhealth/ward/internal/fhir/r4pkg"
)

// TestCommittedCoreIsCurrent regenerates core.json.gz from the npm package named by
// WARD_FHIR_EXAMPLES and compares its JSON with the committed file's (not the gzip bytes: a
// newer compressor is not drift).
func TestCommittedCoreIsCurrent(t *testing.T) {
	c, err := build(r4pkg.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := encode(c)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(filepath.Join("..", "..", "core.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gunzip(t, fresh), gunzip(t, committed)) {
		t.Error("core.json.gz is stale: run go generate in internal/fhir/terminology")
	}
	if len(c.Bindings) < 300 || c.Bindings["Patient.gender"] == nil || c.Bindings["Patient.gender"].Strength != "required" {
		t.Errorf("bindings look wrong: %d, Patient.gender %+v", len(c.Bindings), c.Bindings["Patient.gender"])
	}
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
