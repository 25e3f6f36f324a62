package schema

import (
	"os"
	"path/filepath"
	"testing"
)

func benchmarkFile(b *testing.B, name string) {
	data, err := os.ReadFile(filepath.Join("testdata", "examples", name))
	if err != nil {
		b.Fatal(err)
	}
	if _, issues, err := Validate(data); err != nil || len(issues) > 0 {
		b.Fatalf("%s: %v %v", name, err, issues)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Validate(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidatePatient is the common case: a typical Patient of about 1 KB.
func BenchmarkValidatePatient(b *testing.B) { benchmarkFile(b, "Patient-glossy.json") }

func BenchmarkValidatePatientExample(b *testing.B) { benchmarkFile(b, "Patient-example.json") }

func BenchmarkValidateBundleTransaction(b *testing.B) {
	benchmarkFile(b, "Bundle-bundle-transaction.json")
}

// BenchmarkValidateInvalid measures the path with issues, which re-reads the document to
// order them.
func BenchmarkValidateInvalid(b *testing.B) {
	data := []byte(`{"resourceType":"Observation","zeta":1,"status":"two  spaces","code":{"coding":[{"system":"a b"}]},"alpha":true}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Validate(data); err != nil {
			b.Fatal(err)
		}
	}
}
