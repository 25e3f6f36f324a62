package schema

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/fhir/r4pkg"
)

// TestOfficialExamples validates the official examples committed in testdata: all are valid R4.
func TestOfficialExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "examples", "*.json"))
	if err != nil || len(files) < 60 {
		t.Fatalf("want at least 60 examples in testdata/examples, found %d (%v)", len(files), err)
	}
	types := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rt, issues, err := Validate(data)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		types[rt] = true
		for _, is := range issues {
			if is.Severity == "error" {
				t.Errorf("%s: %s %s: %s", filepath.Base(f), is.Code, is.Expression, is.Message)
			}
		}
	}
	if len(types) < 40 {
		t.Errorf("examples span %d resource types, want at least 40", len(types))
	}
}

// knownInvalidExamples are official 4.0.1 examples that break the base structure. Each names
// the first issue the validator must report, so the list cannot hide a validator change.
var knownInvalidExamples = map[string]struct{ expression, reason string }{
	"ImplementationGuide-fhir.json": {"ImplementationGuide.name", "the core package's own IG omits name and status (both 1..1)"},
	"ig-r4.json":                    {"ImplementationGuide.name", "the core package's own IG omits name and status (both 1..1)"},
	"Questionnaire-qs1.json":        {"Questionnaire.item[0].item[0].linkId", "nested items have no linkId (1..1)"},
	"SearchParameter-questionnaireresponse-extensions-QuestionnaireResponse-item-subject.json": {"SearchParameter.id", "the id has 65 characters; ids allow at most 64"},
	"SearchParameter-codesystem-extensions-CodeSystem-author.json":                             {"SearchParameter.base", "extension search parameters omit base (1..*)"},
	"SearchParameter-codesystem-extensions-CodeSystem-effective.json":                          {"SearchParameter.base", "extension search parameters omit base (1..*)"},
	"SearchParameter-codesystem-extensions-CodeSystem-end.json":                                {"SearchParameter.base", "extension search parameters omit base (1..*)"},
	"SearchParameter-codesystem-extensions-CodeSystem-keyword.json":                            {"SearchParameter.base", "extension search parameters omit base (1..*)"},
	"SearchParameter-codesystem-extensions-CodeSystem-workflow.json":                           {"SearchParameter.base", "extension search parameters omit base (1..*)"},
	"SearchParameter-valueset-extensions-ValueSet-author.json":                                 {"SearchParameter.base", "extension search parameters omit base (1..*)"},
	"SearchParameter-valueset-extensions-ValueSet-effective.json":                              {"SearchParameter.base", "extension search parameters omit base (1..*)"},
	"SearchParameter-valueset-extensions-ValueSet-end.json":                                    {"SearchParameter.base", "extension search parameters omit base (1..*)"},
	"SearchParameter-valueset-extensions-ValueSet-keyword.json":                                {"SearchParameter.base", "extension search parameters omit base (1..*)"},
	"SearchParameter-valueset-extensions-ValueSet-workflow.json":                               {"SearchParameter.base", "extension search parameters omit base (1..*)"},
}

// TestAllOfficialExamples validates every example of the npm package hl7.fhir.r4.examples
// (r4pkg.Dir: installed by scripts/test.sh, not committed: 19 MB).
func TestAllOfficialExamples(t *testing.T) {
	dir := r4pkg.Dir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples in %s (%v)", dir, err)
	}
	pass, total, warned := 0, 0, 0
	for _, f := range files {
		name := filepath.Base(f)
		if name == "package.json" {
			continue
		}
		total++
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, all, err := Validate(data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		// Warnings (codes outside an extensible or preferred binding) do not
		// make an example invalid; they are counted.
		var issues []Issue
		for _, is := range all {
			if is.Severity == "error" {
				issues = append(issues, is)
			} else {
				warned++
			}
		}
		known, isKnown := knownInvalidExamples[name]
		switch {
		case len(issues) == 0 && isKnown:
			t.Errorf("%s: listed as invalid (%s) but validates", name, known.reason)
		case len(issues) == 0:
			pass++
		case !isKnown:
			for _, is := range issues {
				t.Errorf("%s: %s %s: %s", name, is.Code, is.Expression, is.Message)
			}
		case issues[0].Expression != known.expression:
			t.Errorf("%s: first issue at %s, want %s (%s)", name, issues[0].Expression, known.expression, known.reason)
		}
	}
	t.Logf("%d of %d official examples validate (%d binding warnings); %d accepted as invalid: %s",
		pass, total, warned, len(knownInvalidExamples), strings.Join(slices.Sorted(maps.Keys(knownInvalidExamples)), ", "))
}
