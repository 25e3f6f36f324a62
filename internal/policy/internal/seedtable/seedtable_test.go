package seedtable

import (
	"strings"
	"testing"
)

const header = "Service | Action | Resource Type | Description | Minimum Scope | Dependency |\n---|---|---|---|---|---|\n"

func TestParseCells(t *testing.T) {
	rows, err := Parse(header +
		"FHIR | History | {FhirResource} | Grants history | FHIR:Read | |\n" +
		"Z3 | ListObjects | Path | Grants listing | subfolder | |\n" +
		"Zambda | UpdateFunction | Function | \"Grants a | b, c\" | ||\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []Row{
		{"FHIR", "History", "{FhirResource}", "Grants history", "", "FHIR:Read"},
		{"Z3", "ListObjects", "Path", "Grants listing", "subfolder", ""},
		{"Zambda", "UpdateFunction", "Function", "Grants a | b, c", "", ""},
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
	if _, err := Parse(header + "App | X | User | d | sometimes | |\n"); err == nil || !strings.Contains(err.Error(), "neither a minimum scope") {
		t.Errorf("unknown scope cell: err = %v", err)
	}
}

func TestParseRunTogether(t *testing.T) {
	text := "ServiceActionResource TypeDescriptionMinimum ScopeDependency\n" +
		"FHIRHistory{FhirResource}Grants history of a resourceFHIR:Read\n" +
		"AppListAllUsersUserGrants listing*\n" +
		"ZambdaUpdateFunctionFunction\"Grants update\"\n"
	rows, err := ParseRunTogether(text, []string{"App", "FHIR", "Zambda", "Z3"}, []string{"{FhirResource}", "User", "Function"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Row{
		{"FHIR", "History", "{FhirResource}", "Grants history of a resource", "", "FHIR:Read"},
		{"App", "ListAllUsers", "User", "Grants listing", "*", ""},
		{"Zambda", "UpdateFunction", "Function", "Grants update", "", ""},
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
}
