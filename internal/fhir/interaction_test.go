package fhir

import "testing"

func TestParseInteraction(t *testing.T) {
	tests := []struct {
		method, path, query string
		want                interaction
	}{
		{"POST", "", "", interaction{kind: kindBatch}},
		{"POST", "/", "", interaction{kind: kindBatch}},
		{"GET", "", "", interaction{kind: kindSearchSystem}},
		{"GET", "metadata", "", interaction{kind: kindCapabilities}},
		{"GET", "_history", "", interaction{kind: kindHistorySystem}},
		{"GET", "Patient", "name=x", interaction{kind: kindSearch, typ: "Patient", query: "name=x"}},
		{"GET", "/Patient/", "", interaction{kind: kindSearch, typ: "Patient"}},
		{"POST", "Patient/_search", "", interaction{kind: kindSearchPost, typ: "Patient"}},
		{"POST", "Patient/$validate", "", interaction{kind: kindValidate, typ: "Patient"}},
		{"POST", "Patient/1/$validate", "", interaction{kind: kindValidate, typ: "Patient", id: "1"}},
		{"post", "Patient", "", interaction{kind: kindCreate, typ: "Patient"}},
		{"PUT", "Patient", "identifier=a|b", interaction{kind: kindConditionalUpdate, typ: "Patient", query: "identifier=a|b"}},
		{"PUT", "Patient", "", interaction{typ: "Patient"}},
		{"PATCH", "Patient", "identifier=a|b", interaction{kind: kindConditionalPatch, typ: "Patient", query: "identifier=a|b"}},
		{"DELETE", "Patient", "identifier=a|b", interaction{kind: kindConditionalDelete, typ: "Patient", query: "identifier=a|b"}},
		{"DELETE", "Patient", "", interaction{typ: "Patient"}},
		{"GET", "Patient/_history", "", interaction{kind: kindHistoryType, typ: "Patient"}},
		{"GET", "Patient/1", "", interaction{kind: kindRead, typ: "Patient", id: "1"}},
		{"PUT", "Patient/1", "", interaction{kind: kindUpdate, typ: "Patient", id: "1"}},
		{"PATCH", "Patient/1", "", interaction{kind: kindPatch, typ: "Patient", id: "1"}},
		{"DELETE", "Patient/1", "", interaction{kind: kindDelete, typ: "Patient", id: "1"}},
		{"POST", "Patient/1", "", interaction{typ: "Patient", id: "1"}},
		{"GET", "Patient/1/_history", "", interaction{kind: kindHistoryInstance, typ: "Patient", id: "1"}},
		{"GET", "Patient/1/$everything", "_count=5", interaction{kind: kindOperation, typ: "Patient", id: "1", op: "$everything", query: "_count=5"}},
		{"POST", "Patient/1/$everything", "", interaction{kind: kindOperation, typ: "Patient", id: "1", op: "$everything"}},
		{"DELETE", "Patient/1/$everything", "", interaction{typ: "Patient", id: "1"}},
		{"GET", "ValueSet/$expand", "url=x", interaction{kind: kindOperation, typ: "ValueSet", op: "$expand", query: "url=x"}},
		{"POST", "CodeSystem/$lookup", "", interaction{kind: kindOperation, typ: "CodeSystem", op: "$lookup"}},
		{"DELETE", "ValueSet/$expand", "", interaction{kind: kindDelete, typ: "ValueSet", id: "$expand"}},
		{"GET", "Patient/1/Observation", "code=x", interaction{kind: kindSearchCompartment, typ: "Patient", id: "1", target: "Observation", query: "code=x"}},
		{"GET", "Patient/1/*", "", interaction{kind: kindSearchCompartment, typ: "Patient", id: "1", target: "*"}},
		{"POST", "Patient/1/Observation/_search", "", interaction{kind: kindSearchCompartmentPost, typ: "Patient", id: "1", target: "Observation"}},
		{"POST", "Patient/1/*/_search", "", interaction{kind: kindSearchCompartmentPost, typ: "Patient", id: "1", target: "*"}},
		{"GET", "Patient/1/Observation/_search", "", interaction{typ: "Patient", id: "1"}},
		{"POST", "Patient/1/Observation", "", interaction{typ: "Patient", id: "1"}},
		{"PUT", "Patient/1/Observation", "", interaction{typ: "Patient", id: "1"}},
		{"GET", "Patient/1/_other", "", interaction{typ: "Patient", id: "1"}},
		{"GET", "Patient/1/", "", interaction{kind: kindRead, typ: "Patient", id: "1"}},
		{"GET", "", "_type=Patient,Observation", interaction{kind: kindSearchSystem, query: "_type=Patient,Observation"}},
		{"POST", "_search", "", interaction{kind: kindSearchSystemPost}},
		{"GET", "_search", "", interaction{kind: kindSearch, typ: "_search"}},
		{"GET", "Patient/1/_history/2", "", interaction{kind: kindVRead, typ: "Patient", id: "1", version: "2"}},
		{"PUT", "Patient/1/_history/2", "", interaction{typ: "Patient", id: "1"}},
		{"GET", "a/b/c/d/e", "", interaction{typ: "a", id: "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			if got := parseInteraction(tc.method, tc.path, tc.query); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// FuzzParseInteraction: any method and path parse without panicking, and a
// known interaction always names its type (but for system-level ones).
func FuzzParseInteraction(f *testing.F) {
	for _, s := range []string{"Patient/1/_history/2", "", "/", "Patient/1/$everything", "metadata", "a//b"} {
		f.Add("GET", s, "")
	}
	f.Fuzz(func(t *testing.T, method, path, query string) {
		in := parseInteraction(method, path, query)
		switch in.kind {
		case kindUnknown, kindBatch, kindCapabilities, kindHistorySystem, kindSearchSystem, kindSearchSystemPost:
		case kindSearchCompartment, kindSearchCompartmentPost:
			if in.typ == "" || in.id == "" || in.target == "" {
				t.Fatalf("%s %q: %+v: a compartment search without its compartment or target", method, path, in)
			}
		default:
			if in.typ == "" && path != "" {
				t.Fatalf("%s %q: %+v without a type", method, path, in)
			}
		}
	})
}
