package fhir

import (
	"testing"
)

// FuzzTermParameters: a Parameters body either parses, with every value within the bound, or
// is refused; never a panic.
func FuzzTermParameters(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Parameters","parameter":[{"name":"url","valueUri":"http://x"},{"name":"count","valueInteger":3},{"name":"coding","valueCoding":{"system":"s","code":"c"}},{"name":"valueSet","resource":{"resourceType":"ValueSet"}}]}`))
	f.Add([]byte(`{"resourceType":"Parameters","parameter":[{"name":"url"}]}`))
	f.Add([]byte(`{"resourceType":"Parameters","parameter":[{"name":"a","valueBoolean":true},{"name":"a","valueString":"x"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		tp, err := parseTermParameters(body)
		if err != nil {
			return
		}
		for k, v := range tp.values {
			if len(v) > maxTermParam && k != "" {
				t.Fatalf("%s is %d long", k, len(v))
			}
		}
	})
}

func TestTermParameters(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"resourceType":"Parameters","parameter":[{"name":"url","valueUri":"http://x"},{"name":"count","valueInteger":3}]}`, true},
		{`{"resourceType":"Parameters"}`, true},
		{`{"resourceType":"Patient"}`, false},
		{`{"resourceType":"Parameters","parameter":[{"name":"url","valueUri":"a"},{"name":"url","valueUri":"b"}]}`, false},
		{`{"resourceType":"Parameters","parameter":[{"valueUri":"a"}]}`, false},
		{`{"resourceType":"Parameters","parameter":[{"name":"x","valueCoding":"no"}]}`, false},
		{`{"resourceType":"Parameters","parameter":[{"name":"x","valueX":{"a":1}}]}`, false},
		{`[1]`, false},
	} {
		if _, err := parseTermParameters([]byte(tc.body)); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.body, err)
		}
	}
}
