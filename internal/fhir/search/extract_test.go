package search

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func loadExample(t testing.TB, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "examples", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return decodeResource(t, data)
}

func valuesOf(vals []Value, param string) []Value {
	var out []Value
	for _, v := range vals {
		if v.Param == param {
			out = append(out, v)
		}
	}
	return out
}

// at returns the Unix ms of an RFC 3339 instant.
func at(t *testing.T, s string) int64 {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm.UnixMilli()
}

func str(p, s, exact string) Value { return Value{Param: p, Type: "string", String: s, Exact: exact} }
func tok(p, sys, code, display string) Value {
	return Value{Param: p, Type: "token", System: sys, Code: code, Display: display}
}
func ref(p, typ, id string) Value { return Value{Param: p, Type: "reference", RefType: typ, RefID: id} }

func TestExtractExamples(t *testing.T) {
	day := func(p, d string) Value {
		lo, hi, err := DateRange(d)
		if err != nil {
			t.Fatal(err)
		}
		return Value{Param: p, Type: "date", Low: lo, High: hi}
	}
	tests := []struct {
		file, param string
		want        []Value
	}{
		{"Patient-example", "name", []Value{str("name", "chalmers", "Chalmers"), str("name", "peter", "Peter"), str("name", "james", "James"),
			str("name", "jim", "Jim"), str("name", "windsor", "Windsor"), str("name", "peter", "Peter"), str("name", "james", "James")}},
		{"Patient-example", "family", []Value{str("family", "chalmers", "Chalmers"), str("family", "windsor", "Windsor")}},
		{"Patient-example", "birthdate", []Value{day("birthdate", "1974-12-25")}},
		{"Patient-example", "identifier", []Value{func() Value {
			v := tok("identifier", "urn:oid:1.2.36.146.595.217.0.1", "12345", "")
			v.OfType = []string{"http://terminology.hl7.org/CodeSystem/v2-0203|MR"} // for :of-type
			return v
		}()}},
		{"Patient-example", "gender", []Value{tok("gender", "", "male", "")}},
		{"Patient-example", "deceased", []Value{tok("deceased", "", "false", "")}},
		{"Patient-example", "organization", []Value{ref("organization", "Organization", "1")}},
		{"Patient-example", "email", nil},
		{"Patient-example", "phone", []Value{tok("phone", "phone", "(03) 5555 6473", ""), tok("phone", "phone", "(03) 3410 5613", ""), tok("phone", "phone", "(03) 5555 8834", "")}},
		{"Patient-example", "address-city", []Value{str("address-city", "pleasantville", "PleasantVille")}},
		{"Patient-example", "_id", []Value{tok("_id", "", "example", "")}},
		{"Practitioner-example", "name", []Value{str("name", "careful", "Careful"), str("name", "adam", "Adam"), str("name", "dr", "Dr")}},
		{"Organization-hl7", "name", []Value{str("name", "health level seven international", "Health Level Seven International"), str("name", "hl7 international", "HL7 International")}},
		{"Observation-example", "subject", []Value{ref("subject", "Patient", "example")}},
		{"Observation-example", "code", []Value{tok("code", "http://loinc.org", "29463-7", "Body Weight"), tok("code", "http://loinc.org", "3141-9", "Body weight Measured"),
			tok("code", "http://snomed.info/sct", "27113001", "Body weight"), tok("code", "http://acme.org/devices/clinical-codes", "body-weight", "Body Weight")}},
		{"Observation-example", "value-quantity", []Value{{Param: "value-quantity", Type: "quantity", Number: 185, NumberText: "185",
			System: "http://unitsofmeasure.org", Code: "[lb_av]", Unit: "[lb_av]"}}},
		{"Observation-example", "date", []Value{day("date", "2016-03-28")}},
		{"Observation-example-genetics-1", "value-concept", []Value{tok("value-concept", "http://snomed.info/sct", "10828004", "Positive")}},
		{"Observation-f001", "date", []Value{{Param: "date", Type: "date", Low: at(t, "2013-04-02T08:30:10Z"), High: MaxTime}}},
		{"Observation-eye-color", "value-string", []Value{str("value-string", "blue", "blue")}},
		{"Observation-eye-color", "code", []Value{tok("code", "", "", "eye color")}},
		{"Observation-date-lastmp", "value-date", []Value{day("value-date", "2016-12-30")}},
		{"Condition-example2", "onset-info", []Value{str("onset-info", "approximately november 2012", "approximately November 2012")}},
		{"Condition-f202", "onset-age", []Value{{Param: "onset-age", Type: "quantity", Number: 52, NumberText: "52", System: "http://unitsofmeasure.org", Code: "a", Unit: "a"}}},
		{"MedicationRequest-medrx002", "medication", []Value{ref("medication", "Medication", "med0316")}},
		{"MedicationRequest-medrx0306", "medication", []Value{{Param: "medication", Type: "reference", RefType: "Medication", RefURL: "#med0304"}}},
		{"MedicationRequest-medrx0306", "authoredon", []Value{day("authoredon", "2015-01-15")}},
		{"Encounter-f201", "class", []Value{tok("class", "http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory")}},
		{"Encounter-f201", "identifier", []Value{tok("identifier", "", "Encounter_Roel_20130404", "")}},
		{"DiagnosticReport-f201", "date", []Value{{Param: "date", Type: "date", Low: at(t, "2012-12-01T11:00:00Z"), High: at(t, "2012-12-01T11:00:01Z")}}},
		{"DiagnosticReport-f201", "subject", []Value{ref("subject", "Patient", "f201")}},
		{"Immunization-example", "vaccine-code", []Value{tok("vaccine-code", "urn:oid:1.2.36.1.2001.1005.17", "FLUVAX", ""), tok("vaccine-code", "", "", "Fluvax (Influenza)")}},
		{"Immunization-example", "lot-number", []Value{str("lot-number", "aajn11k", "AAJN11K")}},
		{"RiskAssessment-genetic", "probability", nil}, // checked below for the text
		{"MolecularSequence-example", "variant-start", []Value{{Param: "variant-start", Type: "number", Number: 22125503, NumberText: "22125503"}}},
		{"Bundle-bundle-example", "type", []Value{tok("type", "", "searchset", "")}},
		{"Bundle-bundle-example", "_lastUpdated", []Value{{Param: "_lastUpdated", Type: "date", Low: at(t, "2014-08-18T01:43:30Z"), High: at(t, "2014-08-18T01:43:31Z")}}},
		{"Appointment-example", "actor", []Value{ref("actor", "Patient", "example"), ref("actor", "Practitioner", "example"), ref("actor", "Location", "1")}},
		{"Appointment-example", "patient", []Value{ref("patient", "Patient", "example")}},
		{"Provenance-example", "target", []Value{ref("target", "Procedure", "example")}},
		{"Task-example1", "period", []Value{{Param: "period", Type: "date", Low: at(t, "2016-10-30T22:25:05Z"), High: MaxTime}}},
		// special: the position as two number rows
		{"Location-1", "near", []Value{{Param: "near", Type: "number", System: "latitude", Number: 42.25475478}, {Param: "near", Type: "number", System: "longitude", Number: -83.6945691}}},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.param, func(t *testing.T) {
			res := loadExample(t, tt.file)
			vals, err := Extract(res["resourceType"].(string), res)
			if err != nil {
				t.Fatal(err)
			}
			got := valuesOf(vals, tt.param)
			if tt.want == nil && got == nil {
				return
			}
			if tt.want == nil && tt.param != "probability" {
				t.Fatalf("want no values, got %+v", got)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}

	res := loadExample(t, "RiskAssessment-genetic")
	vals, _ := Extract("RiskAssessment", res)
	probs := valuesOf(vals, "probability")
	if len(probs) != 8 || probs[7].NumberText != "0.001663" || probs[6].NumberText != "0.001530" || probs[6].Number != 0.00153 {
		t.Errorf("probability kept as written: %+v", probs)
	}
}

func TestExtractComposite(t *testing.T) {
	res := loadExample(t, "Observation-blood-pressure")
	vals, err := Extract("Observation", res)
	if err != nil {
		t.Fatal(err)
	}
	got := valuesOf(vals, "component-code-value-quantity")
	if len(got) != 4 {
		t.Fatalf("want one combination per component coding (4), got %d", len(got))
	}
	first := got[0].Components
	if len(first) != 2 || first[0].Code != "8480-6" || first[0].Param != "component-code" ||
		first[1].Number != 107 || first[1].Unit != "mm[Hg]" || first[1].Param != "component-value-quantity" {
		t.Errorf("first combination %+v", first)
	}
	last := got[3].Components
	if last[0].Code != "8462-4" || last[1].Number != 60 {
		t.Errorf("last combination %+v", last)
	}
}

func TestExtractShapes(t *testing.T) {
	res := decodeResource(t, []byte(`{"resourceType":"Patient","id":"x",
	 "name":[{"text":"Zoë  Müller-Łukasz","family":"MÜLLER"}],
	 "identifier":[{"system":"http://ids","value":"7","type":{"text":"MRN"}}],
	 "telecom":[{"system":"email","value":"z@x.org"}],
	 "generalPractitioner":[{"reference":"http://other.org/fhir/Practitioner/9"},{"identifier":{"system":"http://npi","value":"123"}},
	   {"reference":"urn:uuid:0f0e"},{"reference":"Practitioner/1/_history/2"}],
	 "link":[{"other":{"reference":"Patient/2"}}],
	 "meta":{"profile":["http://p/x"],"tag":[{"system":"http://t","code":"a"}],"lastUpdated":"2020-01-02T03:04:05.123+00:00"}}`))
	vals, err := Extract("Patient", res)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]Value{
		"name":       {str("name", "muller", "MÜLLER"), str("name", "zoe muller-lukasz", "Zoë  Müller-Łukasz")},
		"identifier": {tok("identifier", "http://ids", "7", "MRN")},
		"email":      {tok("email", "email", "z@x.org", "")},
		"general-practitioner": {
			{Param: "general-practitioner", Type: "reference", RefType: "Practitioner", RefURL: "http://other.org/fhir/Practitioner/9"},
			{Param: "general-practitioner", Type: "reference", System: "http://npi", Code: "123"},
			{Param: "general-practitioner", Type: "reference", RefURL: "urn:uuid:0f0e"},
			ref("general-practitioner", "Practitioner", "1"),
		},
		"link":         {ref("link", "Patient", "2")},
		"_profile":     {{Param: "_profile", Type: "uri", URI: "http://p/x"}},
		"_tag":         {tok("_tag", "http://t", "a", "")},
		"_lastUpdated": {{Param: "_lastUpdated", Type: "date", Low: at(t, "2020-01-02T03:04:05.123Z"), High: at(t, "2020-01-02T03:04:05.124Z")}},
	}
	for param, w := range want {
		if got := valuesOf(vals, param); !reflect.DeepEqual(got, w) {
			t.Errorf("%s:\n got  %+v\n want %+v", param, got, w)
		}
	}

	obs := decodeResource(t, []byte(`{"resourceType":"Observation","status":"final",
	 "effectiveTiming":{"event":["2020-01-01","2020-02"]},
	 "valueRange":{"low":{"value":1,"unit":"mg"},"high":{"value":2.50,"code":"mg"}}}`))
	vals, err = Extract("Observation", obs)
	if err != nil {
		t.Fatal(err)
	}
	if got := valuesOf(vals, "date"); len(got) != 2 || got[1].Low != at(t, "2020-02-01T00:00:00Z") || got[1].High != at(t, "2020-03-01T00:00:00Z") {
		t.Errorf("Timing events: %+v", got)
	}
	// valueRange is not in value-quantity's expression (Quantity, SampledData):
	if got := valuesOf(vals, "value-quantity"); got != nil {
		t.Errorf("value-quantity from a Range: %+v", got)
	}
	cond := decodeResource(t, []byte(`{"resourceType":"Condition","subject":{"reference":"Patient/1"},
	 "onsetRange":{"low":{"value":1,"unit":"a"},"high":{"value":2.50,"code":"a"}}}`))
	vals, _ = Extract("Condition", cond)
	got := valuesOf(vals, "onset-age")
	if len(got) != 2 || got[0].Number != 1 || got[0].Unit != "a" || got[1].NumberText != "2.50" {
		t.Errorf("Range gives low and high: %+v", got)
	}

	if _, err := Extract("Nope", res); !errors.Is(err, ErrUnknownType) {
		t.Errorf("unknown type: %v", err)
	}
}
