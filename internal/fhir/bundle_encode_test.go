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
				{Response: &entryResponse{Status: "201 Created"}},
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
