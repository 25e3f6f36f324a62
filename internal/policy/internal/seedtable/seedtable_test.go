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

func TestParseExtensions(t *testing.T) {
	head := "# a comment\n\n" + ExtHeader + "\n---|---|---|---|---|---|---|---|\n"
	rows, err := ParseExtensions(head +
		"Lab | SubmitOrder | Order | Grants submitting | * | | sdk 4.2.6 lab.orderSubmit | a note |\n" +
		"eRx | Check | Interaction | \"Grants a | b\" | | | sdk 4.2.6 erx.a, erx.b | |\n" +
		"eRx | GetMedicationHistory | Patient | Grants history | | | docs https://docs.example/erx | |\n" +
		"RCM | GetPayer | Payer | Grants payer | | | ottehr config/roles.json | |\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []ExtRow{
		{Row{"Lab", "SubmitOrder", "Order", "Grants submitting", "*", ""}, "sdk 4.2.6 lab.orderSubmit", "a note"},
		{Row{"eRx", "Check", "Interaction", "Grants a | b", "", ""}, "sdk 4.2.6 erx.a, erx.b", ""},
		{Row{"eRx", "GetMedicationHistory", "Patient", "Grants history", "", ""}, "docs https://docs.example/erx", ""},
		{Row{"RCM", "GetPayer", "Payer", "Grants payer", "", ""}, "ottehr config/roles.json", ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
	if v, m, ok := SDKMethods(rows[1].Source); !ok || v != "4.2.6" || len(m) != 2 || m[1] != "erx.b" {
		t.Errorf("SDKMethods = %q, %v, %v", v, m, ok)
	}
	if _, _, ok := SDKMethods(rows[2].Source); ok {
		t.Error("SDKMethods accepted a docs source")
	}
	for name, row := range map[string]string{
		"scope":      "A | B | C | d | sometimes | | sdk 1.0.0 a.b | |",
		"dependency": "A | B | C | d | | Read | sdk 1.0.0 a.b | |",
		"no source":  "A | B | C | d | | | | |",
		"bad source": "A | B | C | d | | | the internet | |",
		"cells":      "A | B | C | d | | | sdk 1.0.0 a.b |",
		"type name":  "A | B | {FhirResource} | d | | | sdk 1.0.0 a.b | |",
	} {
		if _, err := ParseExtensions(head + row + "\n"); err == nil {
			t.Errorf("%s: %q accepted", name, row)
		}
	}
	if _, err := ParseExtensions("text before the header\n" + ExtHeader + "\n"); err == nil {
		t.Error("prose before the header accepted")
	}
}
