package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

type want struct{ code, expression string }

func issuesOf(t *testing.T, doc string) []Issue {
	t.Helper()
	_, issues, err := Validate([]byte(doc))
	if err != nil {
		t.Fatalf("Validate(%s): %v", doc, err)
	}
	return issues
}

func TestValidateInvalid(t *testing.T) {
	deep := `{"url":"http://x","valueString":"leaf"}`
	for range 32 {
		deep = `{"url":"http://x","extension":[` + deep + `]}`
	}
	deepAt := "Patient" + strings.Repeat(".extension[0]", 32)

	cases := []struct {
		name string
		doc  string
		want []want
	}{
		{"unknown element", `{"resourceType":"Patient","foo":1}`, []want{{"structure", "Patient.foo"}}},
		{"unknown element in datatype", `{"resourceType":"Patient","name":[{"family":"x","middle":"y"}]}`, []want{{"structure", "Patient.name[0].middle"}}},
		{"boolean as string", `{"resourceType":"Patient","active":"yes"}`, []want{{"value", "Patient.active"}}},
		{"string as number", `{"resourceType":"Patient","gender":1}`, []want{{"value", "Patient.gender"}}},
		{"object for primitive", `{"resourceType":"Patient","gender":{"value":"male"}}`, []want{{"structure", "Patient.gender"}}},
		{"primitive for object", `{"resourceType":"Patient","maritalStatus":"married"}`, []want{{"structure", "Patient.maritalStatus"}}},
		{"month 13", `{"resourceType":"Patient","birthDate":"1990-13-01"}`, []want{{"value", "Patient.birthDate"}}},
		{"february 30", `{"resourceType":"Patient","birthDate":"2023-02-30"}`, []want{{"value", "Patient.birthDate"}}},
		{"dateTime without zone", `{"resourceType":"Patient","deceasedDateTime":"2020-01-01T10:00:00"}`, []want{{"value", "Patient.deceasedDateTime"}}},
		{"instant without time", `{"resourceType":"Patient","meta":{"lastUpdated":"2020-01-01"}}`, []want{{"value", "Patient.meta.lastUpdated"}}},
		{"id with space", `{"resourceType":"Patient","id":"a b"}`, []want{{"value", "Patient.id"}}},
		{"id too long", `{"resourceType":"Patient","id":"` + strings.Repeat("a", 65) + `"}`, []want{{"value", "Patient.id"}}},
		{"uri with space", `{"resourceType":"Patient","implicitRules":"http://a b"}`, []want{{"value", "Patient.implicitRules"}}},
		{"code with leading space", `{"resourceType":"Patient","gender":" male"}`, []want{{"value", "Patient.gender"}}},
		{"bad base64", `{"resourceType":"Patient","photo":[{"data":"abc"}]}`, []want{{"value", "Patient.photo[0].data"}}},
		{"integer with fraction", `{"resourceType":"Patient","multipleBirthInteger":1.5}`, []want{{"value", "Patient.multipleBirthInteger"}}},
		{"integer over 32 bits", `{"resourceType":"Patient","multipleBirthInteger":3000000000}`, []want{{"value", "Patient.multipleBirthInteger"}}},
		{"integer as string", `{"resourceType":"Patient","multipleBirthInteger":"2"}`, []want{{"value", "Patient.multipleBirthInteger"}}},
		{"positiveInt zero", `{"resourceType":"Appointment","status":"booked","participant":[{"status":"accepted"}],"minutesDuration":0}`, []want{{"value", "Appointment.minutesDuration"}}},
		{"array for single", `{"resourceType":"Patient","gender":["male"]}`, []want{{"structure", "Patient.gender"}}},
		{"single for array", `{"resourceType":"Patient","name":{"family":"x"}}`, []want{{"structure", "Patient.name"}}},
		{"single for array of primitives", `{"resourceType":"Patient","name":[{"given":"x"}]}`, []want{{"structure", "Patient.name[0].given"}}},
		{"missing status", `{"resourceType":"Observation","code":{"text":"x"}}`, []want{{"required", "Observation.status"}}},
		{"missing code", `{"resourceType":"Observation","status":"final"}`, []want{{"required", "Observation.code"}}},
		{"missing both, spec order", `{"resourceType":"Observation"}`, []want{{"required", "Observation.status"}, {"required", "Observation.code"}}},
		{"missing required in backbone", `{"resourceType":"Patient","link":[{"type":"seealso"}]}`, []want{{"required", "Patient.link[0].other"}}},
		{"missing narrative div", `{"resourceType":"Patient","text":{"status":"generated"}}`, []want{{"required", "Patient.text.div"}}},
		{"missing choice", `{"resourceType":"Questionnaire","status":"draft","item":[{"linkId":"1","type":"choice","answerOption":[{"initialSelected":true}]}]}`, []want{{"required", "Questionnaire.item[0].answerOption[0].value"}}},
		{"no resourceType", `{"id":"x"}`, []want{{"required", "Resource.resourceType"}}},
		{"resourceType not a string", `{"resourceType":1}`, []want{{"value", "Resource.resourceType"}}},
		{"unknown resourceType", `{"resourceType":"Foo"}`, []want{{"not-supported", "Resource.resourceType"}}},
		{"datatype as resourceType", `{"resourceType":"HumanName","family":"x"}`, []want{{"not-supported", "Resource.resourceType"}}},
		{"abstract resourceType", `{"resourceType":"DomainResource"}`, []want{{"invalid", "DomainResource.resourceType"}}},
		{"unknown choice type", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueFoo":"1"}`, []want{{"structure", "Observation.valueFoo"}}},
		{"choice type of another element", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueAddress":{"city":"x"}}`, []want{{"structure", "Observation.valueAddress"}}},
		{"two choice types", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueString":"a","valueBoolean":true}`, []want{{"structure", "Observation.value"}}},
		{"bad contained element", `{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o","foo":1}]}`, []want{{"structure", "Patient.contained[0].foo"}}},
		{"contained without resourceType", `{"resourceType":"Patient","contained":[{"id":"o"}]}`, []want{{"required", "Patient.contained[0].resourceType"}}},
		{"contained unknown type", `{"resourceType":"Patient","contained":[{"resourceType":"Nope"}]}`, []want{{"not-supported", "Patient.contained[0].resourceType"}}},
		{"contained missing required", `{"resourceType":"Patient","contained":[{"resourceType":"Observation","status":"final"}]}`, []want{{"required", "Patient.contained[0].code"}}},
		{"bundle entry resource", `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","active":"no"}}]}`, []want{{"value", "Bundle.entry[0].resource.active"}}},
		{"parameters resource", `{"resourceType":"Parameters","parameter":[{"name":"p","resource":{"resourceType":"Patient","birthDate":"x"}}]}`, []want{{"value", "Parameters.parameter[0].resource.birthDate"}}},
		{"resourceType inside datatype", `{"resourceType":"Patient","maritalStatus":{"resourceType":"CodeableConcept","text":"x"}}`, []want{{"structure", "Patient.maritalStatus.resourceType"}}},
		{"_birthDate string", `{"resourceType":"Patient","_birthDate":"x"}`, []want{{"structure", "Patient._birthDate"}}},
		{"_birthDate unknown property", `{"resourceType":"Patient","birthDate":"1970","_birthDate":{"value":"1970"}}`, []want{{"structure", "Patient._birthDate.value"}}},
		{"_birthDate array", `{"resourceType":"Patient","_birthDate":[{"id":"a"}]}`, []want{{"structure", "Patient._birthDate"}}},
		{"_birthDate bad extension", `{"resourceType":"Patient","_birthDate":{"extension":[{"valueString":"x"}]}}`, []want{{"required", "Patient._birthDate.extension[0].url"}}},
		{"_ of complex element", `{"resourceType":"Patient","_maritalStatus":{"id":"a"}}`, []want{{"structure", "Patient._maritalStatus"}}},
		{"_given length mismatch", `{"resourceType":"Patient","name":[{"given":["a","b"],"_given":[{"id":"x"}]}]}`, []want{{"structure", "Patient.name[0]._given"}}},
		{"empty string", `{"resourceType":"Patient","gender":""}`, []want{{"value", "Patient.gender"}}},
		{"empty string in array", `{"resourceType":"Patient","name":[{"given":["Peter",""]}]}`, []want{{"value", "Patient.name[0].given[1]"}}},
		{"null", `{"resourceType":"Patient","gender":null}`, []want{{"structure", "Patient.gender"}}},
		{"null array", `{"resourceType":"Patient","name":null}`, []want{{"structure", "Patient.name"}}},
		{"null in array", `{"resourceType":"Patient","name":[{"given":[null]}]}`, []want{{"structure", "Patient.name[0].given[0]"}}},
		{"null complex in array", `{"resourceType":"Patient","name":[null]}`, []want{{"structure", "Patient.name[0]"}}},
		{"too deep", `{"resourceType":"Patient","extension":[` + deep + `]}`, []want{{"structure", deepAt}}},
		{"document order", `{"resourceType":"Observation","zeta":1,"status":"two  spaces","code":{"coding":[{"system":"a b"}]},"alpha":true}`,
			[]want{{"structure", "Observation.zeta"}, {"value", "Observation.status"}, {"value", "Observation.code.coding[0].system"}, {"structure", "Observation.alpha"}}},
		{"required after inner issues", `{"resourceType":"Observation","code":{"text":""},"issued":"x"}`,
			[]want{{"value", "Observation.code.text"}, {"value", "Observation.issued"}, {"required", "Observation.status"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			issues := issuesOf(t, tc.doc)
			var got []want
			for _, is := range issues {
				got = append(got, want{is.Code, is.Expression})
				if is.Severity != "error" || is.Message == "" {
					t.Errorf("issue %+v: want severity error and a message", is)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v\nwant %v\nissues: %+v", got, tc.want, issues)
			}
		})
	}
}

// TestValidateDropsEmpty: empty objects and arrays (and those holding only such) are warnings,
// removed from the decoded resource; the errors around them keep the paths of the input.
func TestValidateDropsEmpty(t *testing.T) {
	type sw struct{ severity, code, expression string }
	cases := []struct {
		name, doc string
		want      []sw
		out       string // the resource after ValidateDecoded
	}{
		{"empty array", `{"resourceType":"Group","type":"person","actual":true,"member":[]}`,
			[]sw{{"warning", "structure", "Group.member"}}, `{"resourceType":"Group","type":"person","actual":true}`},
		{"empty object", `{"resourceType":"Patient","maritalStatus":{}}`,
			[]sw{{"warning", "structure", "Patient.maritalStatus"}}, `{"resourceType":"Patient"}`},
		{"array of an empty object", `{"resourceType":"Patient","name":[{}]}`,
			[]sw{{"warning", "structure", "Patient.name"}}, `{"resourceType":"Patient"}`},
		{"only empties, deeper", `{"resourceType":"Patient","name":[{"given":[],"period":{"extension":[{}]}}],"active":true}`,
			[]sw{{"warning", "structure", "Patient.name"}}, `{"resourceType":"Patient","active":true}`},
		{"empty entries among others", `{"resourceType":"Patient","name":[{},{"family":"x"},{"given":[]}]}`,
			[]sw{{"warning", "structure", "Patient.name[0]"}, {"warning", "structure", "Patient.name[2]"}}, `{"resourceType":"Patient","name":[{"family":"x"}]}`},
		{"an error after an empty entry keeps its path", `{"resourceType":"Patient","name":[{},{"family":1}]}`,
			[]sw{{"warning", "structure", "Patient.name[0]"}, {"error", "value", "Patient.name[1].family"}}, `{"resourceType":"Patient","name":[{"family":1}]}`},
		{"empty inside a kept object", `{"resourceType":"Patient","name":[{"family":"x","given":[]}]}`,
			[]sw{{"warning", "structure", "Patient.name[0].given"}}, `{"resourceType":"Patient","name":[{"family":"x"}]}`},
		{"empty primitive extension", `{"resourceType":"Patient","birthDate":"1970","_birthDate":{"extension":[]}}`,
			[]sw{{"warning", "structure", "Patient._birthDate"}}, `{"resourceType":"Patient","birthDate":"1970"}`},
		{"empty _given entry becomes null", `{"resourceType":"Patient","name":[{"given":["a","b"],"_given":[{},{"id":"x"}]}]}`,
			[]sw{{"warning", "structure", "Patient.name[0]._given[0]"}}, `{"resourceType":"Patient","name":[{"given":["a","b"],"_given":[null,{"id":"x"}]}]}`},
		{"_given of empties only", `{"resourceType":"Patient","name":[{"given":["a"],"_given":[{}]}]}`,
			[]sw{{"warning", "structure", "Patient.name[0]._given"}}, `{"resourceType":"Patient","name":[{"given":["a"]}]}`},
		{"_given empties beside nulls", `{"resourceType":"Patient","name":[{"given":["a","b"],"_given":[null,{}]}]}`,
			[]sw{{"warning", "structure", "Patient.name[0]._given[1]"}}, `{"resourceType":"Patient","name":[{"given":["a","b"]}]}`},
		{"null given whose partner is empty", `{"resourceType":"Patient","name":[{"given":[null],"_given":[{}]}]}`,
			[]sw{{"error", "structure", "Patient.name[0].given[0]"}, {"warning", "structure", "Patient.name[0]._given"}}, ""},
		{"required element emptied", `{"resourceType":"Observation","status":"final","code":{}}`,
			[]sw{{"warning", "structure", "Observation.code"}, {"error", "required", "Observation.code"}}, ""},
		{"empty choice beside another type", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{},"valueString":"a"}`,
			[]sw{{"warning", "structure", "Observation.valueQuantity"}}, `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueString":"a"}`},
		{"empty contained resource", `{"resourceType":"Patient","contained":[{}]}`,
			[]sw{{"warning", "structure", "Patient.contained"}}, `{"resourceType":"Patient"}`},
		{"in a bundle entry's resource", `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","name":[]}}]}`,
			[]sw{{"warning", "structure", "Bundle.entry[0].resource.name"}}, `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient"}}]}`},
		{"null stays an error", `{"resourceType":"Patient","name":[null,{}]}`,
			[]sw{{"error", "structure", "Patient.name[0]"}, {"warning", "structure", "Patient.name[1]"}}, ""},
		{"empty string stays an error", `{"resourceType":"Patient","name":[{"family":"","given":[]}]}`,
			[]sw{{"error", "value", "Patient.name[0].family"}, {"warning", "structure", "Patient.name[0].given"}}, ""},
		{"unknown element stays an error", `{"resourceType":"Patient","foo":[]}`,
			[]sw{{"error", "structure", "Patient.foo"}}, ""},
		{"empty entry of a primitive array stays an error", `{"resourceType":"Patient","name":[{"given":["a",{}]}]}`,
			[]sw{{"error", "structure", "Patient.name[0].given[1]"}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := decodeUseNumber(t, tc.doc)
			_, issues := ValidateDecoded([]byte(tc.doc), obj)
			var got []sw
			for _, is := range issues {
				got = append(got, sw{is.Severity, is.Code, is.Expression})
				if is.Message == "" {
					t.Errorf("issue %+v has no message", is)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v\nwant %v\nissues: %+v", got, tc.want, issues)
			}
			if tc.out == "" {
				return
			}
			b, _ := json.Marshal(obj)
			want, _ := json.Marshal(decodeUseNumber(t, tc.out))
			if string(b) != string(want) {
				t.Errorf("after: %s\nwant   %s", b, want)
			}
			// What is left is clean: dropping is done in one pass.
			if _, again := ValidateDecoded(b, decodeUseNumber(t, string(b))); !hasErrors(issues) && len(again) != 0 {
				t.Errorf("the result has issues: %+v", again)
			}
		})
	}
}

func decodeUseNumber(t *testing.T, doc string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	return m
}

func TestValidateValid(t *testing.T) {
	cases := []struct{ name, doc string }{
		{"minimal", `{"resourceType":"Patient"}`},
		{"decimal keeps text", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50,"unit":"mg"}}`},
		{"large decimal", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1e400}}`},
		{"partial dates", `{"resourceType":"Patient","birthDate":"1974","deceasedDateTime":"2020-02-29T23:59:60.123+14:00"}`},
		{"primitive extension", `{"resourceType":"Patient","birthDate":"1974-12-25","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"1974-12-25T14:35:45-05:00"}]}}`},
		{"extension only primitive", `{"resourceType":"Patient","_gender":{"extension":[{"url":"http://x","valueCode":"unknown"}]}}`},
		{"aligned primitive arrays with nulls", `{"resourceType":"Patient","name":[{"given":["a",null],"_given":[null,{"id":"g2"}]}]}`},
		{"required satisfied by extension", `{"resourceType":"Observation","_status":{"extension":[{"url":"http://x","valueString":"y"}]},"code":{"text":"x"}}`},
		{"contained and parameters resource", `{"resourceType":"Parameters","parameter":[{"name":"p","resource":{"resourceType":"DiagnosticReport","status":"final","code":{"text":"x"},"contained":[{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"y"},"valueString":"z"}],"result":[{"reference":"#o1"}]}}]}`},
		{"bundle with nested bundle", `{"resourceType":"Bundle","type":"searchset","total":1,"entry":[{"fullUrl":"urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0","resource":{"resourceType":"Bundle","type":"collection"},"search":{"mode":"match","score":1}}]}`},
		{"element named resourceType", `{"resourceType":"ExampleScenario","status":"draft","instance":[{"resourceId":"a","resourceType":"Patient"}]}`},
		{"content reference", `{"resourceType":"Questionnaire","status":"draft","item":[{"linkId":"1","type":"group","item":[{"linkId":"1.1","type":"string","enableWhen":[{"question":"1","operator":"exists","answerBoolean":true}]}]}]}`},
		{"same choice type twice via _", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueString":"a","_valueString":{"id":"v"}}`},
		{"escaped keys", `{"resourceType":"Pati\u0065nt","g\u0065nder":"male"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if issues := issuesOf(t, tc.doc); len(issues) != 0 {
				t.Errorf("want no issues, got %+v", issues)
			}
		})
	}
}

func TestValidateNotJSON(t *testing.T) {
	for _, doc := range []string{``, `   `, `[]`, `"x"`, `null`, `1`, `{`, `{"a":1}x`, `{} {}`, `{"a":}`} {
		rt, issues, err := Validate([]byte(doc))
		if !errors.Is(err, ErrNotJSON) {
			t.Errorf("Validate(%q): err = %v, want ErrNotJSON", doc, err)
		}
		if rt != "" || issues != nil {
			t.Errorf("Validate(%q) = %q, %v with an error", doc, rt, issues)
		}
	}
}

func TestValidateReturnsResourceType(t *testing.T) {
	for doc, want := range map[string]string{
		`{"resourceType":"Patient"}`:        "Patient",
		`{"resourceType":"Foo"}`:            "Foo",
		`{"resourceType":"DomainResource"}`: "DomainResource",
		`{"resourceType":7}`:                "",
		`{}`:                                "",
	} {
		if rt, _, _ := Validate([]byte(doc)); rt != want {
			t.Errorf("Validate(%s) resourceType = %q, want %q", doc, rt, want)
		}
	}
}

// TestValidateHostileNestingIsCheap guards the cost of ordering issues: deep nesting inside an
// unknown element must not make the position scan build a path string per level (quadratic).
func TestValidateHostileNestingIsCheap(t *testing.T) {
	const depth = 9000 // encoding/json allows 10000
	doc := `{"resourceType":"Patient","foo":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `,"bar":1}`
	theModel() // load the model outside the measurement
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	issues := issuesOf(t, doc)
	runtime.ReadMemStats(&after)
	if len(issues) != 2 || issues[0].Expression != "Patient.foo" || issues[1].Expression != "Patient.bar" {
		t.Errorf("issues = %+v", issues)
	}
	// Decoding alone costs about 70 bytes per input byte here; building every path would
	// cost over 100 MB.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256*uint64(len(doc)) {
		t.Errorf("validating %d bytes allocated %d bytes", len(doc), alloc)
	}
}

// TestValidateConcurrent shares the model between goroutines; run with -race.
func TestValidateConcurrent(t *testing.T) {
	docs := []string{
		`{"resourceType":"Patient","name":[{"family":"x"}]}`,
		`{"resourceType":"Observation","zeta":1,"status":"final"}`,
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 50 {
				if _, _, err := Validate([]byte(docs[i%len(docs)])); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}
