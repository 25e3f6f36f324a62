package fhir

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// BenchmarkExpand10k measures ValueSet/$expand over loopback HTTP of a project ValueSet that
// includes a whole 10,000-concept project CodeSystem, with a text filter and a page of 20, and
// reports p50 and p99. The peer in the same run is reading that CodeSystem by id (the same
// data from the store, without the terminology work). Run:
//
//	go test -run XXX -bench Expand10k -benchtime 2000x ./internal/fhir/
func BenchmarkExpand10k(b *testing.B) {
	words := strings.Fields("acute chronic left right upper lower bilateral fracture infection pain injury " +
		"disorder syndrome neoplasm benign malignant open closed partial total primary secondary mild severe")
	rng := rand.New(rand.NewPCG(1, 2))
	var concepts []string
	for i := range 10_000 {
		d := make([]string, 4)
		for j := range d {
			d[j] = words[rng.IntN(len(words))]
		}
		concepts = append(concepts, fmt.Sprintf(`{"code":"C%05d","display":"%s"}`, i, strings.Join(d, " ")))
	}
	cs := `{"resourceType":"CodeSystem","url":"http://example.org/cs/big","status":"active","content":"complete","concept":[` + strings.Join(concepts, ",") + `]}`
	vs := `{"resourceType":"ValueSet","url":"http://example.org/vs/big","status":"active","compose":{"include":[{"system":"http://example.org/cs/big"}]}}`
	for _, backend := range storetest.Backends() {
		b.Run(backend.Name, func(b *testing.B) {
			ts := bindingServer(b, backend)
			st, body := rawCall(b, ts, "POST", "/CodeSystem", "application/fhir+json", cs)
			if st != 201 {
				b.Fatalf("%d %.300s", st, body)
			}
			csID := strings.Split(strings.Split(body, `"id":"`)[1], `"`)[0]
			if st, body := rawCall(b, ts, "POST", "/ValueSet", "application/fhir+json", vs); st != 201 {
				b.Fatalf("%d %.300s", st, body)
			}
			filters := []string{"acute frac", "chronic", "malignant neo", "sev", "left upper pain"}
			expand := func(i int) string {
				return ts.URL + "/ValueSet/$expand?url=http://example.org/vs/big&count=20&filter=" + strings.ReplaceAll(filters[i%len(filters)], " ", "+")
			}
			get := func(u string) {
				res, err := http.Get(u)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					b.Fatalf("%s: %d", u, res.StatusCode)
				}
			}
			get(expand(0)) // the first request parses the code system: a cold start, not timed
			measure := func(url func(int) string) (p50, p99 float64) {
				lat := make([]time.Duration, b.N)
				for i := range b.N {
					t0 := time.Now()
					get(url(i))
					lat[i] = time.Since(t0)
				}
				slices.Sort(lat)
				ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
				return ms(0.5), ms(0.99)
			}
			b.ResetTimer()
			e50, e99 := measure(expand)
			r50, r99 := measure(func(int) string { return ts.URL + "/CodeSystem/" + csID })
			b.StopTimer()
			b.ReportMetric(e50, "expand-p50-ms")
			b.ReportMetric(e99, "expand-p99-ms")
			b.ReportMetric(r50, "read-p50-ms")
			b.ReportMetric(r99, "read-p99-ms")
			b.ReportMetric(e99/r99, "p99-ratio-to-read")
		})
	}
}
