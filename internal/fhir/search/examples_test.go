package search

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/fhir/r4pkg"
)

// decodeResource decodes FHIR JSON the way the server does: numbers stay
// json.Number so that decimals keep their precision.
func decodeResource(t testing.TB, data []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m
}

// TestExtractAllExamples runs Extract over every example of the R4
// examples package (and every resource inside example Bundles); see
// package r4pkg for where it comes from.
func TestExtractAllExamples(t *testing.T) {
	dir := r4pkg.Dir(t)
	files := packageExamples(t, dir)
	if len(files) == 0 {
		t.Fatalf("no examples in %s", dir)
	}
	resources, values := 0, 0
	eachResource(t, files, func(f, rt string, res map[string]any) {
		if !IsResourceType(rt) {
			return // Parameters and other non-persistable types
		}
		vals, err := Extract(rt, res)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
		resources++
		values += len(vals)
	})
	t.Logf("%d resources, %d index values", resources, values)
}

// packageExamples lists the example files of the extracted R4 examples
// package in dir (not its manifests).
func packageExamples(t testing.TB, dir string) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range all {
		if b := filepath.Base(f); b != "package.json" && !strings.HasPrefix(b, "ig-") && !strings.HasPrefix(b, ".") {
			files = append(files, f)
		}
	}
	return files
}

// eachResource calls fn for every resource of every file, including the
// resources inside Bundles.
func eachResource(t testing.TB, files []string, fn func(file, resourceType string, res map[string]any)) {
	t.Helper()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, res := range withEntries(decodeResource(t, data)) {
			rt, _ := res["resourceType"].(string)
			fn(f, rt, res)
		}
	}
}

// withEntries returns r and, for a Bundle, the resources of its entries.
func withEntries(r map[string]any) []map[string]any {
	out := []map[string]any{r}
	entries, _ := r["entry"].([]any)
	for _, e := range entries {
		em, _ := e.(map[string]any)
		if res, ok := em["resource"].(map[string]any); ok {
			out = append(out, withEntries(res)...)
		}
	}
	return out
}

// TestExtractCommittedExamples runs every parameter of each committed
// sample (and of the resources inside its Bundles) so that each compiled
// expression meets real data on every run, not only with the full package.
func TestExtractCommittedExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "examples", "*.json"))
	if err != nil || len(files) < 40 {
		t.Fatalf("want at least 40 samples, got %d (%v)", len(files), err)
	}
	types := map[string]bool{}
	eachResource(t, files, func(f, rt string, res map[string]any) {
		if rt == "Parameters" { // not a stored type; see ResourceTypes
			return
		}
		vals, err := Extract(rt, res)
		if err != nil {
			t.Errorf("%s (%s): %v", f, rt, err)
		}
		if _, hasID := res["id"]; hasID && len(vals) == 0 { // _id at least
			t.Errorf("%s (%s): no index values", f, rt)
		}
		types[rt] = true
	})
	if len(types) < 25 {
		t.Errorf("samples cover %d resource types, want at least 25", len(types))
	}
}
