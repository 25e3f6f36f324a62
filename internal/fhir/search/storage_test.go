package search

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wardhealth/ward/internal/fhir/fhirpath"
)

func TestIndexParams(t *testing.T) {
	tests := []struct {
		typ, param string
		rows       []string
		refType    string
	}{
		{"Observation", "code", []string{"code"}, ""},
		{"Observation", "subject", []string{"subject"}, ""},
		{"Observation", "patient", []string{"subject"}, "Patient"},
		{"Observation", "combo-code", []string{"code", "component-code"}, ""},
		{"Observation", "combo-value-quantity", []string{"component-value-quantity", "value-quantity"}, ""},
		{"Encounter", "practitioner", []string{"participant"}, "Practitioner"},
		{"Patient", "phonetic", []string{"name"}, ""},
		{"Patient", "name", []string{"name"}, ""},
		// name is Organization.name | Organization.alias: the alias part is
		// its own rows, the name part is phonetic's.
		{"Organization", "name", []string{"name", "phonetic"}, ""},
		{"Organization", "phonetic", []string{"phonetic"}, ""},
		// composites: the union of two others' elements with the same parts
		{"Observation", "combo-code-value-quantity", []string{"code-value-quantity", "component-code-value-quantity"}, ""},
		{"Observation", "code-value-quantity", []string{"code-value-quantity"}, ""},
		{"ActivityDefinition", "context-type-value", []string{"context-type-value"}, ""},
		{"Patient", "_tag", []string{"_tag"}, ""},
		{"Patient", "no-such-param", []string{"no-such-param"}, ""},
	}
	for _, tt := range tests {
		rows, refType := IndexParams(tt.typ, tt.param)
		if !slices.Equal(rows, tt.rows) || refType != tt.refType {
			t.Errorf("IndexParams(%s, %s) = %v %q, want %v %q", tt.typ, tt.param, rows, refType, tt.rows, tt.refType)
		}
	}
	if got := StoredParams("Observation", "reference"); slices.Contains(got, "patient") || !slices.Contains(got, "subject") {
		t.Errorf("StoredParams(Observation, reference) = %v: want subject, not patient", got)
	}
}

func TestUnionParts(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{"Observation.code", []string{"Observation.code"}},
		{"(Observation.value as Quantity) | (Observation.value as SampledData)", []string{"Observation.value as Quantity", "Observation.value as SampledData"}},
		{"Patient.telecom.where(system='a|b') | Patient.name", []string{"Patient.name", "Patient.telecom.where(system='a|b')"}},
		{"(a) | (b)", []string{"a", "b"}},
		{"((a))", []string{"a"}},
	}
	for _, tt := range tests {
		if got := unionParts(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("unionParts(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

// TestIndexValuesAnswerEveryParameter checks, over the committed samples,
// that what IndexValues stores answers every parameter exactly as Extract
// would: the values found under a parameter's IndexParams rows (to its
// target type) are the parameter's own values. With WARD_FHIR_EXAMPLES
// (see TestExtractAllExamples) it checks every example of the package too.
func TestIndexValuesAnswerEveryParameter(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "examples", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	if dir := os.Getenv("WARD_FHIR_EXAMPLES"); dir != "" {
		files = append(files, packageExamples(t, dir)...)
	}
	checked := 0
	eachResource(t, files, func(f, rt string, res map[string]any) {
		if !IsResourceType(rt) {
			return
		}
		all, err := Extract(rt, res)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := IndexValues(rt, res)
		if err != nil {
			t.Fatal(err)
		}
		// The narrative's _text rows are the index's own, not a parameter's.
		stored = slices.DeleteFunc(stored, func(v Value) bool { return v.Param == TextParam.Name })
		if len(stored) > len(all) {
			t.Errorf("%s: stores %d values, extracts only %d", f, len(stored), len(all))
		}
		for _, p := range Params(rt) {
			if p.Type == "special" || p.Name == "_id" || p.Name == "_lastUpdated" {
				continue
			}
			want := rowsFor(all, []string{p.Name}, "")
			names, refType := IndexParams(rt, p.Name)
			got := rowsFor(stored, names, refType)
			if !sameSet(got, want) {
				t.Errorf("%s %s.%s: index rows %v answer %v, want %v", filepath.Base(f), rt, p.Name, names, got, want)
			}
			checked++
		}
	})
	t.Logf("%d parameter checks", checked)
}

func rowsFor(vals []Value, params []string, refType string) []Value {
	var out []Value
	for _, v := range vals {
		if slices.Contains(params, v.Param) && (refType == "" || v.RefType == refType) {
			out = append(out, v)
		}
	}
	return out
}

func sameSet(a, b []Value) bool {
	in := func(v Value, list []Value) bool {
		return slices.ContainsFunc(list, func(o Value) bool {
			return sameValue(o, v) && slices.EqualFunc(o.Components, v.Components, sameValue)
		})
	}
	for _, v := range a {
		if !in(v, b) {
			return false
		}
	}
	for _, v := range b {
		if !in(v, a) {
			return false
		}
	}
	return true
}

// TestAbsentMeansEmpty checks the short cut IndexValues takes (a parameter
// whose root elements a resource lacks has no values) against evaluating
// every expression, over the committed samples and, with WARD_FHIR_EXAMPLES,
// every example of the package.
func TestAbsentMeansEmpty(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "examples", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	if dir := os.Getenv("WARD_FHIR_EXAMPLES"); dir != "" {
		files = append(files, packageExamples(t, dir)...)
	}
	skipped, withRoots := 0, 0
	eachResource(t, files, func(f, rt string, res map[string]any) {
		if !IsResourceType(rt) {
			return
		}
		for _, p := range Params(rt) {
			if p.expr == nil || p.roots == nil {
				continue
			}
			withRoots++
			if !p.absent(fhirpath.Members(res)) {
				continue
			}
			skipped++
			items, err := p.expr.EvalItems(res)
			if err == nil && len(items) > 0 {
				t.Errorf("%s %s.%s (%s): roots %v absent but it yields %d items", filepath.Base(f), rt, p.Name, p.Expression, p.roots, len(items))
			}
		}
	})
	if skipped == 0 || withRoots == 0 {
		t.Fatalf("nothing checked: %d with roots, %d skipped", withRoots, skipped)
	}
	t.Logf("%d evaluations of %d skipped", skipped, withRoots)
}
