package fhir

import (
	"context"
	"fmt"
	"slices"
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

// TestSearchPagesInIDOrder pages through searches whose driving index
// yields ids in order (a token with system and code, a reference with its
// type; SQLite reads the page straight from the index): every page holds
// the next ids of the whole id-sorted list, none twice (an Observation
// with the code twice is one match), and the total counts each once.
func TestSearchPagesInIDOrder(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b, Config{DefaultCount: 20, MaxCount: 1000})
			ctx := context.Background()
			for i := range 10 {
				code, subject := "c1", "Patient/p1"
				if i%3 == 0 {
					code, subject = "c2", "Patient/p2"
				}
				body := fmt.Sprintf(`{"resourceType":"Observation","status":"final","subject":{"reference":%q},"code":{"coding":[{"system":"http://x","code":%q},{"system":"http://x","code":%q,"display":"again"}]}}`, subject, code, code)
				if _, _, err := f.svc.Create(ctx, f.admin, "Observation", []byte(body), ""); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range []struct {
				query string
				want  int
			}{
				{"code=http://x|c1", 6},
				{"subject=Patient/p1", 6},
				{"subject=Patient/p2&code=http://x|c2", 4},
				{"code=c1", 6}, // no system: not read from the index's order, the same answer
			} {
				t.Run(c.query, func(t *testing.T) {
					all := searchIDs(t, f.svc, f.admin, "Observation", c.query+"&_count=100")
					if len(all) != c.want || !slices.IsSorted(all) {
						t.Fatalf("one page: %v, want %d ids in order", all, c.want)
					}
					var paged []string
					for off := 0; off < len(all)+2; off += 2 {
						page := searchPage(t, f.svc, f.admin, "Observation", fmt.Sprintf("%s&_count=2&_offset=%d&_total=accurate", c.query, off))
						if page.Total != c.want {
							t.Fatalf("offset %d: total %d, want %d", off, page.Total, c.want)
						}
						for _, r := range page.Matches {
							paged = append(paged, r.ID)
						}
					}
					if !slices.Equal(paged, all) {
						t.Fatalf("pages %v, want %v", paged, all)
					}
				})
			}
		})
	}
}

// TestSearchPagesByPrefix pages through string prefix searches with many
// matches (SQLite reads them in the index's (value, id) order): every
// match comes exactly once over the pages, many sharing one value, a
// resource with several matching names once (at its least), one whose
// name changed or that was deleted never, and the total agrees.
func TestSearchPagesByPrefix(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b, Config{DefaultCount: 20, MaxCount: 1000})
			ctx := context.Background()
			// want[query] is the expected set of ids.
			want := map[string]map[string]bool{"name=smi": {}, "name=smith": {}, "name=smi&gender=female": {}, "family=smithson": {}}
			for i := range 40 {
				var names, gender string
				switch i % 5 {
				case 0, 1: // one value shared by many
					names, gender = `{"family":"Smith","given":["A"]}`, "female"
				case 2: // two matching names, and one value in two spellings
					names, gender = `{"family":"Smithson"},{"family":"SMITH"},{"family":"smith"}`, "male"
				case 3:
					names, gender = fmt.Sprintf(`{"family":"Smi%02d"}`, 40-i), "female"
				case 4:
					names, gender = `{"family":"Jones","given":["Smiley"]}`, "male"
				}
				body := fmt.Sprintf(`{"resourceType":"Patient","gender":%q,"name":[%s]}`, gender, names)
				res, _, err := f.svc.Create(ctx, f.admin, "Patient", []byte(body), "")
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case i == 10: // renamed: its old rows must be gone
					if _, _, err := f.svc.Update(ctx, f.admin, "Patient", res.ID, []byte(`{"resourceType":"Patient","id":"`+res.ID+`","name":[{"family":"Brown"}]}`), ""); err != nil {
						t.Fatal(err)
					}
					continue
				case i == 11:
					if err := f.svc.Delete(ctx, f.admin, "Patient", res.ID); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want["name=smi"][res.ID] = true
				if i%5 <= 2 {
					want["name=smith"][res.ID] = true
				}
				if gender == "female" {
					want["name=smi&gender=female"][res.ID] = true
				}
				if i%5 == 2 {
					want["family=smithson"][res.ID] = true
				}
			}
			for query, ids := range want {
				t.Run(query, func(t *testing.T) {
					all := searchIDs(t, f.svc, f.admin, "Patient", query+"&_count=1000")
					if len(all) != len(ids) {
						t.Fatalf("one page: %d ids, want %d", len(all), len(ids))
					}
					for _, size := range []int{1, 3, 7} {
						seen := map[string]bool{}
						var paged []string
						for off := 0; off < len(ids)+size; off += size {
							page := searchPage(t, f.svc, f.admin, "Patient", fmt.Sprintf("%s&_count=%d&_offset=%d&_total=accurate", query, size, off))
							if page.Total != len(ids) {
								t.Fatalf("_count=%d offset %d: total %d, want %d", size, off, page.Total, len(ids))
							}
							for _, r := range page.Matches {
								if seen[r.ID] || !ids[r.ID] {
									t.Fatalf("_count=%d offset %d: %s again or not a match", size, off, r.ID)
								}
								seen[r.ID] = true
								paged = append(paged, r.ID)
							}
						}
						if !slices.Equal(paged, all) {
							t.Fatalf("_count=%d: pages %v, want the one page's order %v", size, paged, all)
						}
					}
				})
			}
		})
	}
}
