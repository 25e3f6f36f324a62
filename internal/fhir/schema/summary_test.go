package schema

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
)

func TestSummary(t *testing.T) {
	for _, tt := range []struct {
		typ, in string
		keys    []string // top-level keys kept, sorted
		check   func(map[string]any) bool
	}{
		{"Patient", `{"resourceType":"Patient","id":"p","meta":{"versionId":"1"},"text":{"status":"generated","div":"<div/>"},
			"name":[{"family":"Smith","given":["Ann"]}],"gender":"female","birthDate":"1980","_birthDate":{"id":"b"},
			"photo":[{"url":"x"}],"contact":[{"name":{"family":"Doe"}}],"communication":[{"language":{"text":"en"}}],"unknown":1}`,
			[]string{"_birthDate", "birthDate", "gender", "id", "meta", "name", "resourceType"}, nil},
		// Observation.component is summary and so are its code and value;
		// its referenceRange is not.
		{"Observation", `{"resourceType":"Observation","status":"final","code":{"text":"BP"},"note":[{"text":"n"}],
			"component":[{"code":{"text":"sys"},"valueQuantity":{"value":120},"referenceRange":[{"text":"r"}]}]}`,
			[]string{"code", "component", "resourceType", "status"}, func(m map[string]any) bool {
				c := m["component"].([]any)[0].(map[string]any)
				return c["code"] != nil && c["valueQuantity"] != nil && c["referenceRange"] == nil
			}},
	} {
		var m map[string]any
		if err := json.Unmarshal([]byte(tt.in), &m); err != nil {
			t.Fatal(err)
		}
		out, ok := Summary(tt.typ, m)
		if !ok {
			t.Fatalf("%s: not summarised", tt.typ)
		}
		if keys := slices.Sorted(maps.Keys(out)); !slices.Equal(keys, tt.keys) {
			t.Errorf("%s: kept %v, want %v", tt.typ, keys, tt.keys)
		}
		if tt.check != nil && !tt.check(out) {
			t.Errorf("%s: %v", tt.typ, out)
		}
	}
	if _, ok := Summary("NoSuchType", map[string]any{}); ok {
		t.Error("an unknown type was summarised")
	}
}
