package fhir

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestBundleEncode: the hand-assembled bundle decodes to what
// encoding/json makes of the same bundle.
func TestBundleEncode(t *testing.T) {
	total := 2
	cases := []bundle{
		{ResourceType: "Bundle", ID: "b1", Type: "searchset", Total: &total, Entry: []bundleEntry{}},
		{ResourceType: "Bundle", Type: "searchset", Link: []bundleLink{{Relation: "self", URL: "http://x/fhir/Patient?name=<a&b>"}},
			Entry: []bundleEntry{
				{FullURL: "http://x/fhir/Patient/1", Resource: json.RawMessage(`{"resourceType":"Patient","id":"1","name":[{"text":"<Ada & Bob>"}]}`), Search: &entrySearch{Mode: "match"}},
				{Resource: json.RawMessage(`{"resourceType":"Patient","id":"2"}`)},
				{Response: &entryResponse{Status: "201"}},
			}},
		// Search entries (written without encoding/json when nothing in
		// them needs escaping): with and without fullUrl or resource, and
		// a fullUrl that needs escaping.
		{ResourceType: "Bundle", Type: "searchset", Entry: []bundleEntry{
			{FullURL: "http://x/fhir/Observation/a.1", Resource: json.RawMessage(`{"resourceType":"Observation","id":"a.1"}`), Search: &entrySearch{Mode: "match"}},
			{FullURL: "http://x/fhir/Patient/p", Resource: json.RawMessage(`{"resourceType":"Patient","id":"p"}`), Search: &entrySearch{Mode: "include"}},
			{Resource: json.RawMessage(`{"resourceType":"Patient","id":"q"}`), Search: &entrySearch{Mode: "match"}},
			{FullURL: "http://x/fhir/Patient/r", Search: &entrySearch{Mode: "match"}},
			{FullURL: "http://x/f\"hir&<é>/Patient/s", Resource: json.RawMessage(`{"resourceType":"Patient","id":"s"}`), Search: &entrySearch{Mode: "match"}},
		}},
	}
	for i, b := range cases {
		got, err := b.encode()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(b)
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("case %d: not JSON: %v\n%s", i, err, got)
		}
		_ = json.Unmarshal(want, &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
}
