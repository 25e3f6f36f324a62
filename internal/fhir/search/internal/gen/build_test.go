package main

import (
	"reflect"
	"testing"
)

func TestSplitUnion(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"Patient.name", []string{"Patient.name"}},
		{"A.b | (C.d as Quantity) | E.f.where(x = 'a|b')", []string{"A.b", "(C.d as Quantity)", "E.f.where(x = 'a|b')"}},
		{"(A.b | A.c).d | B.e", []string{"(A.b | A.c).d", "B.e"}},
	}
	for _, tt := range tests {
		if got := splitUnion(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitUnion(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for in, want := range map[string]string{"(Observation.value as Quantity)": "Observation", "Resource.id": "Resource", "name": "name"} {
		if got := leadingType(in); got != want {
			t.Errorf("leadingType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBuildSplitsMultiBase(t *testing.T) {
	var b bundle
	b.Entry = make([]struct {
		Resource searchParameter `json:"resource"`
	}, 2)
	b.Entry[0].Resource = searchParameter{URL: "u1", Code: "code", Base: []string{"Condition", "Observation"}, Type: "token",
		Expression: "Condition.code | Observation.code | (Observation.value as CodeableConcept)"}
	b.Entry[1].Resource = searchParameter{URL: "u2", Code: "subject", Base: []string{"Observation"}, Type: "reference",
		Expression: "Observation.subject", Target: []string{"Patient", "Group"}}
	reg, err := build(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := reg.Params["Observation"][0].Expr; got != "Observation.code | (Observation.value as CodeableConcept)" {
		t.Errorf("Observation code: %q", got)
	}
	if got := reg.Params["Condition"][0].Expr; got != "Condition.code" {
		t.Errorf("Condition code: %q", got)
	}
	if got := reg.Params["Observation"][1].Targets; !reflect.DeepEqual(got, []string{"Group", "Patient"}) {
		t.Errorf("targets %v", got)
	}
	if !reflect.DeepEqual(reg.Types, []string{"Condition", "Group", "Observation", "Patient"}) {
		t.Errorf("types %v", reg.Types)
	}
}
