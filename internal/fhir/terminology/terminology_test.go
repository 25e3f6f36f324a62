package terminology

import (
	"context"
	"errors"
	"strings"
	"testing"
)

const colors = `{"resourceType":"CodeSystem","url":"http://example.org/cs/colors","content":"complete",
	"concept":[{"code":"warm","display":"Warm colour","concept":[{"code":"red","display":"Red"},{"code":"orange","display":"Orange"}]},
	{"code":"cool","display":"Cool colour","concept":[{"code":"blue","display":"Blue","concept":[{"code":"navy","display":"Navy blue"}]}]}]}`

// mapSource is a Source over fixed resources.
type mapSource struct {
	cs map[string]*CodeSystem
	vs map[string]*ValueSet
}

func (m mapSource) CodeSystem(_ context.Context, u string) (*CodeSystem, error) {
	if c, ok := m.cs[u]; ok {
		return c, nil
	}
	return nil, ErrNotFound
}

func (m mapSource) ValueSet(_ context.Context, u string) (*ValueSet, error) {
	if v, ok := m.vs[u]; ok {
		return v, nil
	}
	return nil, ErrNotFound
}

func resolver(t testing.TB, valueSets ...string) *Resolver {
	t.Helper()
	cs, err := ParseCodeSystem([]byte(colors))
	if err != nil {
		t.Fatal(err)
	}
	src := mapSource{cs: map[string]*CodeSystem{cs.URL: cs}, vs: map[string]*ValueSet{}}
	for _, text := range valueSets {
		vs, err := ParseValueSet([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		src.vs[vs.URL] = vs
	}
	return NewResolver(R4(), src)
}

func TestExpand(t *testing.T) {
	inc := func(filters string) string {
		return `{"resourceType":"ValueSet","url":"http://x/vs","compose":{"include":[{"system":"http://example.org/cs/colors"` + filters + `}]}}`
	}
	for _, tc := range []struct{ name, vs, want, err string }{
		{"whole system", inc(""), "warm,red,orange,cool,blue,navy", ""},
		{"is-a", inc(`,"filter":[{"property":"concept","op":"is-a","value":"cool"}]`), "cool,blue,navy", ""},
		{"descendent-of", inc(`,"filter":[{"property":"concept","op":"descendent-of","value":"cool"}]`), "blue,navy", ""},
		{"is-not-a", inc(`,"filter":[{"property":"concept","op":"is-not-a","value":"cool"}]`), "warm,red,orange", ""},
		{"in", inc(`,"filter":[{"property":"code","op":"in","value":"red, navy"}]`), "red,navy", ""},
		{"regex", inc(`,"filter":[{"property":"code","op":"regex","value":"n.*"}]`), "navy", ""},
		{"two filters", inc(`,"filter":[{"property":"concept","op":"is-a","value":"cool"},{"property":"concept","op":"is-not-a","value":"blue"}]`), "cool", ""},
		{"unknown root", inc(`,"filter":[{"property":"concept","op":"is-a","value":"green"}]`), "", ""},
		{"other property", inc(`,"filter":[{"property":"status","op":"=","value":"x"}]`), "", "cannot be decided"},
		{"exclude", `{"url":"http://x/vs","compose":{"include":[{"system":"http://example.org/cs/colors"}],"exclude":[{"system":"http://example.org/cs/colors","filter":[{"property":"concept","op":"is-a","value":"warm"}]}]}}`, "cool,blue,navy", ""},
		{"core value set", `{"url":"http://x/vs","compose":{"include":[{"valueSet":["http://hl7.org/fhir/ValueSet/administrative-gender"]}]}}`, "male,female,other,unknown", ""},
		{"intersection", `{"url":"http://x/vs","compose":{"include":[{"system":"http://hl7.org/fhir/administrative-gender","concept":[{"code":"male"},{"code":"x"}],"valueSet":["http://hl7.org/fhir/ValueSet/administrative-gender"]}]}}`, "male", ""},
		{"external", `{"url":"http://x/vs","compose":{"include":[{"system":"http://snomed.info/sct"}]}}`, "", "cannot be decided"},
		{"listed external", `{"url":"http://x/vs","compose":{"include":[{"system":"http://snomed.info/sct","concept":[{"code":"1"}]}]}}`, "1", ""},
		{"expansion only", `{"url":"http://x/vs","expansion":{"contains":[{"system":"s","code":"a","contains":[{"system":"s","code":"b"}]}]}}`, "a,b", ""},
		{"self include", `{"url":"http://x/vs","compose":{"include":[{"valueSet":["http://x/vs"]}]}}`, "", "deep"},
		{"no system", `{"url":"http://x/vs","compose":{"include":[{"concept":[{"code":"a"}]}]}}`, "", "without a system"},
	} {
		r := resolver(t, tc.vs)
		vs, _ := r.ValueSet(context.Background(), "http://x/vs")
		codes, err := r.Expand(context.Background(), vs)
		var got []string
		for _, c := range codes {
			got = append(got, c.Code)
		}
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != tc.want {
			t.Errorf("%s: %v %v, want %s", tc.name, got, err, tc.want)
		}
	}
}

func TestPage(t *testing.T) {
	codes := []Coding{{Code: "a1", Display: "Blood pressure"}, {Code: "b2", Display: "Heart rate"}, {Code: "c3", Display: "Body-weight"}, {Code: "d4", Display: "Pressure of blood"}}
	for _, tc := range []struct {
		filter        string
		offset, count int
		want          string
		total         int
	}{
		{"", 0, -1, "a1,b2,c3,d4", 4},
		{"", 1, 2, "b2,c3", 4},
		{"", 9, 2, "", 4},
		{"blood", 0, -1, "a1,d4", 2},
		{"BLOOD press", 0, -1, "a1,d4", 2},
		{"weight", 0, -1, "c3", 1},
		{"eight", 0, -1, "", 0}, // not at a word's start
		{"b2", 0, -1, "b2", 1},
		{"b", 0, 1, "a1", 4},
	} {
		total, page := Page(codes, tc.filter, tc.offset, tc.count)
		var got []string
		for _, c := range page {
			got = append(got, c.Code)
		}
		if strings.Join(got, ",") != tc.want || total != tc.total {
			t.Errorf("%q %d %d: %v (%d), want %s (%d)", tc.filter, tc.offset, tc.count, got, total, tc.want, tc.total)
		}
	}
}

func TestSubsumesAndLookup(t *testing.T) {
	r := resolver(t)
	ctx := context.Background()
	for _, tc := range [][3]string{{"cool", "navy", "subsumes"}, {"navy", "cool", "subsumed-by"}, {"red", "red", "equivalent"}, {"red", "blue", "not-subsumed"}} {
		if got, err := r.Subsumes(ctx, "http://example.org/cs/colors", tc[0], tc[1]); got != tc[2] || err != nil {
			t.Errorf("%v: %s %v", tc, got, err)
		}
	}
	if _, err := r.Subsumes(ctx, "http://example.org/cs/colors", "red", "green"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown code: %v", err)
	}
	lr, err := r.Lookup(ctx, "http://example.org/cs/colors", "blue")
	if err != nil || lr.Display != "Blue" || strings.Join(lr.Parents, ",") != "cool" || strings.Join(lr.Children, ",") != "navy" {
		t.Errorf("lookup: %+v %v", lr, err)
	}
}

func TestCheckBinding(t *testing.T) {
	core := R4()
	coding := func(s, c string) map[string]any { return map[string]any{"system": s, "code": c} }
	cc := func(cs ...map[string]any) map[string]any {
		list := []any{}
		for _, c := range cs {
			list = append(list, c)
		}
		return map[string]any{"coding": list}
	}
	for _, tc := range []struct {
		path, typ string
		v         any
		sev       string // "" for no finding
	}{
		{"Patient.gender", "code", "male", ""},
		{"Patient.gender", "code", "Male", "error"}, // codes are case-sensitive
		{"Patient.gender", "code", "bogus", "error"},
		{"Observation.status", "code", "final", ""},
		{"Patient.maritalStatus", "CodeableConcept", cc(coding("http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "M")), ""},
		{"Patient.maritalStatus", "CodeableConcept", cc(coding("http://example.org", "M")), "warning"}, // extensible
		{"Patient.maritalStatus", "CodeableConcept", map[string]any{"text": "married"}, ""},
		{"Observation.category", "CodeableConcept", cc(coding("http://example.org", "x"), coding("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs")), ""},
		{"Observation.code", "CodeableConcept", cc(coding("http://example.org", "x")), ""}, // example binding: not judged
		{"Attachment.contentType", "code", "not/a-type", ""},                               // BCP-13: not held here
		{"Patient.nosuch", "code", "x", ""},
	} {
		f, bad := core.CheckBinding(tc.path, tc.typ, tc.v)
		if (tc.sev == "") == bad || (bad && f.Severity != tc.sev) {
			t.Errorf("%s %v: %v %+v, want %q", tc.path, tc.v, bad, f, tc.sev)
		}
	}
}

func TestSearchCodes(t *testing.T) {
	cs, err := ParseCodeSystem([]byte(`{"url":"http://www.ama-assn.org/go/cpt","concept":[
		{"code":"99213","display":"Office or other outpatient visit, established patient, low complexity"},
		{"code":"99214","display":"Office or other outpatient visit, established patient, moderate complexity"},
		{"code":"9921","display":"Group of visits"},
		{"code":"71045","display":"Radiologic examination, chest; single view"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q    CodeQuery
		want string
	}{
		{CodeQuery{Text: "9921"}, "9921,99213,99214"},
		{CodeQuery{Text: "9921", Strict: true}, "9921"},
		{CodeQuery{Text: "chest view"}, "71045"},
		{CodeQuery{Text: "CHEST", SearchType: "code"}, ""},
		{CodeQuery{Text: "99213", SearchType: "description"}, ""},
		{CodeQuery{Text: "outpatient moderate"}, "99214"},
		{CodeQuery{Text: "group of visits", Strict: true}, "9921"},
		{CodeQuery{Text: "  "}, ""},
	} {
		var got []string
		for _, c := range SearchCodes(cs, tc.q) {
			got = append(got, c.Code)
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("%+v: %v, want %s", tc.q, got, tc.want)
		}
	}
}
