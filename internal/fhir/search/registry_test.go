package search

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestRegistryCompilesEveryExpression(t *testing.T) {
	r := loadRegistry()
	for name, err := range r.unsupported {
		t.Errorf("%s: %v", name, err)
	}
	if len(r.typeList) != 145 {
		t.Errorf("got %d resource types, want 145", len(r.typeList))
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		typ, name string
		want      Param // fields compared: Name, Type, Expression, Base, Targets (when set), Components
	}{
		{"Patient", "birthdate", Param{Name: "birthdate", Type: "date", Expression: "Patient.birthDate", Base: "Patient"}},
		// Multi-base definitions keep only the part for their type.
		{"Observation", "code", Param{Name: "code", Type: "token", Expression: "Observation.code", Base: "Observation"}},
		{"MedicationRequest", "code", Param{Name: "code", Type: "token", Expression: "(MedicationRequest.medication as CodeableConcept)", Base: "MedicationRequest"}},
		{"Observation", "patient", Param{Name: "patient", Type: "reference", Expression: "Observation.subject.where(resolve() is Patient)", Base: "Observation", Targets: []string{"Group", "Patient"}}}, // the shared clinical-patient definition lists both,
		{"Patient", "_id", Param{Name: "_id", Type: "token", Expression: "Resource.id", Base: "Resource"}},
		{"Observation", "_lastUpdated", Param{Name: "_lastUpdated", Type: "date", Expression: "Resource.meta.lastUpdated", Base: "Resource"}},
		// Relative expressions of single-base parameters stay as written.
		{"InsurancePlan", "name", Param{Name: "name", Type: "string", Expression: "name | alias", Base: "InsurancePlan"}},
		{"Observation", "code-value-quantity", Param{Name: "code-value-quantity", Type: "composite", Expression: "Observation", Base: "Observation",
			Components: []Component{{Code: "code", Type: "token", Expression: "code"}, {Code: "value-quantity", Type: "quantity", Expression: "value.as(Quantity)"}}}},
	}
	for _, tt := range tests {
		p, ok := Lookup(tt.typ, tt.name)
		if !ok {
			t.Errorf("Lookup(%s, %s) not found", tt.typ, tt.name)
			continue
		}
		got := Param{Name: p.Name, Type: p.Type, Expression: p.Expression, Base: p.Base}
		if tt.want.Targets != nil {
			got.Targets = p.Targets
		}
		for _, c := range p.Components {
			got.Components = append(got.Components, Component{Code: c.Code, Type: c.Type, Expression: c.Expression})
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Lookup(%s, %s) = %+v\nwant %+v", tt.typ, tt.name, got, tt.want)
		}
	}
	for _, miss := range [][2]string{{"Patient", "code"}, {"Nope", "_id"}, {"Patient", "_text"}, {"Patient", "_content"}} {
		if _, ok := Lookup(miss[0], miss[1]); ok {
			t.Errorf("Lookup(%s, %s) found", miss[0], miss[1])
		}
	}
}

func TestParams(t *testing.T) {
	ps := Params("Patient")
	if !slices.IsSortedFunc(ps, func(a, b *Param) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("Params not sorted")
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	for _, want := range []string{"_id", "_lastUpdated", "_profile", "_security", "_source", "_tag", "birthdate", "name", "general-practitioner"} {
		if !slices.Contains(names, want) {
			t.Errorf("Params(Patient) lacks %s", want)
		}
	}
	if len(ps) != 29 {
		t.Errorf("Patient has %d parameters, want 29 (23 own + 6 shared)", len(ps))
	}
	if Params("Nope") != nil {
		t.Error("Params of an unknown type")
	}
	// A reference to any resource lists every type.
	p, _ := Lookup("Provenance", "target")
	if len(p.Targets) != 145 {
		t.Errorf("Provenance.target has %d targets", len(p.Targets))
	}
	if p, _ := Lookup("Observation", "date"); !slices.Contains(p.Comparators, "ap") || !p.AllowsModifier("missing") || p.AllowsModifier("exact") {
		t.Errorf("Observation.date comparators %v modifiers %v", p.Comparators, p.Modifiers)
	}
	if p, _ := Lookup("Observation", "subject"); !p.AllowsModifier("Patient") || p.AllowsModifier("Medication") || !p.AllowsModifier("identifier") {
		t.Error("reference modifiers")
	}
}
