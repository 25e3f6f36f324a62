package fhirpath

import (
	"slices"
	"testing"
)

func TestRoots(t *testing.T) {
	for _, tt := range []struct {
		expr  string
		roots []string // nil: not a path from the resource
	}{
		{"Observation.subject", []string{"subject"}},
		{"Observation.subject.where(resolve() is Patient)", []string{"subject"}},
		{"(Observation.value as Quantity) | (Observation.value as SampledData)", []string{"value", "value"}},
		{"Observation.code | Observation.component.code", []string{"code", "component"}},
		{"Patient.name.given", []string{"name"}},
		{"Patient.extension('http://x').value", []string{"extension"}},
		{"Patient.deceased.exists() and Patient.deceased != false", nil},
		{"Patient.name.exists()", nil},
		{"Patient", nil},
		{"%resource.id", nil},
		{"Observation.code.coding.first()", []string{"code"}},
	} {
		e := MustCompile(tt.expr)
		got, ok := e.Roots()
		if tt.roots == nil {
			if ok {
				t.Errorf("%s: roots %v, want none", tt.expr, got)
			}
			continue
		}
		if !ok || !slices.Equal(got, tt.roots) {
			t.Errorf("%s: roots %v (%v), want %v", tt.expr, got, ok, tt.roots)
		}
	}
	m := Members(map[string]any{"valueQuantity": map[string]any{}, "status": "final", "valueSet": "x"})
	if !Present(m, []string{"value"}) || !Present(m, []string{"code", "status"}) || Present(m, []string{"code"}) || Present(m, []string{"val"}) || !Present(m, []string{"valueSet"}) {
		t.Error("Present")
	}
}
