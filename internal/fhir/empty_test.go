package fhir

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestEmptyElementsDropped: empty objects and arrays, which R4 forbids but
// Oystehr accepts (Ottehr creates a Group with member: []), are dropped
// wherever a resource comes in, recursively, and are not stored; nulls and
// empty strings are still refused.
func TestEmptyElementsDropped(t *testing.T) {
	ts := restFixture(t, Config{})
	if res, out := call(t, ts, "PUT", "/fhir/Patient/pp", `{"resourceType":"Patient","id":"pp","active":true}`); res.StatusCode != 201 {
		t.Fatalf("setup: %d %v", res.StatusCode, out)
	}
	const group = `{"resourceType":"Group","type":"person","actual":true,"name":"g","member":[]}`
	const groupKept = `{"resourceType":"Group","type":"person","actual":true,"name":"g"}`
	cases := []struct {
		name, method, path, body string
		status                   int
		want                     string // the stored resource without id and meta; "" for a refusal
	}{
		{"create, empty array", "POST", "/fhir/Group", group, 201, groupKept},
		{"create, nested empties", "POST", "/fhir/Patient", `{"resourceType":"Patient","name":[{}],"maritalStatus":{"coding":[{}]},
			"telecom":[{"system":"phone","value":"1","period":{}},{"extension":[]}],"_gender":{"extension":[]},"gender":"male"}`,
			201, `{"resourceType":"Patient","telecom":[{"system":"phone","value":"1"}],"gender":"male"}`},
		{"update that creates", "PUT", "/fhir/Group/g1", `{"resourceType":"Group","id":"g1","type":"person","actual":true,"name":"g","member":[],"characteristic":[{}]}`, 201, groupKept},
		{"update", "PUT", "/fhir/Group/g1", `{"resourceType":"Group","id":"g1","type":"person","actual":true,"name":"g","member":[],"meta":{"tag":[]}}`, 200, groupKept},
		{"conditional update", "PUT", "/fhir/Group?type=person&_id=g1", `{"resourceType":"Group","type":"person","actual":true,"name":"g","member":[]}`, 200, groupKept},
		{"patch result", "PATCH", "/fhir/Patient/pp", `[{"op":"add","path":"/identifier","value":[]},{"op":"add","path":"/name","value":[{"given":[]}]}]`,
			200, `{"resourceType":"Patient","active":true}`},
		{"transaction entry", "POST", "/fhir", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":` + group + `,"request":{"method":"POST","url":"Group"}}]}`, 200, groupKept},
		{"batch entry", "POST", "/fhir", `{"resourceType":"Bundle","type":"batch","entry":[{"resource":` + group + `,"request":{"method":"POST","url":"Group"}}]}`, 200, groupKept},
		{"empty string stays an error", "POST", "/fhir/Group", `{"resourceType":"Group","type":"person","actual":true,"name":"","member":[]}`, 400, ""},
		{"null stays an error", "POST", "/fhir/Group", `{"resourceType":"Group","type":"person","actual":true,"member":null}`, 400, ""},
		{"a required element that was empty is missing", "POST", "/fhir/Observation", `{"resourceType":"Observation","status":"final","code":{}}`, 400, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, out := call(t, ts, c.method, c.path, c.body)
			if res.StatusCode != c.status {
				t.Fatalf("%d %v", res.StatusCode, out)
			}
			if c.want == "" {
				if out["resourceType"] != "OperationOutcome" {
					t.Fatalf("refusal is not an OperationOutcome: %v", out)
				}
				return
			}
			if out["resourceType"] == "Bundle" {
				e := out["entry"].([]any)[0].(map[string]any)
				if st := e["response"].(map[string]any)["status"]; st != "201" {
					t.Fatalf("entry: %v", e)
				}
				out = e["resource"].(map[string]any)
			}
			_, read := call(t, ts, "GET", "/fhir/"+out["resourceType"].(string)+"/"+out["id"].(string), "")
			var want map[string]any
			if err := json.Unmarshal([]byte(c.want), &want); err != nil {
				t.Fatal(err)
			}
			for what, got := range map[string]map[string]any{"response": out, "read": read} {
				delete(got, "id")
				delete(got, "meta")
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: %s\nwant %s", what, mustJSON(got), c.want)
				}
			}
		})
	}
}

// TestValidateOperationEmpty: $validate reports an empty object or array as
// a warning on its element (a write would drop it), next to the errors.
func TestValidateOperationEmpty(t *testing.T) {
	ts := restFixture(t, Config{})
	type issue struct{ Severity, Code, Expression string }
	cases := []struct {
		name, body string
		want       []issue
	}{
		{"empty array", `{"resourceType":"Group","type":"person","actual":true,"member":[]}`,
			[]issue{{"warning", "structure", "Group.member"}}},
		{"nested", `{"resourceType":"Group","type":"person","actual":true,"characteristic":[{"code":{}}],"member":[{"entity":{"reference":"Patient/1"}},{}]}`,
			[]issue{{"warning", "structure", "Group.characteristic"}, {"warning", "structure", "Group.member[1]"}}},
		{"beside an empty string", `{"resourceType":"Group","type":"person","actual":true,"member":[],"name":""}`,
			[]issue{{"warning", "structure", "Group.member"}, {"error", "value", "Group.name"}}},
		{"in the Parameters form", `{"resourceType":"Parameters","parameter":[{"name":"resource","resource":{"resourceType":"Group","type":"person","actual":true,"member":[]}}]}`,
			[]issue{{"warning", "structure", "Group.member"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, out := call(t, ts, "POST", "/fhir/Group/$validate", c.body)
			if res.StatusCode != 200 || out["resourceType"] != "OperationOutcome" {
				t.Fatalf("%d %v", res.StatusCode, out)
			}
			var got []issue
			for _, x := range out["issue"].([]any) {
				m := x.(map[string]any)
				is := issue{m["severity"].(string), m["code"].(string), m["expression"].([]any)[0].(string)}
				got = append(got, is)
				// The text names the element, then says what is wrong.
				if text := m["details"].(map[string]any)["text"].(string); !strings.HasPrefix(text, is.Expression+": ") || len(text) < len(is.Expression)+10 {
					t.Errorf("issue text %q", text)
				}
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("issues %v\nwant %v", got, c.want)
			}
		})
	}
}
