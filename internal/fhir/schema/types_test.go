package schema

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestResourceTypes(t *testing.T) {
	rts := ResourceTypes()
	if len(rts) != 146 {
		t.Fatalf("%d resource types, R4 has 146", len(rts))
	}
	if !slices.IsSorted(rts) {
		t.Error("ResourceTypes is not sorted")
	}
	for _, rt := range rts {
		if !IsResourceType(rt) {
			t.Errorf("IsResourceType(%q) = false", rt)
		}
	}
	rts[0] = "Mutated"
	if ResourceTypes()[0] == "Mutated" {
		t.Error("ResourceTypes shares its slice with the model")
	}
	for name, want := range map[string]bool{
		"Patient": true, "Observation": true, "Bundle": true, "Parameters": true, "Binary": true,
		"Resource": false, "DomainResource": false, "MetadataResource": false,
		"HumanName": false, "string": false, "patient": false, "": false,
	} {
		if got := IsResourceType(name); got != want {
			t.Errorf("IsResourceType(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestElementTypes(t *testing.T) {
	cases := []struct {
		typ, path string
		want      []string // nil: not found
	}{
		{"Observation", "value", []string{"Quantity", "CodeableConcept", "string", "boolean", "integer", "Range", "Ratio", "SampledData", "time", "dateTime", "Period"}},
		{"Observation", "value[x]", []string{"Quantity", "CodeableConcept", "string", "boolean", "integer", "Range", "Ratio", "SampledData", "time", "dateTime", "Period"}},
		{"Observation", "valueQuantity", []string{"Quantity"}},
		{"Observation", "valueQuantity.value", []string{"decimal"}},
		{"Observation", "component.code", []string{"CodeableConcept"}},
		{"Patient", "name", []string{"HumanName"}},
		{"Patient", "name.family", []string{"string"}},
		{"Patient", "id", []string{"id"}},
		{"Patient", "contact", []string{"BackboneElement"}},
		{"Patient", "contact.name.given", []string{"string"}},
		{"Patient", "contained", []string{"Resource"}},
		{"Patient", "managingOrganization.reference", []string{"string"}},
		{"Questionnaire", "item.item", []string{"BackboneElement"}},
		{"Questionnaire", "item.item.linkId", []string{"string"}},
		{"Bundle", "entry.resource", []string{"Resource"}},
		{"HumanName", "given", []string{"string"}},
		{"Extension", "url", []string{"uri"}},
		{"Patient", "foo", nil},
		{"Patient", "name.foo", nil},
		{"Patient", "gender.value", nil},
		{"Observation", "value.value", nil}, // a choice of several types: say which with valueQuantity
		{"Patient", "_birthDate", nil},
		{"Patient", "", nil},
		{"Nope", "id", nil},
	}
	for _, tc := range cases {
		got, ok := ElementTypes(tc.typ, tc.path)
		if ok != (tc.want != nil) || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ElementTypes(%q, %q) = %v, %v; want %v", tc.typ, tc.path, got, ok, tc.want)
		}
	}
	got, _ := ElementTypes("Patient", "name")
	got[0] = "Mutated"
	if again, _ := ElementTypes("Patient", "name"); again[0] != "HumanName" {
		t.Error("ElementTypes shares its slice with the model")
	}
}

// TestModel checks the embedded data against facts of the R4 specification, so a broken
// regeneration shows up here rather than as odd validation results.
func TestModel(t *testing.T) {
	m, err := buildModel(r4Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.prims) != 20 {
		t.Errorf("%d primitive types, R4 has 20", len(m.prims))
	}
	for _, rt := range m.resources {
		td := m.types[rt]
		if td == nil || !td.resource {
			t.Errorf("resource %s has no definition", rt)
			continue
		}
		if _, ok := td.props["meta"]; !ok {
			t.Errorf("%s lacks meta", rt)
		}
	}
	for _, name := range []string{"Resource", "DomainResource"} {
		if td := m.types[name]; td == nil || !td.resource || m.concrete[name] {
			t.Errorf("%s should be an abstract resource", name)
		}
	}
	for _, tc := range []struct {
		typ, prop, elemType string
		min, max            int
		ext                 bool
	}{
		{"Patient", "name", "HumanName", 0, -1, false},
		{"Patient", "birthDate", "date", 0, 1, false},
		{"Patient", "_birthDate", "date", 0, 1, true},
		{"Observation", "status", "code", 1, 1, false},
		{"Observation", "valueQuantity", "Quantity", 0, 1, false},
		{"Observation", "_valueString", "string", 0, 1, true},
		{"Extension", "valueHumanName", "HumanName", 0, 1, false},
		{"Bundle", "type", "code", 1, 1, false},
	} {
		p, ok := m.types[tc.typ].props[tc.prop]
		if !ok {
			t.Errorf("%s.%s missing", tc.typ, tc.prop)
			continue
		}
		if p.typ != tc.elemType || p.el.min != tc.min || p.el.max != tc.max || p.ext != tc.ext {
			t.Errorf("%s.%s = {%s %d..%d ext=%v}, want {%s %d..%d ext=%v}", tc.typ, tc.prop,
				p.typ, p.el.min, p.el.max, p.ext, tc.elemType, tc.min, tc.max, tc.ext)
		}
	}
	// Element.id, Extension.url and Resource.id are plain strings without a "_" form.
	for typ, prop := range map[string]string{"Patient": "_id", "Extension": "_url", "HumanName": "_id"} {
		if _, ok := m.types[typ].props[prop]; ok {
			t.Errorf("%s.%s should not exist", typ, prop)
		}
	}
	if got := m.types["Questionnaire"].byName["item"].inline.byName["item"].inline; got != m.types["Questionnaire"].byName["item"].inline {
		t.Error("Questionnaire.item.item does not resolve to #Questionnaire.item")
	}
}

func TestFormats(t *testing.T) {
	m := theModel()
	cases := []struct {
		typ   string
		value string
		ok    bool
	}{
		{"date", "2024", true}, {"date", "2024-02", true}, {"date", "2024-02-29", true},
		{"date", "2023-02-29", false}, {"date", "2024-04-31", false}, {"date", "24-01-01", false}, {"date", "2024-1-01", false},
		{"dateTime", "2024-01-01T00:00:00Z", true}, {"dateTime", "2024-01-01T00:00:00.5+05:30", true},
		{"dateTime", "2024-01-01T25:00:00Z", false}, {"dateTime", "2024-01-01T10:00Z", false},
		{"instant", "2024-01-01T00:00:00Z", true}, {"instant", "2024-01-01", false},
		{"time", "23:59:59", true}, {"time", "24:00:00", false}, {"time", "10:00", false},
		{"id", "a-B.9", true}, {"id", "a_b", false}, {"id", "a/b", false},
		{"code", "a b", true}, {"code", "a  b", false}, {"code", " a", false}, {"code", "a\n", false},
		{"uri", "urn:x", true}, {"uri", "http://x y", false},
		{"url", "http://x", true}, {"canonical", "http://x|1.0", true}, {"canonical", "http://x |1", false},
		{"oid", "urn:oid:1.2.3", true}, {"oid", "urn:oid:3.1", false}, {"oid", "1.2.3", false},
		{"uuid", "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0", true}, {"uuid", "urn:uuid:0C3151BD-1cbf-4d64-b04d-cd9187a4c6e0", false},
		{"base64Binary", "aGVsbG8=", true}, {"base64Binary", "aGVs bG8=", true}, {"base64Binary", "aGVsbG8", false}, {"base64Binary", "aGV$bG8=", false},
		{"integer", "-5", true}, {"integer", "2147483647", true}, {"integer", "2147483648", false}, {"integer", "01", false}, {"integer", "1e3", false},
		{"unsignedInt", "0", true}, {"unsignedInt", "-1", false},
		{"positiveInt", "1", true}, {"positiveInt", "0", false},
		{"string", "anything at all\n", true}, {"string", "form\ffeed", false},
		{"markdown", "# x", true},
	}
	for _, tc := range cases {
		p := m.prims[tc.typ]
		if p == nil {
			t.Fatalf("no primitive %s", tc.typ)
		}
		if got := p.valid(tc.value); got != tc.ok {
			t.Errorf("%s %q: valid = %v, want %v", tc.typ, tc.value, got, tc.ok)
		}
	}
}

// TestHandWrittenFormats compares each hand-written format check with the spec regex it
// replaces, on generated strings over the characters that matter to those regexes.
func TestHandWrittenFormats(t *testing.T) {
	rm, err := decodeRaw(r4Data)
	if err != nil {
		t.Fatal(err)
	}
	m := theModel()
	alphabet := []rune("aZ09+/=-.| \t\n\f\r\vé_")
	rng := rand.New(rand.NewPCG(1, 2))
	var samples []string
	for range 20000 {
		r := make([]rune, 1+rng.IntN(10))
		for i := range r {
			r[i] = alphabet[rng.IntN(len(alphabet))]
		}
		samples = append(samples, string(r))
	}
	samples = append(samples, strings.Repeat("a", 64), strings.Repeat("a", 65), "aGVsbG8=", " aGVsbG8= ", "aGVs bG8=")
	for _, typ := range []string{"string", "markdown", "uri", "url", "canonical", "code", "id", "base64Binary"} {
		re := regexp.MustCompile(`^(?:` + rm.Primitives[typ].Regex + `)$`)
		for _, s := range samples {
			if got, want := m.prims[typ].valid(s), re.MatchString(s); got != want {
				t.Errorf("%s %q: hand-written check says %v, spec regex %v", typ, s, got, want)
			}
		}
	}
}
