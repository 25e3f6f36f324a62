package store

import (
	"net/url"
	"testing"

	"github.com/wardhealth/ward/internal/fhir/search"
)

// The count reads the index alone only for a search that is one driving
// subquery: anything that tests the resource row (deleted, _lastUpdated,
// _id, a negation, a policy restriction) keeps the join.
func TestIDSubquery(t *testing.T) {
	for _, tc := range []struct {
		typ, query string
		restrict   bool
		want       bool
	}{
		{"Patient", "name=smith", false, true},
		{"Patient", "name=smith,jones", false, false}, // two IN lists ORed
		{"Observation", "subject=Patient/abc&code=http://loinc.org|1234-5", false, true},
		{"Observation", "subject:Patient.name=smith", false, true},
		{"Patient", "name=smith&_lastUpdated=gt2020-01-01", false, false},
		{"Patient", "_id=abc", false, false},
		{"Patient", "gender:not=male", false, false},
		{"Patient", "name:missing=true", false, false},
		{"Patient", "", false, false},
		{"Patient", "name=smith", true, false},
	} {
		v, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		q, err := search.ParseQuery(tc.typ, v, false)
		if err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		p := &planner{dialect: SQLite}
		where := p.resourceWhere("r", "proj", tc.typ, q)
		if tc.restrict {
			allowed, _ := search.ParseQuery(tc.typ, url.Values{"gender": {"female"}}, false)
			where += p.restriction("r", "proj", Restriction{Allowed: []*search.Query{allowed}})
		}
		if _, got := idSubquery(where); got != tc.want {
			t.Errorf("%s?%s (restricted %v): index-only count %v, want %v\n%s", tc.typ, tc.query, tc.restrict, got, tc.want, where)
		}
	}
}
