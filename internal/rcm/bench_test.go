package rcm

import (
	"context"
	"encoding/json"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user and system time: on a shared machine the
// CPU a loop consumed says more than the wall clock, which counts the
// time other tenants held the cores.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds claims per CPU-second (user + system, GC included).
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(b.N)/(cpuTime(b)-start).Seconds(), "claims/cpu-s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "claims/s")
}

// BenchmarkProfessional837P: one claim from FHIR JSON to a validated 837P
// interchange (read the Claim and its contained resources, lay out the
// loops, validate, write the X12), against the peer of decoding and
// re-encoding the same Claim as JSON. Goal: >= 2,000 claims/s.
func BenchmarkProfessional837P(b *testing.B) {
	claim, err := ClaimFromCMS1500(form(b), "XYZ01", []byte(`{"resourceType":"Organization","name":"XYZ Insurance"}`), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("837p", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime(b)
		for b.Loop() {
			p, err := FromFHIR(ctx, claim, noResolve)
			if err != nil {
				b.Fatal(err)
			}
			submitter(&p)
			segs := Segments837P(p, "R", "20261207", "1200")
			if issues := Validate(segs); len(issues) > 0 {
				b.Fatal(issues)
			}
			if _, err := Interchange837P(segs, env).Bytes(); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, start)
	})
	b.Run("json-peer", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime(b)
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal(claim, &m); err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, start)
	})
}
