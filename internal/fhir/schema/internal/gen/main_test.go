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

// TestCommittedModelIsCurrent regenerates the model from the npm package named by
// WARD_FHIR_EXAMPLES and compares it with the committed r4.json.gz. It compares the JSON, not
// the gzip bytes, so a different compressor in a newer Go does not count as drift.
func TestCommittedModelIsCurrent(t *testing.T) {
	dir := r4pkg.Dir(t)
	m, err := build(dir)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := encode(m)
	if err != nil {
		t.Fatal(err)
	}
	again, err := encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, again) {
		t.Error("encoding the same model twice gives different bytes")
	}
	committed, err := os.ReadFile(filepath.Join("..", "..", "r4.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gunzip(t, fresh), gunzip(t, committed)) {
		t.Error("r4.json.gz is stale: run go generate in internal/fhir/schema")
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
