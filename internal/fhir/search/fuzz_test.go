package search

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var fuzzTypes = []string{"Patient", "Observation", "Encounter", "Condition", "MedicationRequest", "Location"}

// FuzzParseQuery checks that parsing never panics and that an accepted
// query survives Encode: ParseQuery(Encode(q)) equals q.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"name=smith&birthdate=ge2020-01&_count=5%20%20%20",
		"subject:Patient.name=x&code=http://loinc.org|1234-5,|abc&_sort=-date,code",
		"value-quantity=ap5.4|http://unitsofmeasure.org|mg&_include=Observation:subject:Patient",
		"_has:Observation:patient:code=1234&_revinclude:iterate=Observation:subject",
		"code-value-quantity=http://loinc.org|8480-6$gt100&name:exact=a\\,b&identifier:of-type=s|MR|1",
		"gender:missing=true&_summary=count&_total=accurate&_elements=name,id&family:contains=o\\|x",
		"subject=Patient/1,http://x.org/fhir/Patient/2&_lastUpdated=lt2020-01-01T10:00:00Z&_tag=a|",
		"near=42.25|-83.69|10|km,-17.5|179.9&component-code-value-quantity=8480-6$gt1|http://unitsofmeasure.org|mm[Hg]",
		"_list=a1,b2&_list=$current-problems&name=x&_text=heart%20failure,asthma",
		`_filter=name co "pe\"t" and not (gender eq male or birthdate ge 2000-01) or identifier pr true&family=x`,
		"subject:Patient.organization.name=acme&patient.general-practitioner:Practitioner.name=x",
	} {
		for i := range fuzzTypes {
			f.Add(uint8(i), s, i%2 == 0)
		}
	}
	f.Fuzz(func(t *testing.T, ti uint8, raw string, lenient bool) {
		vals, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		typ := fuzzTypes[int(ti)%len(fuzzTypes)]
		q, err := ParseQuery(typ, vals, lenient)
		if err != nil {
			return
		}
		enc := q.Encode()
		vals2, err := url.ParseQuery(enc)
		if err != nil {
			t.Fatalf("Encode gave an unparsable query %q: %v", enc, err)
		}
		q2, err := ParseQuery(typ, vals2, false)
		if err != nil {
			t.Fatalf("re-parse of %q (from %q): %v", enc, raw, err)
		}
		q.Ignored = nil
		if !reflect.DeepEqual(q, q2) {
			t.Fatalf("round trip of %q via %q changed the query:\n%s\n%s", raw, enc, dump(q), dump(q2))
		}
	})
}

func dump(q *Query) string {
	b, _ := json.Marshal(q)
	return string(b)
}

// FuzzEval runs every search parameter of a type (that is, every compiled
// search expression, composites included) over fuzzed JSON: Extract may
// return an error but must never panic. The fuzzer supplies an element
// name and a JSON fragment that is grafted onto a real example, which
// reaches far more code than whole fuzzed documents (mostly invalid JSON).
func FuzzEval(f *testing.F) {
	var bases [][]byte
	for _, name := range []string{"Patient-example", "Observation-blood-pressure", "Condition-f202", "MedicationRequest-medrx0306"} {
		data, err := os.ReadFile(filepath.Join("testdata", "examples", name+".json"))
		if err != nil {
			f.Fatal(err)
		}
		bases = append(bases, data)
	}
	for i, seed := range []struct{ key, frag string }{
		{"valueQuantity", `{"value":1.5,"system":"http://unitsofmeasure.org","code":"mg"}`},
		{"valueQuantity", `[1,{"value":"x"},null]`},
		{"component", `[{"valueRange":{"low":3}},{"code":{"coding":"x"}}]`},
		{"subject", `{"reference":7,"identifier":{"value":[]}}`},
		{"name", `[{"given":[1,null,"a"],"family":{"x":1}}]`},
		{"effectivePeriod", `{"start":"2020-13","end":"x"}`},
		{"deceasedDateTime", `"2020"`},
		{"extension", `[{"url":"u","valueString":"v"},{"url":1}]`},
		{"contained", `[{"resourceType":"Patient","id":"c1"}]`},
		{"medicationReference", `{"reference":"#c1"}`},
	} {
		f.Add(uint8(i), seed.key, []byte(seed.frag))
	}
	f.Fuzz(func(t *testing.T, which uint8, key string, frag []byte) {
		res := decodeResource(t, bases[int(which)%len(bases)])
		dec := json.NewDecoder(bytes.NewReader(frag))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return
		}
		res[key] = v
		_, _ = Extract(res["resourceType"].(string), res)
	})
}
