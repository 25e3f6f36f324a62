package fhir

import (
	"context"
	"fmt"
	"testing"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestSearchTotalModes checks R4's _total against a service whose count
// stops at 5 matches: the default and estimate are exact up to the limit
// and left out past it, accurate always counts, none never does; the
// limit holds for a search counted on the index alone and for one that
// joins the resources (_lastUpdated keeps it off the index-only count).
func TestSearchTotalModes(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b, Config{DefaultCount: 20, MaxCount: 1000, TotalLimit: 5})
			ctx := context.Background()
			for i := range 12 {
				family := "Manyfold"
				if i%3 == 0 {
					family = "Fewfold" // 4 of them: within the limit
				}
				body := fmt.Sprintf(`{"resourceType":"Patient","name":[{"family":%q,"given":["A%d"]},{"family":%q}]}`, family, i, family)
				if _, _, err := f.svc.Create(ctx, f.admin, "Patient", []byte(body), ""); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range []struct {
				query     string
				total     int // -1: left out
				matches   int
				wantsNext bool
			}{
				{"name=Manyfold&_count=2", -1, 2, true},
				{"name=Manyfold&_count=2&_total=estimate", -1, 2, true},
				{"name=Manyfold&_count=2&_total=accurate", 8, 2, true},
				{"name=Manyfold&_count=2&_total=none", -1, 2, true},
				{"name=Manyfold&_count=20", 8, 8, false}, // a first page that is not full: its length
				{"name=Fewfold&_count=2", 4, 2, true},    // each has two matching names: counted once
				{"name=Fewfold&_count=2&_total=estimate", 4, 2, true},
				{"name=Manyfold&_lastUpdated=gt2000-01-01&_count=2", -1, 2, true},
				{"name=Manyfold&_lastUpdated=gt2000-01-01&_count=2&_total=accurate", 8, 2, true},
				{"name=Fewfold&_lastUpdated=gt2000-01-01&_count=2", 4, 2, true},
				{"name=Manyfold&_summary=count", 8, 0, false}, // a count is what it asks for
			} {
				t.Run(c.query, func(t *testing.T) {
					page := searchPage(t, f.svc, f.admin, "Patient", c.query)
					if page.Total != c.total || len(page.Matches) != c.matches {
						t.Fatalf("total %d with %d matches, want %d with %d", page.Total, len(page.Matches), c.total, c.matches)
					}
					b := (&Handler{}).searchBundle(page)
					next := false
					for _, l := range b.Link {
						next = next || l.Relation == "next"
					}
					if next != c.wantsNext || (b.Total == nil) != (c.total < 0) {
						t.Fatalf("bundle: next link %v (want %v), total %v", next, c.wantsNext, b.Total)
					}
				})
			}
		})
	}
}
