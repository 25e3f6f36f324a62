package fhir

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/fhir/search"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// BenchmarkCreateParallel measures durable creates (validate, index, one
// fsync'd commit shared by concurrent writers) through the service, without
// HTTP. The Observations vary as real ones do (1,000 subjects, 20 codes,
// five years of dates, random values), so index inserts land on as many
// pages as they would in production. On Linux it also reports the write
// system calls and bytes per create (WAL frames and checkpoint copies on
// SQLite). Run with -cpu to vary the writers: go test -bench CreateParallel -cpu 1,32.
func BenchmarkCreateParallel(b *testing.B) {
	for _, backend := range storetest.Backends() {
		b.Run(backend.Name, func(b *testing.B) {
			ctx := context.Background()
			f := newFixture(b, backend, Config{})
			svc, p := f.svc, f.admin
			var seq atomic.Int64
			body := func() []byte {
				n := seq.Add(1) * 7919
				return []byte(fmt.Sprintf(`{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],`+
					`"code":{"coding":[{"system":"http://loinc.org","code":"%d-4","display":"Heart rate"}]},"subject":{"reference":"Patient/p%d"},`+
					`"effectiveDateTime":"%s","valueQuantity":{"value":%d.%d,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}`,
					8800+n%20, n%1000, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n%1826)*24*time.Hour).Format(time.RFC3339), 40+n%120, n%10))
			}
			io0, cpu0 := procIO(), cpuTime()
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := svc.Create(ctx, p, "Observation", body(), ""); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/create")
			if io1 := procIO(); io1 != nil && io0 != nil {
				b.ReportMetric(float64(io1["syscw"]-io0["syscw"])/float64(b.N), "writes/create")
				b.ReportMetric(float64(io1["wchar"]-io0["wchar"])/float64(b.N), "wbytes/create")
			}
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procIO reads this process's I/O counters (Linux); nil elsewhere.
func procIO() map[string]int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return nil
	}
	m := map[string]int64{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil {
			m[k] = n
		}
	}
	return m
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

// BenchmarkSearchHandler measures one search through the FHIR handler
// (query parsing, policy, SQL, bundle encoding), without the network, on
// a data set shaped as bench/fhirload's: 1,000 Patients in 100 families
// (Patient?name= matches ~10), 10 Observations each over 10 codes
// (Observation?subject=&code= matches 1), from 16 x GOMAXPROCS goroutines
// (-cpu 1 for the cost of one search alone): go test -run X -bench
// SearchHandler -cpu 1,2 ./internal/fhir
func BenchmarkSearchHandler(b *testing.B) {
	for _, backend := range storetest.Backends() {
		b.Run(backend.Name, func(b *testing.B) { benchmarkSearchHandler(b, backend) })
	}
}

func benchmarkSearchHandler(b *testing.B, backend storetest.Backend) {
	{
		ctx := context.Background()
		f := newFixture(b, backend, Config{})
		svc, p := f.svc, f.admin
		for i := 0; i < 1000; i++ {
			id := fmt.Sprintf("p%d", i)
			pat := fmt.Sprintf(`{"resourceType":"Patient","id":%q,"meta":{"profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},`+
				`"identifier":[{"system":"http://hospital.example.org/mrn","value":"MRN%06d"}],"active":true,`+
				`"name":[{"use":"official","family":"Family%03d","given":["Given%d","Middle"]}],"telecom":[{"system":"phone","value":"555-01%04d","use":"home"}],`+
				`"gender":"female","birthDate":"1980-01-01","address":[{"line":["%d Main St"],"city":"Springfield","state":"IL","postalCode":"62701"}]}`, id, i, i%100, i, i, i)
			if _, _, err := svc.Update(ctx, p, "Patient", id, []byte(pat), ""); err != nil {
				b.Fatal(err)
			}
			for c := 0; c < 10; c++ {
				obs := fmt.Sprintf(`{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],`+
					`"code":{"coding":[{"system":"http://loinc.org","code":"%d-4"}]},"subject":{"reference":"Patient/%s"},"effectiveDateTime":"2024-01-0%dT10:00:00Z",`+
					`"valueQuantity":{"value":%d,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}`, 8800+c, id, 1+c%9, 60+i%40)
				if _, _, err := svc.Create(ctx, p, "Observation", []byte(obs), ""); err != nil {
					b.Fatal(err)
				}
			}
		}
		h := NewHandler(svc, "http://ward.test/fhir", slog.New(slog.NewTextHandler(io.Discard, nil)))
		for _, c := range []struct{ name, path string }{
			{"name", "/fhir/Patient?name=Family%03d"},
			{"subject-code", "/fhir/Observation?subject=Patient/p%d&code=http://loinc.org%%7C%d-4"},
		} {
			b.Run(c.name, func(b *testing.B) {
				cpu0 := cpuTime()
				var seq atomic.Int64
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						n := int(seq.Add(1))
						path := fmt.Sprintf(c.path, n%100)
						if c.name == "subject-code" {
							path = fmt.Sprintf(c.path, n%1000, 8800+n%10)
						}
						w := httptest.NewRecorder()
						h.ServeFHIR(w, httptest.NewRequest(http.MethodGet, path, nil), p)
						if w.Code != http.StatusOK || !bytes.Contains(w.Body.Bytes(), []byte(`"mode":"match"`)) {
							b.Errorf("%s: %d %.300s", path, w.Code, w.Body.String())
							return
						}
					}
				})
				n := int(seq.Load())
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(n), "cpu-µs/search")
			})
		}
	}
}
