package bulk

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// BenchmarkExport measures a system and a Patient-level export of one
// type (kick-off to the last file recorded, policy-filtered keyset reads,
// NDJSON into Z3, a checkpoint per file) against the same process dumping
// the same rows (SELECT of the stored JSON written to a buffered file,
// fsynced, as the export's files are), in the same run: export-res/s,
// dump-res/s and their ratio.
func BenchmarkExport(b *testing.B) {
	const n = 20000
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			f := newFixture(b, be, Config{})
			seedObservations(b, f, n)
			ctx := context.Background()
			// The planner's statistics, as the server's background
			// refresh keeps them.
			if err := f.st.Analyze(ctx); err != nil {
				b.Fatal(err)
			}
			for _, level := range []struct{ name, path string }{
				{"system", "/$export?_type=Observation"}, {"patient", "/Patient/$export?_type=Observation"}} {
				b.Run(level.name, func(b *testing.B) { benchExport(b, f, level.path, n) })
			}
		})
	}
}

func benchExport(b *testing.B, f *fixture, path string, n int) {
	ctx := context.Background()
	var export, dump time.Duration
	for b.Loop() {
		start := time.Now()
		status := f.kick(f.admin, path)
		for {
			ran, err := f.svc.RunOnce(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if !ran {
				break
			}
		}
		export += time.Since(start)
		if rec := f.do(f.admin, "GET", status); rec.Code != 200 {
			b.Fatalf("status: %d %s", rec.Code, rec.Body)
		}

		start = time.Now()
		out, err := os.Create(filepath.Join(b.TempDir(), "dump.ndjson"))
		if err != nil {
			b.Fatal(err)
		}
		bw := bufio.NewWriterSize(out, 256<<10)
		got, err := f.st.DumpResources(ctx, f.admin.ProjectID, "Observation", bw)
		if err == nil {
			err = bw.Flush()
		}
		if err == nil {
			err = out.Sync()
		}
		out.Close()
		if err != nil || got != n {
			b.Fatalf("dump: %d %v", got, err)
		}
		dump += time.Since(start)
	}
	exportRate := float64(n*b.N) / export.Seconds()
	dumpRate := float64(n*b.N) / dump.Seconds()
	b.ReportMetric(exportRate, "export-res/s")
	b.ReportMetric(dumpRate, "dump-res/s")
	b.ReportMetric(exportRate/dumpRate, "ratio")
}

// seedObservations creates n Observations over 100 patients, from a few
// writers at once (their commits are shared).
func seedObservations(b testing.TB, f *fixture, n int) {
	ctx := context.Background()
	var pids []string
	for i := range 100 {
		r, _, err := f.fsvc.Create(ctx, f.admin, "Patient", []byte(fmt.Sprintf(`{"resourceType":"Patient","name":[{"family":"B%d"}]}`, i)), "")
		if err != nil {
			b.Fatal(err)
		}
		pids = append(pids, r.ID)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				body := fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"subject":{"reference":"Patient/%s"},"effectiveDateTime":"2026-01-02T10:00:00Z","valueQuantity":{"value":%d,"unit":"beats/min","system":"http://unitsofmeasure.org","code":"/min"}}`, pids[i%len(pids)], 60+i%40)
				if _, _, err := f.fsvc.Create(ctx, f.admin, "Observation", []byte(body), ""); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}
