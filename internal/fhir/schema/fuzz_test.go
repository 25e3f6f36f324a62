package schema

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzValidate checks that Validate never panics, that its answer does not depend on map
// iteration order, and that a resource it accepts is still accepted after a round trip through
// encoding/json (which reorders keys and re-escapes strings): acceptance depends on content,
// not on spelling. What ValidateDecoded leaves of an accepted resource (its empty objects and
// arrays dropped: what Ward stores) validates without any issue, warnings included.
func FuzzValidate(f *testing.F) {
	seeds := []string{
		`{"resourceType":"Patient","name":[{"given":["a",null],"_given":[null,{"id":"x"}]}]}`,
		`{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50}}`,
		`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","active":"no"}}]}`,
		`{"resourceType":"Patient","contained":[{"resourceType":"Organization","foo":1}],"_birthDate":"x"}`,
		`{"resourceType":"Questionnaire","status":"draft","item":[{"linkId":"1","type":"group","item":[{"linkId":"2","type":"string"}]}]}`,
		`{"resourceType":"DomainResource"}`, `{}`, `[]`, `{"resourceType":"Patient","gender":null}`,
		`{"resourceType":"Group","type":"person","actual":true,"member":[],"name":"g","extension":[{}]}`,
		`{"resourceType":"Patient","name":[{},{"family":"x","given":["a","b"],"_given":[{},{"extension":[]}]}],"_birthDate":{}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	for _, name := range []string{"Patient-example.json", "Bundle-bundle-transaction.json", "Questionnaire-3141.json", "Claim-100155.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", "examples", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rt, issues, err := Validate(data)
		if err != nil {
			return
		}
		rt2, issues2, _ := Validate(data)
		if rt != rt2 || !reflect.DeepEqual(issues, issues2) {
			t.Fatalf("two runs differ:\n%v\n%v", issues, issues2)
		}
		if hasErrors(issues) {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("accepted input does not decode: %v", err)
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		rt3, issues3, err := Validate(again)
		if err != nil || hasErrors(issues3) || rt3 != rt {
			t.Fatalf("re-encoded resource fails: %q %v %v\ninput: %s\nre-encoded: %s", rt3, err, issues3, data, again)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		ValidateDecoded(data, m)
		kept, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("encode what was kept: %v", err)
		}
		if _, issues4, err := Validate(kept); err != nil || hasErrors(issues4) { // warnings (extensible bindings) may stay
			t.Fatalf("what was kept has issues: %v %v\ninput: %s\nkept: %s", err, issues4, data, kept)
		}
		// _summary=true of a valid resource: a fixed point, and a subset.
		if s1, ok := Summary(rt, m); ok {
			if s2, _ := Summary(rt, s1); !reflect.DeepEqual(s1, s2) {
				t.Fatalf("summary of the summary differs:\n%v\n%v", s1, s2)
			}
			for k := range s1 {
				if _, in := m[k]; !in {
					t.Fatalf("summary adds %q", k)
				}
			}
		}
	})
}

func hasErrors(issues []Issue) bool {
	for _, is := range issues {
		if is.Severity == "error" {
			return true
		}
	}
	return false
}
