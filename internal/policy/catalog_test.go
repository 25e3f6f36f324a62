package policy

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/wardhealth/ward/internal/policy/internal/seedtable"
)

func readSeed(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("catalog", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The generated catalog must be the seed table, row for row.
func TestCatalogMatchesSeed(t *testing.T) {
	rows, err := seedtable.Parse(readSeed(t, "seed_002.txt"))
	if err != nil {
		t.Fatal(err)
	}
	cat := Catalog()
	if len(rows) != len(cat) {
		t.Fatalf("seed has %d rows, catalog %d: run go generate", len(rows), len(cat))
	}
	for i, r := range rows {
		want := Action{Service: r.Service, Name: r.Action, ResourceType: r.ResourceType, Description: r.Description,
			MinScope: Scope(r.MinScope), DependsOn: r.DependsOn, Source: SeedSource}
		if cat[i] != want {
			t.Errorf("row %d: catalog %+v, seed %+v", i, cat[i], want)
		}
	}
	// The quirk: FHIR:History's dependency sits in the Minimum Scope column.
	if a, _ := LookupAction("FHIR:History"); a.DependsOn != "FHIR:Read" || a.MinScope != ScopeAny {
		t.Errorf("FHIR:History = %+v, want DependsOn FHIR:Read and no minimum scope", a)
	}
	if a, _ := LookupAction("Zambda:UpdateFunction"); a.Description[0] == '"' {
		t.Errorf("quoted description kept its quotes: %q", a.Description)
	}
}

// The generated extensions must be catalog/extensions.txt, row for row (run
// go generate after editing it).
func TestCatalogMatchesExtensions(t *testing.T) {
	rows, err := seedtable.ParseExtensions(readSeed(t, "extensions.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ext := Extensions()
	if len(rows) != len(ext) {
		t.Fatalf("extensions.txt has %d rows, catalog %d: run go generate", len(rows), len(ext))
	}
	for i, r := range rows {
		want := Action{Service: r.Service, Name: r.Action, ResourceType: r.ResourceType, Description: r.Description,
			MinScope: Scope(r.MinScope), DependsOn: r.DependsOn, Source: r.Source}
		if ext[i] != want {
			t.Errorf("row %d: catalog %+v, extensions.txt %+v", i, ext[i], want)
		}
	}
}

// The checked-in copy must be the shared seed, byte for byte, when the shared
// folder is beside the repository.
func TestSeedCopiesAreIdentical(t *testing.T) {
	for copyName, pattern := range map[string]string{"seed_002.txt": "002_*.txt", "seed_003.txt": "003_*.txt"} {
		matches, _ := filepath.Glob(filepath.Join("..", "..", "..", "shared", "seeds", pattern))
		if len(matches) == 0 {
			t.Logf("shared seed %s not found; skipping the byte comparison", pattern)
			continue
		}
		orig, err := os.ReadFile(matches[0])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(orig, []byte(readSeed(t, copyName))) {
			t.Errorf("catalog/%s differs from %s", copyName, matches[0])
		}
	}
}

func TestFHIRResourceTypes(t *testing.T) {
	if len(FHIRResourceTypes) != 146 {
		t.Errorf("%d FHIR R4 resource types, want 146", len(FHIRResourceTypes))
	}
	if !sort.StringsAreSorted(FHIRResourceTypes) || len(slices.Compact(slices.Clone(FHIRResourceTypes))) != len(FHIRResourceTypes) {
		t.Error("FHIRResourceTypes must be sorted and unique")
	}
	for _, want := range []string{"Account", "Patient", "Group", "Parameters", "VisionPrescription"} {
		if !slices.Contains(FHIRResourceTypes, want) {
			t.Errorf("missing %s", want)
		}
	}
}

// TestSeedDifferences lists what changed between the old (003, ZapEHR) and
// current (002) action libraries.
func TestSeedDifferences(t *testing.T) {
	cur, err := seedtable.Parse(readSeed(t, "seed_002.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var services, types []string
	for _, r := range cur {
		services = append(services, r.Service)
		types = append(types, r.ResourceType)
	}
	slices.Sort(services)
	services = slices.Compact(services)
	old, err := seedtable.ParseRunTogether(readSeed(t, "seed_003.txt"), services, types)
	if err != nil {
		t.Fatal(err)
	}
	curBy, oldBy := map[string]seedtable.Row{}, map[string]seedtable.Row{}
	for _, r := range cur {
		curBy[r.Name()] = r
	}
	for _, r := range old {
		oldBy[r.Name()] = r
	}
	var onlyOld, onlyCur, changed []string
	for n, o := range oldBy {
		c, ok := curBy[n]
		switch {
		case !ok:
			onlyOld = append(onlyOld, n)
		case c.ResourceType != o.ResourceType || c.MinScope != o.MinScope || c.DependsOn != o.DependsOn:
			changed = append(changed, n)
		}
	}
	for n := range curBy {
		if _, ok := oldBy[n]; !ok {
			onlyCur = append(onlyCur, n)
		}
	}
	slices.Sort(onlyOld)
	slices.Sort(onlyCur)
	slices.Sort(changed)
	t.Logf("003 rows: %d, 002 rows: %d", len(old), len(cur))
	t.Logf("only in 003: %v", onlyOld)
	t.Logf("only in 002: %v", onlyCur)
	t.Logf("type/scope/dependency changed: %v", changed)

	wantOnlyCur := []string{
		"App:RevokeAccessToken", "App:RevokeRefreshToken", "App:RotateApplicationSecret", "FHIR:Export",
		"Messaging:ConversationRemoveParticipant", "Messaging:GetConfiguration",
		"Payment:Delete", "Payment:Issue", "Payment:List", "Payment:SetDefault", "Payment:Setup", "Payment:Status",
		"RCM:CreateClaim", "RCM:ReadClaim", "RCM:SubmitProfessionalClaim", "RCM:UpdateClaim", "RCM:ValidateProfessionalClaim",
		"Telemed:AddAnonymousToMeeting", "Telemed:CreateMeeting", "Telemed:JoinMeeting",
		"eRx:Create", "eRx:Read", "eRx:SearchAllergy", "eRx:SearchMedication", "eRx:SyncPatient",
	}
	if len(old) != 63 || len(onlyOld) != 0 || len(changed) != 0 || !slices.Equal(onlyCur, wantOnlyCur) {
		t.Errorf("differences changed: 003 rows %d (want 63), only in 003 %v (want none), changed %v (want none), only in 002 %v",
			len(old), onlyOld, changed, onlyCur)
	}
	if h := oldBy["FHIR:History"]; h.DependsOn != "FHIR:Read" || h.MinScope != "" {
		t.Errorf("003 FHIR:History parsed as %+v", h)
	}
	if z := oldBy["Z3:ListObjects"]; z.MinScope != "subfolder" {
		t.Errorf("003 Z3:ListObjects parsed as %+v", z)
	}
}

func TestExtensionsAndAliases(t *testing.T) {
	for alias, canon := range Aliases() {
		a, ok := LookupAction(alias)
		if !ok || a.FullName() != canon {
			t.Errorf("LookupAction(%q) = %v, %v; want %s", alias, a.FullName(), ok, canon)
		}
	}
	for _, e := range Extensions() {
		if slices.ContainsFunc(Catalog(), func(a Action) bool { return a.FullName() == e.FullName() }) {
			t.Errorf("extension %s is in the seed: drop it from the extension list", e.FullName())
		}
		if _, ok := LookupAction(e.FullName()); !ok {
			t.Errorf("extension %s not found", e.FullName())
		}
	}
}
