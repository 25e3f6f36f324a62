package console

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/activity"
)

var chartSVG = regexp.MustCompile(`(?s)<svg class="chart".*?</svg>`)

// renderDashboard renders the page of a report for a project name.
func renderDashboard(t testing.TB, rep activity.Report, project string) string {
	t.Helper()
	page := dashboardPage{base: base{Title: "Dashboard", Nav: "dashboard", Project: project, CSRF: "c"}}
	fillDashboard(&page, rep)
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, "dashboard", page); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// report is an hour whose minute i holds figures derived from seed values.
func report(requests, errors, invocations int64, p50, p99 float64) activity.Report {
	rep := activity.Report{Counted: "replica"}
	start := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for i := range activity.Minutes {
		f := activity.Figure{Start: start.Add(time.Duration(i) * time.Minute)}
		if i%3 != 1 {
			f.Requests, f.ClientErrors, f.Invocations = requests*int64(i+1), errors, invocations
			f.P50Ms, f.P99Ms = p50, p99*float64(i)
			f.Deliveries, f.DeliveryFailures = int64(i), int64(i/2)
		}
		rep.Minutes = append(rep.Minutes, f)
		rep.Totals.Requests += f.Requests
	}
	rep.Totals.Start = start
	return rep
}

// Every chart of any report is well-formed SVG inside the page's bounds,
// whatever the figures (huge, negative, zero) and the project's name.
func FuzzDashboardSVG(f *testing.F) {
	f.Add(int64(5), int64(1), int64(2), 1.5, 30.0, "Project one")
	f.Add(int64(0), int64(0), int64(0), 0.0, 0.0, `</title><script>alert(1)</script>`)
	f.Add(int64(math.MaxInt64/100), int64(-3), int64(1<<40), 1e300, -5.0, "]]><!--&amp;\x00\xff")
	f.Fuzz(func(t *testing.T, requests, errors, invocations int64, p50, p99 float64, project string) {
		body := renderDashboard(t, report(requests, errors, invocations, p50, p99), project)
		svgs := chartSVG.FindAllString(body, -1)
		if len(svgs) != 4 {
			t.Fatalf("%d charts", len(svgs))
		}
		for _, svg := range svgs {
			dec := xml.NewDecoder(strings.NewReader(svg))
			dec.Strict = true
			for {
				tok, err := dec.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("not well-formed: %v\n%s", err, svg)
				}
				if se, ok := tok.(xml.StartElement); ok {
					for _, a := range se.Attr {
						if a.Name.Local == "style" || strings.HasPrefix(a.Name.Local, "on") {
							t.Fatalf("attribute %s in %s", a.Name.Local, se.Name.Local)
						}
					}
				}
			}
			if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
				t.Fatalf("a coordinate is not a number: %s", svg)
			}
		}
	})
}

func TestChartTop(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{{0, 1}, {-4, 1}, {0.3, 0.5}, {1, 1}, {7, 10}, {11, 20}, {199, 200}, {201, 500}, {math.NaN(), 1}, {math.Inf(1), 1}} {
		if got := chartTop(tc.in); got != tc.want {
			t.Errorf("chartTop(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
