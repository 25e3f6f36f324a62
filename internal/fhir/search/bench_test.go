package search

import (
	"net/url"
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
