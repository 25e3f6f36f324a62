package policy

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", ``, "empty document"},
		{"syntax", `{"rule": [}`, "invalid JSON at byte"},
		{"trailing", `{"rule": []} {}`, "unexpected data after the document"},
		{"not object", `[]`, "must be an object"},
		{"missing rule", `{}`, `rule: required`},
		{"unknown top field", `{"rule": [], "Version": "1"}`, `unknown field "Version"`},
		{"rule not list", `{"rule": {}}`, "rule: must be a list of rules"},
		{"rule elem not object", `{"rule": [1]}`, "rule[0]: must be an object"},
		{"unknown rule field", `{"rule": [{"resource":"*","action":"*","effect":"Allow","sid":"x"}]}`, `rule[0]: unknown field "sid"`},
		{"case matters", `{"rule": [{"Resource":"*","action":"*","effect":"Allow"}]}`, `rule[0]: unknown field "Resource"`},
		{"duplicate field", `{"rule": [{"resource":"*","resource":"FHIR","action":"*","effect":"Allow"}]}`, `rule[0]: duplicate field "resource"`},
		{"duplicate rule key", `{"rule": [], "rule": []}`, `duplicate field "rule"`},
		{"missing effect", `{"rule": [{"resource":"*","action":"*"}]}`, `rule[0].effect: required`},
		{"bad effect", `{"rule": [{"resource":"*","action":"*","effect":"allow"}]}`, `rule[0].effect: must be "Allow" or "Deny"`},
		{"effect number", `{"rule": [{"resource":"*","action":"*","effect":1}]}`, `rule[0].effect: must be "Allow" or "Deny"`},
		{"resource number", `{"rule": [{"resource":5,"action":"*","effect":"Allow"}]}`, `rule[0].resource: must be a string or a list of strings`},
		{"resource null", `{"rule": [{"resource":null,"action":"*","effect":"Allow"}]}`, `rule[0].resource: must be a string or a list of strings`},
		{"action elem", `{"rule": [{"resource":"*","action":["FHIR:Read", 2],"effect":"Allow"}]}`, `rule[0].action[1]: must be a string`},
		{"third rule", `{"rule": [{"resource":"*","action":"*","effect":"Allow"},{"resource":"*","action":"*","effect":"Deny"},{"resource":"*","action":"*","effect":"Maybe"}]}`, `rule[2].effect: must be "Allow" or "Deny"`},
		{"condition number", `{"rule": [{"resource":"FHIR:Patient","action":"FHIR:Read","effect":"Allow","condition":3}]}`, `rule[0].condition: must be a FHIR search string, an object`},
		{"condition elem", `{"rule": [{"resource":"FHIR:Patient","action":"FHIR:Read","effect":"Allow","condition":["Patient?a=b", true]}]}`, `rule[0].condition[1]: must be a FHIR search string or an object`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%s) error = %v, want %q", tt.in, err, tt.want)
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("error %v is not ErrInvalidPolicy", err)
			}
		})
	}
}

// Parsed documents marshal back in the shape the SDK sent.
func TestParseRoundTrip(t *testing.T) {
	tests := []string{
		`{"rule":[]}`,
		`{"rule":[{"resource":"FHIR:Patient:*","action":"FHIR:Read","effect":"Allow"}]}`,
		`{"rule":[{"resource":["FHIR:Patient","FHIR:Encounter"],"action":["FHIR:Read","FHIR:Search"],"effect":"Deny"}]}`,
		`{"rule":[{"resource":"FHIR:Patient","action":"FHIR:Read","effect":"Allow","condition":"Patient?general-practitioner=Practitioner/123"}]}`,
		`{"rule":[{"resource":"FHIR:Patient","action":"FHIR:Read","effect":"Allow","condition":["a=b",{"x":[1,2]}]}]}`,
		`{"rule":[{"resource":"FHIR:Patient","action":"FHIR:Read","effect":"Allow","condition":{"k":"\u003cb\u003e"}}]}`,
		`{"rule":[{"resource":[],"action":[],"effect":"Allow","condition":[]}]}`,
	}
	for _, in := range tests {
		doc, err := Parse([]byte(in))
		if err != nil {
			t.Fatalf("Parse(%s): %v", in, err)
		}
		out, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != in {
			t.Errorf("round trip:\n in: %s\nout: %s", in, out)
		}
	}
}

func TestParseDetails(t *testing.T) {
	doc, err := Parse([]byte(` { "rule" : [ {"effect":"Allow","condition":null,"action":"*","resource":["*"]} ] } `))
	if err != nil {
		t.Fatal(err)
	}
	want := Document{Rule: []Rule{{Resource: List("*"), Action: StringList{Values: []string{"*"}, Scalar: true}, Effect: Allow}}}
	if !reflect.DeepEqual(doc, want) {
		t.Errorf("got %+v, want %+v", doc, want)
	}
	// encoding/json goes through the same strict parser.
	var embedded struct {
		AccessPolicy *Document `json:"accessPolicy"`
	}
	err = json.Unmarshal([]byte(`{"accessPolicy":{"rule":[{"resource":"*","action":"*","effect":"Alow"}]}}`), &embedded)
	if !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("embedded document error = %v, want ErrInvalidPolicy", err)
	}
	// Object conditions are kept as compact JSON.
	doc, err = Parse([]byte(`{"rule":[{"resource":"FHIR:Patient","action":"FHIR:Read","effect":"Allow","condition":{ "a" : 1 }}]}`))
	if err != nil || string(doc.Rule[0].Condition.Items[0].Object) != `{"a":1}` {
		t.Errorf("object condition = %v, %v", doc, err)
	}
}
