package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestFamiliesAreUnambiguous guards the fairness of search-name: a family
// that is a substring of another name would match more patients on
// Medplum (substring) than on Ward (prefix).
func TestFamiliesAreUnambiguous(t *testing.T) {
	names := append(append([]string{}, families...), givens...)
	seen := map[string]bool{}
	for _, f := range families {
		if seen[f] {
			t.Errorf("family %q listed twice", f)
		}
		seen[f] = true
		for _, n := range names {
			if n != f && strings.Contains(strings.ToLower(n), strings.ToLower(f)) {
				t.Errorf("family %q is inside %q", f, n)
			}
		}
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, err := generate(1, 45)
	if err != nil {
		t.Fatal(err)
	}
	b, err := generate(1, 45)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.bundles) != 3 || len(a.family) != 45 {
		t.Fatalf("45 patients gave %d bundles and %d families", len(a.bundles), len(a.family))
	}
	for i := range a.bundles {
		if !bytes.Equal(a.bundles[i].body, b.bundles[i].body) {
			t.Fatalf("bundle %d differs between two runs with one seed", i)
		}
	}
	var bundle struct {
		Entry []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(a.bundles[0].body, &bundle); err != nil {
		t.Fatal(err)
	}
	for pos, i := range a.bundles[0].patientAt {
		if bundle.Entry[pos].Resource.ResourceType != "Patient" || i >= 20 {
			t.Errorf("entry %d maps to patient %d but holds a %s", pos, i, bundle.Entry[pos].Resource.ResourceType)
		}
	}
	per := float64(a.counts["Observation"]) / 45
	if per < 8 || per > 12 {
		t.Errorf("%.1f observations per patient, want about 10", per)
	}
}
