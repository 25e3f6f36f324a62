package bulk

import (
	"net/url"
	"slices"
	"testing"

	"github.com/wardhealth/ward/internal/fhir/schema"
)

func TestSplitFilters(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"Observation?code=a", []string{"Observation?code=a"}},
		{"Observation?code=a,b", []string{"Observation?code=a,b"}},
		{"Observation?code=a,Condition?subject=Patient/1", []string{"Observation?code=a", "Condition?subject=Patient/1"}},
		{"Observation?code=a,b,Observation?status=final", []string{"Observation?code=a,b", "Observation?status=final"}},
	} {
		if got := splitFilters(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("splitFilters(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzParseParams: any query either is refused or gives parameters that
// keep the bounds: known, distinct types, at most maxTypes of them, and
// filters only of types _type names.
func FuzzParseParams(f *testing.F) {
	for _, s := range []string{"_type=Patient,Observation", "_since=2026-01-01T00:00:00Z", "_typeFilter=Observation%3Fcode%3Da,b",
		"_type=Patient&_typeFilter=Observation%3Fcode%3Da", "_outputFormat=ndjson", "patient=1", "_type=,,"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, raw string, lenient bool) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, err := ParseParams(LevelSystem, "", q, lenient)
		if err != nil {
			return
		}
		if len(p.Types) > maxTypes {
			t.Fatalf("%d types", len(p.Types))
		}
		for i, typ := range p.Types {
			if !schema.IsResourceType(typ) || slices.Contains(p.Types[:i], typ) {
				t.Fatalf("type %q (%v)", typ, p.Types)
			}
		}
		n := 0
		for typ, fs := range p.Filters {
			n += len(fs)
			if !schema.IsResourceType(typ) || p.Types != nil && !slices.Contains(p.Types, typ) {
				t.Fatalf("filter of %q with types %v", typ, p.Types)
			}
		}
		if n > maxFilters {
			t.Fatalf("%d filters", n)
		}
	})
}

// FuzzParseParameters: any body either is refused or gives parameters
// that are all primitives ParseParams then checks, and patients that are
// distinct FHIR ids, at most maxPatients of them.
func FuzzParseParameters(f *testing.F) {
	for _, s := range []string{`{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"Patient"}]}`,
		`{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/1"}}]}`,
		`{"resourceType":"Parameters","parameter":[{"name":"_since","valueInstant":"2026-01-01T00:00:00Z"},{"name":"x","valueInteger":1}]}`,
		`{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/../1"}}]}`, `{}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		q, patients, err := ParseParameters(body)
		if err != nil {
			return
		}
		if len(patients) > maxPatients {
			t.Fatalf("%d patients", len(patients))
		}
		for i, id := range patients {
			if !idPattern.MatchString(id) || slices.Contains(patients[:i], id) {
				t.Fatalf("patient %q of %q", id, patients)
			}
		}
		if _, ok := q["patient"]; ok {
			t.Fatalf("patient left in the query: %v", q)
		}
		_, _ = ParseParams(LevelPatient, "", q, false)
	})
}
