package fhir

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// fold lowercases and strips the accents used in the data set, as an
// independent stand-in for the index's string normalisation.
func fold(s string) string {
	return strings.NewReplacer("á", "a", "é", "e", "í", "i", "ó", "o", "ú", "u", "ë", "e", "É", "e").Replace(strings.ToLower(s))
}

// span is a date's [lo, hi) at its precision (day or year), in unix ms.
func span(s string) (int64, int64) {
	if len(s) == 4 {
		t, _ := time.Parse("2006", s)
		return t.UnixMilli(), t.AddDate(1, 0, 0).UnixMilli()
	}
	t, _ := time.Parse("2006-01-02", s)
	return t.UnixMilli(), t.AddDate(0, 0, 1).UnixMilli()
}

func ids[T any](xs []T, keep func(T) bool, id func(T) string) []string {
	var out []string
	for _, x := range xs {
		if keep(x) {
			out = append(out, id(x))
		}
	}
	return out
}

func pid(p patient) string     { return p.ID }
func oid(o observation) string { return o.ID }
func eid(e encounter) string   { return e.ID }

type searchCase struct {
	typ, query string
	want       func(d *dataset) []string
	ordered    bool
}

func searchCases() []searchCase {
	d1980lo, d1980hi := span("1980")
	ge1990, _ := span("1990-06-01")
	_, gt2010 := time.Date(2010, 6, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), time.Date(2010, 6, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	lt1950, _ := span("1950")
	_, sa2015 := span("2015")
	eb1940, _ := span("1940")
	y2020lo, y2020hi := span("2020")
	patients := func(keep func(patient) bool) func(*dataset) []string {
		return func(d *dataset) []string { return ids(d.patients, keep, pid) }
	}
	obs := func(keep func(observation) bool) func(*dataset) []string {
		return func(d *dataset) []string { return ids(d.observations, keep, oid) }
	}
	byID := func(d *dataset, id string) patient {
		for _, p := range d.patients {
			if p.ID == id {
				return p
			}
		}
		return patient{}
	}
	return []searchCase{
		// string: default prefix, :exact, :contains, accents
		{"Patient", "family=smi", patients(func(p patient) bool { return strings.HasPrefix(fold(p.Family), "smi") }), false},
		{"Patient", "family:exact=García", patients(func(p patient) bool { return p.Family == "García" }), false},
		{"Patient", "family:exact=garcia", patients(func(patient) bool { return false }), false},
		{"Patient", "family:contains=arc", patients(func(p patient) bool { return strings.Contains(fold(p.Family), "arc") }), false},
		{"Patient", "name=zoe", patients(func(p patient) bool { return strings.HasPrefix(fold(p.Given), "zoe") }), false},
		{"Patient", "address-city=BOSTON", patients(func(p patient) bool { return p.City == "Boston" }), false},
		// token: code, system|code, |code, system|, :not, booleans, OR
		{"Patient", "gender=male", patients(func(p patient) bool { return p.Gender == "male" }), false},
		{"Patient", "gender:not=male", patients(func(p patient) bool { return p.Gender != "male" }), false},
		{"Patient", "gender=other,unknown", patients(func(p patient) bool { return p.Gender == "other" || p.Gender == "unknown" }), false},
		{"Patient", "identifier=http://hospital.example/mrn|MRN00042", patients(func(p patient) bool { return p.MRN == "MRN00042" }), false},
		{"Patient", "identifier=MRN00042", patients(func(p patient) bool { return p.MRN == "MRN00042" }), false},
		{"Patient", "identifier=|MRN00042", patients(func(patient) bool { return false }), false},
		{"Patient", "identifier=http://other.example|MRN00042", patients(func(patient) bool { return false }), false},
		{"Patient", "active=false&deceased=true", patients(func(p patient) bool { return !p.Active && p.Deceased }), false},
		// date prefixes on day- and year-precision birth dates
		{"Patient", "birthdate=1980", patients(func(p patient) bool { lo, hi := span(p.BirthDate); return lo >= d1980lo && hi <= d1980hi }), false},
		{"Patient", "birthdate=ne1980", patients(func(p patient) bool { lo, hi := span(p.BirthDate); return !(lo >= d1980lo && hi <= d1980hi) }), false},
		{"Patient", "birthdate=ge1990-06-01", patients(func(p patient) bool {
			lo, hi := span(p.BirthDate)
			return hi > ge1990+24*3600*1000 || (lo >= ge1990 && hi <= ge1990+24*3600*1000)
		}), false},
		{"Patient", "birthdate=gt2010-05-31", patients(func(p patient) bool { _, hi := span(p.BirthDate); return hi > gt2010 }), false},
		{"Patient", "birthdate=lt1950", patients(func(p patient) bool { lo, _ := span(p.BirthDate); return lo < lt1950 }), false},
		{"Patient", "birthdate=sa2015", patients(func(p patient) bool { lo, _ := span(p.BirthDate); return lo >= sa2015 }), false},
		{"Patient", "birthdate=eb1940", patients(func(p patient) bool { _, hi := span(p.BirthDate); return hi <= eb1940 }), false},
		// reference: Type/id, :missing, chained, _has
		{"Patient", "general-practitioner=Practitioner/prac-3", patients(func(p patient) bool { return p.GP == "prac-3" }), false},
		{"Patient", "general-practitioner:missing=true", patients(func(p patient) bool { return p.GP == "" }), false},
		// Negations drive (all clauses negative) or are tested inside a positive driving clause's subquery.
		{"Patient", "gender:not=male&general-practitioner:missing=true", patients(func(p patient) bool { return p.Gender != "male" && p.GP == "" }), false},
		{"Patient", "general-practitioner:missing=true&gender:not=female", patients(func(p patient) bool { return p.GP == "" && p.Gender != "female" }), false},
		{"Patient", "gender=female&general-practitioner:missing=true&_lastUpdated=gt2000", patients(func(p patient) bool { return p.Gender == "female" && p.GP == "" }), false},
		{"Patient", "_has:Observation:subject:code=8867-4&gender=female", func(d *dataset) []string {
			with := map[string]bool{}
			for _, o := range d.observations {
				if o.Code == "8867-4" {
					with[o.Patient] = true
				}
			}
			return ids(d.patients, func(p patient) bool { return with[p.ID] && p.Gender == "female" }, pid)
		}, false},
		{"Patient", "_id=pat-0001,pat-0002,nope", patients(func(p patient) bool { return p.ID == "pat-0001" || p.ID == "pat-0002" }), false},
		{"Observation", "subject=Patient/pat-0005", obs(func(o observation) bool { return o.Patient == "pat-0005" }), false},
		{"Observation", "subject=pat-0005&code=http://loinc.org|8867-4", obs(func(o observation) bool { return o.Patient == "pat-0005" && o.Code == "8867-4" }), false},
		{"Observation", "subject:Patient.family=smith&status=final,amended", func(d *dataset) []string {
			return ids(d.observations, func(o observation) bool {
				return strings.HasPrefix(fold(byID(d, o.Patient).Family), "smith") && (o.Status == "final" || o.Status == "amended")
			}, oid)
		}, false},
		// quantity and number prefixes, with units
		{"Observation", "value-quantity=gt150", obs(func(o observation) bool { return o.Value > 150 }), false},
		{"Observation", "value-quantity=le20.5|http://unitsofmeasure.org|kg", obs(func(o observation) bool { return o.Value <= 20.5 && o.Unit == "kg" }), false},
		{"Observation", "value-quantity=100", obs(func(o observation) bool { return o.Value >= 99.5 && o.Value < 100.5 }), false},
		{"Observation", "value-quantity=100.0", obs(func(o observation) bool { return o.Value >= 99.95 && o.Value < 100.05 }), false},
		// composites: both components from the same element
		{"Observation", "code-value-quantity=http://loinc.org|8480-6$gt150", obs(func(o observation) bool { return o.Code == "8480-6" && o.Value > 150 }), false},
		{"Observation", "code-value-quantity=29463-7$le20.5|http://unitsofmeasure.org|kg", obs(func(o observation) bool { return o.Code == "29463-7" && o.Value <= 20.5 && o.Unit == "kg" }), false},
		{"Observation", "combo-code-value-quantity=http://loinc.org|8867-4$ge100,http://loinc.org|8310-5$lt36", obs(func(o observation) bool {
			return o.Code == "8867-4" && o.Value >= 100 || o.Code == "8310-5" && o.Value < 36
		}), false},
		{"Observation", "code-value-quantity=http://loinc.org|2339-0$ap100&status=final", obs(func(o observation) bool {
			return o.Code == "2339-0" && o.Value >= 90 && o.Value <= 110 && o.Status == "final"
		}), false},
		{"Observation", "code-value-quantity:missing=true", obs(func(o observation) bool { return false }), false},
		{"Observation", "code=8310-5&date=ge2024-01-01", obs(func(o observation) bool { return o.Code == "8310-5" && o.Effective >= "2024-01-01" }), false},
		// _filter: and, or, not, parentheses and its operators, alone or with parameters
		{"Patient", "_filter=" + url.QueryEscape(`family eq "smith" or (gender eq other and birthdate lt 1950)`), patients(func(p patient) bool {
			lo, _ := span(p.BirthDate)
			return fold(p.Family) == "smith" || (p.Gender == "other" && lo < lt1950)
		}), false},
		{"Patient", "gender=female&_filter=" + url.QueryEscape(`not (address-city eq Boston) and family co "r"`), patients(func(p patient) bool {
			return p.Gender == "female" && p.City != "Boston" && strings.Contains(fold(p.Family), "r")
		}), false},
		{"Patient", "_filter=" + url.QueryEscape(`family ew "ez" and general-practitioner pr false`), patients(func(p patient) bool {
			return strings.HasSuffix(fold(p.Family), "ez") && p.GP == ""
		}), false},
		{"Patient", "_filter=" + url.QueryEscape(`gender ne male and identifier eq http://hospital.example/mrn|MRN00042`), patients(func(p patient) bool {
			return p.Gender != "male" && p.MRN == "MRN00042"
		}), false},
		{"Observation", "_filter=" + url.QueryEscape(`code eq http://loinc.org|8480-6 and (value-quantity gt 150 or value-quantity le 90) or subject re Patient/pat-0007`), obs(func(o observation) bool {
			return o.Code == "8480-6" && (o.Value > 150 || o.Value <= 90) || o.Patient == "pat-0007"
		}), false},
		{"Observation", "_filter=" + url.QueryEscape(`status ne final and date ge 2024-01-01`), obs(func(o observation) bool { return o.Status != "final" && o.Effective >= "2024-01-01" }), false},
		// periods: Encounter.date with and without an end
		{"Encounter", "date=2020", func(d *dataset) []string {
			return ids(d.encounters, func(e encounter) bool {
				if e.End == "" {
					return false
				}
				lo, _ := span(e.Start)
				_, hi := span(e.End)
				return lo >= y2020lo && hi <= y2020hi
			}, eid)
		}, false},
		{"Encounter", "status=finished&class=EMER", func(d *dataset) []string {
			return ids(d.encounters, func(e encounter) bool { return e.Status == "finished" && e.Class == "EMER" }, eid)
		}, false},
		{"Condition", "code=http://snomed.info/sct|44054006&clinical-status=active", func(d *dataset) []string {
			return ids(d.conditions, func(c condition) bool { return c.Code == "44054006" && c.Clinical == "active" }, func(c condition) string { return c.ID })
		}, false},
		{"MedicationRequest", "code=197361&status=active&authoredon=ge2023", func(d *dataset) []string {
			return ids(d.medRequests, func(m medRequest) bool { return m.Rx == "197361" && m.Status == "active" && m.Authored >= "2023" },
				func(m medRequest) string { return m.ID })
		}, false},
		// _sort on several keys, descending
		{"Patient", "family=smith,jones&_sort=family,-birthdate,_id", func(d *dataset) []string {
			ps := slices.Clone(d.patients)
			ps = slices.DeleteFunc(ps, func(p patient) bool {
				f := fold(p.Family)
				return !strings.HasPrefix(f, "smith") && !strings.HasPrefix(f, "jones")
			})
			sort.SliceStable(ps, func(i, j int) bool {
				a, b := ps[i], ps[j]
				if fold(a.Family) != fold(b.Family) {
					return fold(a.Family) < fold(b.Family)
				}
				al, _ := span(a.BirthDate)
				bl, _ := span(b.BirthDate)
				if al != bl {
					return al > bl
				}
				return a.ID < b.ID
			})
			return ids(ps, func(patient) bool { return true }, pid)
		}, true},
	}
}

// searchFixture loads the data set once per backend.
func searchFixture(t *testing.T, b storetest.Backend) (*Service, auth.Principal, *dataset) {
	t.Helper()
	f := newFixture(t, b, Config{DefaultCount: 20, MaxCount: 1000})
	svc, p := f.svc, f.admin
	d := generate(1000)
	start := time.Now()
	d.load(t, svc, p)
	t.Logf("%s: loaded %d resources in %v", b.Name, 10+len(d.patients)+len(d.encounters)+len(d.observations)+len(d.conditions)+len(d.medRequests), time.Since(start))
	return svc, p, d
}

func TestSearchSuite(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			svc, p, d := searchFixture(t, b)
			ctx := context.Background()
			for _, c := range searchCases() {
				t.Run(c.typ+"?"+c.query, func(t *testing.T) {
					vals, _ := url.ParseQuery(c.query + "&_count=1000")
					q, err := search.ParseQuery(c.typ, vals, false)
					if err != nil {
						t.Fatal(err)
					}
					page, err := svc.Search(ctx, p, q)
					if err != nil {
						t.Fatal(err)
					}
					want := c.want(d)
					if testing.Verbose() {
						t.Logf("%d expected", len(want))
					}
					var got []string
					for _, r := range page.Matches {
						// Each row keeps its own content (the store keeps
						// the driver's buffer for it).
						if !bytes.Contains(r.Content, []byte(`"id":"`+r.ID+`"`)) {
							t.Fatalf("match %s holds content %.80s", r.ID, r.Content)
						}
						got = append(got, r.ID)
					}
					if !c.ordered {
						slices.Sort(got)
						slices.Sort(want)
					}
					if !slices.Equal(got, want) || page.Total != len(want) {
						t.Fatalf("got %d results (total %d), want %d\n got: %v\nwant: %v", len(got), page.Total, len(want), head(got), head(want))
					}
				})
			}
			t.Run("paging keeps totals", func(t *testing.T) {
				all := searchIDs(t, svc, p, "Patient", "gender=female&_sort=_id&_count=1000")
				var paged []string
				for off := 0; ; off += 7 {
					page := searchPage(t, svc, p, "Patient", "gender=female&_sort=_id&_count=7&_offset="+itoa(off))
					if page.Total != len(all) {
						t.Fatalf("total on page at %d = %d, want %d", off, page.Total, len(all))
					}
					for _, r := range page.Matches {
						paged = append(paged, r.ID)
					}
					if len(page.Matches) < 7 {
						break
					}
				}
				if !slices.Equal(paged, all) {
					t.Fatalf("pages differ from the whole: %d vs %d", len(paged), len(all))
				}
			})
			t.Run("_summary=count", func(t *testing.T) {
				page := searchPage(t, svc, p, "Patient", "gender=male&_summary=count")
				want := len(ids(d.patients, func(x patient) bool { return x.Gender == "male" }, pid))
				if page.Total != want || len(page.Matches) != 0 {
					t.Fatalf("total %d with %d entries, want %d and none", page.Total, len(page.Matches), want)
				}
			})
			t.Run("_include and _revinclude", func(t *testing.T) {
				page := searchPage(t, svc, p, "Observation", "subject=pat-0003&_include=Observation:subject")
				if len(page.Included) != 1 || page.Included[0].ID != "pat-0003" {
					t.Fatalf("included = %v", page.Included)
				}
				page = searchPage(t, svc, p, "Patient", "_id=pat-0003&_revinclude=Observation:subject")
				want := ids(d.observations, func(o observation) bool { return o.Patient == "pat-0003" }, oid)
				var got []string
				for _, r := range page.Included {
					got = append(got, r.ID)
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("revincluded %v, want %v", got, want)
				}
				// A _revinclude that finds nothing includes nothing.
				page = searchPage(t, svc, p, "Patient", "_id=pat-0003&_revinclude=MedicationRequest:subject")
				wantMR := ids(d.medRequests, func(m medRequest) bool { return m.Patient == "pat-0003" }, func(m medRequest) string { return m.ID })
				if len(page.Included) != len(wantMR) {
					t.Fatalf("_revinclude=MedicationRequest:subject included %d, want %v", len(page.Included), wantMR)
				}
				// _revinclude=*: everything that points at the patient.
				page = searchPage(t, svc, p, "Patient", "_id=pat-0003&_revinclude=*")
				want = append(want, ids(d.encounters, func(e encounter) bool { return e.Patient == "pat-0003" }, func(e encounter) string { return e.ID })...)
				want = append(want, ids(d.conditions, func(c condition) bool { return c.Patient == "pat-0003" }, func(c condition) string { return c.ID })...)
				want = append(want, ids(d.medRequests, func(m medRequest) bool { return m.Patient == "pat-0003" }, func(m medRequest) string { return m.ID })...)
				got = got[:0]
				for _, r := range page.Included {
					got = append(got, r.ID)
				}
				slices.Sort(got)
				slices.Sort(want)
				if len(want) < 2 || !slices.Equal(got, want) {
					t.Fatalf("_revinclude=* included %v, want %v", got, want)
				}
			})
			// Last: these add resources to the data set.
			t.Run("Location near", func(t *testing.T) {
				// corner is 7.8 km north and 7.8 km east of annarbor: 11.0 km
				// away, inside the 10 km box but not the circle.
				for id, pos := range map[string]string{"annarbor": "42.2808,-83.7430", "detroit": "42.3314,-83.0458", "suva": "-18.1416,178.4419", "taveuni": "-16.8,-179.97",
					"corner": "42.3508,-83.648"} {
					lat, lon, _ := strings.Cut(pos, ",")
					body := `{"resourceType":"Location","id":"` + id + `","position":{"latitude":` + lat + `,"longitude":` + lon + `}}`
					if _, _, err := svc.Update(ctx, p, "Location", id, []byte(body), ""); err != nil {
						t.Fatal(err)
					}
				}
				for query, want := range map[string][]string{
					"near=42.2808|-83.7430|10|km":               {"annarbor"},
					"near=42.2808|-83.7430|11.2|km":             {"annarbor", "corner"},
					"near=42.2808|-83.7430|60|km":               {"annarbor", "corner", "detroit"},
					"near=42.2808|-83.7430|40|[mi_i]":           {"annarbor", "corner", "detroit"},
					"near=42.33|-83.05":                         {"detroit"},
					"near=-17.5|179.9|300|km":                   {"suva", "taveuni"}, // across the antimeridian
					"near=-17.5|179.9|300|km&_id=taveuni":       {"taveuni"},
					"near=0|0|100|km":                           nil,
					"near=42.2808|-83.7430|10|km,-18.14|178.44": {"annarbor", "suva"},
					"near=42.3508|-83.648|10900|m":              {"corner"},
					"near=0|0|20100|km":                         {"annarbor", "corner", "detroit", "suva", "taveuni"}, // the whole globe
				} {
					got := searchIDs(t, svc, p, "Location", query)
					slices.Sort(got)
					if !slices.Equal(got, want) {
						t.Errorf("%s: got %v, want %v", query, got, want)
					}
				}
			})
			t.Run("composite components pair within one element", func(t *testing.T) {
				bp := `{"resourceType":"Observation","id":"bp-1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"component":[` +
					`{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":120,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}},` +
					`{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":80,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]}`
				if _, _, err := svc.Update(ctx, p, "Observation", "bp-1", []byte(bp), ""); err != nil {
					t.Fatal(err)
				}
				for query, want := range map[string][]string{
					"component-code-value-quantity=http://loinc.org|8480-6$120":                                    {"bp-1"},
					"component-code-value-quantity=http://loinc.org|8480-6$gt100|http://unitsofmeasure.org|mm[Hg]": {"bp-1"},
					// 80 is the diastolic value, not the systolic one.
					"component-code-value-quantity=http://loinc.org|8480-6$80":   nil,
					"component-code-value-quantity=http://loinc.org|8462-4$80":   {"bp-1"},
					"component-code-value-quantity=http://loinc.org|8462-4$lt70": nil,
					"combo-code-value-quantity=85354-9$120":                      nil,
					"combo-code-value-quantity=8462-4$80&_id=bp-1":               {"bp-1"},
					"component-code-value-quantity:missing=false&code=85354-9":   {"bp-1"},
					"code-value-quantity=http://loinc.org|85354-9$120":           nil,
				} {
					if got := searchIDs(t, svc, p, "Observation", query); !slices.Equal(got, want) {
						t.Errorf("%s: got %v, want %v", query, got, want)
					}
				}
			})
		})
	}
}

func searchPage(t *testing.T, svc *Service, p auth.Principal, typ, query string) Page {
	t.Helper()
	vals, _ := url.ParseQuery(query)
	q, err := search.ParseQuery(typ, vals, false)
	if err != nil {
		t.Fatal(err)
	}
	page, err := svc.Search(context.Background(), p, q)
	if err != nil {
		t.Fatal(err)
	}
	return page
}

func searchIDs(t *testing.T, svc *Service, p auth.Principal, typ, query string) []string {
	var out []string
	for _, r := range searchPage(t, svc, p, typ, query).Matches {
		out = append(out, r.ID)
	}
	return out
}

func head(xs []string) []string {
	if len(xs) > 12 {
		return xs[:12]
	}
	return xs
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
