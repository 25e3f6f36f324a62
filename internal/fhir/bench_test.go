package fhir

import (
	"context"
	"testing"

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
