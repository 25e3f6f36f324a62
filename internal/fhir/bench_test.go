package fhir

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wardhealth/ward/internal/fhir/search"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// BenchmarkCreateParallel measures durable creates (validate, index, one
// fsync'd commit shared by concurrent writers) through the service, without
// HTTP. Run with -cpu to vary the writers: go test -bench CreateParallel -cpu 1,32.
func BenchmarkCreateParallel(b *testing.B) {
	for _, backend := range storetest.Backends() {
		b.Run(backend.Name, func(b *testing.B) {
			ctx := context.Background()
			f := newFixture(b, backend, Config{})
			svc, p := f.svc, f.admin
			body := []byte(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2024-05-01T10:00:00Z","valueQuantity":{"value":72,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}`)
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := svc.Create(ctx, p, "Observation", body, ""); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
		})
	}
}

// BenchmarkSearchParallel measures searches through the service (no HTTP)
// over 1,000 Patients with one Observation each: Patient?name= (a string
// prefix) and Observation?subject=&code= (reference and token).
func BenchmarkSearchParallel(b *testing.B) {
	families := []string{"Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Thomas", "Johnson", "Roberts", "Walker"}
	for _, backend := range storetest.Backends() {
		ctx := context.Background()
		f := newFixture(b, backend, Config{})
		svc, p := f.svc, f.admin
		for i := 0; i < 1000; i++ {
			id := fmt.Sprintf("p%d", i)
			pat := fmt.Sprintf(`{"resourceType":"Patient","id":%q,"name":[{"family":%q,"given":["Given%d"]}],"gender":"female","birthDate":"1980-01-01"}`, id, families[i%len(families)], i)
			if _, _, err := svc.Update(ctx, p, "Patient", id, []byte(pat), ""); err != nil {
				b.Fatal(err)
			}
			obs := fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/%s"},"valueQuantity":{"value":%d,"unit":"/min"}}`, id, 60+i%40)
			if _, _, err := svc.Create(ctx, p, "Observation", []byte(obs), ""); err != nil {
				b.Fatal(err)
			}
		}
		// As the server does as tables grow (PostgreSQL plans blind without).
		if err := f.svc.store.Analyze(ctx); err != nil {
			b.Fatal(err)
		}
		for _, c := range []struct{ name, typ, query string }{
			{"name", "Patient", "name=Smi"},
			{"subject-code", "Observation", "subject=Patient/p%d&code=http://loinc.org|8867-4"},
		} {
			b.Run(backend.Name+"/"+c.name, func(b *testing.B) {
				var n atomic.Int64
				b.SetParallelism(16)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						raw := c.query
						if strings.Contains(raw, "%d") {
							raw = fmt.Sprintf(raw, n.Add(1)%1000)
						}
						vals, _ := url.ParseQuery(raw)
						q, err := search.ParseQuery(c.typ, vals, false)
						if err != nil {
							b.Error(err)
							return
						}
						page, err := svc.Search(ctx, p, q)
						if err != nil || len(page.Matches) == 0 {
							b.Errorf("search %s: %d matches, %v", raw, len(page.Matches), err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "searches/s")
			})
		}
	}
}
