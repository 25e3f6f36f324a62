package search

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

func benchExtract(b *testing.B, file string) {
	res := loadExample(b, file)
	typ := res["resourceType"].(string)
	if _, err := Extract(typ, res); err != nil { // warm the registry
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Extract(typ, res); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExtractObservation(b *testing.B) { benchExtract(b, "Observation-blood-pressure") }
func BenchmarkExtractPatient(b *testing.B)     { benchExtract(b, "Patient-example") }

func BenchmarkParseQuery(b *testing.B) {
	q, err := url.ParseQuery("subject:Patient.name=smith&code=http://loinc.org|8480-6,8462-4&date=ge2020-01&value-quantity=gt100||mm[Hg]&_sort=-date&_count=20&_include=Observation:subject")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseQuery("Observation", q, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIndexValuesVitalSign indexes an Observation like the ones the
// FHIR HTTP benchmark creates (bench/fhirload).
func BenchmarkIndexValuesVitalSign(b *testing.B) {
	var res map[string]any
	d := json.NewDecoder(strings.NewReader(`{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"subject":{"reference":"Patient/abc"},"effectiveDateTime":"2024-01-02T03:04:05Z","valueQuantity":{"value":72.5,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}`))
	d.UseNumber()
	if err := d.Decode(&res); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := IndexValues("Observation", res); err != nil {
			b.Fatal(err)
		}
	}
}
