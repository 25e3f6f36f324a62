package fhir

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestSearchModifierDefects: _id:not is the opposite of _id, _id takes no
// modifier it would ignore, token :text is a string search of the code's
// text (each word's start, case- and accent-blind), and a query too large
// for one SQL statement is a 400 naming the limit.
func TestSearchModifierDefects(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b, Config{})
			ctx := context.Background()
			for id, body := range map[string]string{
				"w1": `{"resourceType":"Observation","id":"w1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"29463-7","display":"Body Weight"}]}}`,
				"w2": `{"resourceType":"Observation","id":"w2","status":"final","code":{"text":"Poids Élevé"}}`,
				"h1": `{"resourceType":"Observation","id":"h1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8302-2","display":"Body height"}],"text":"Height"}}`,
			} {
				if _, _, err := f.svc.Update(ctx, f.admin, "Observation", id, []byte(body), ""); err != nil {
					t.Fatal(err)
				}
			}
			for _, tc := range []struct {
				query string
				want  []string
			}{
				{"_id=w1", []string{"w1"}},
				{"_id:not=w1", []string{"h1", "w2"}},
				{"_id:not=w1,h1", []string{"w2"}},
				{"_id:not=w1&_id:not=w2", []string{"h1"}},
				{"_id:not=w1&code=29463-7", nil},
				{"_id:missing=false", []string{"h1", "w1", "w2"}},
				{"_id:missing=true", nil},
				{"code:text=eight", nil}, // inside a word: no
				{"code:text=weig", []string{"w1"}},
				{"code:text=WEIGHT", []string{"w1"}},
				{"code:text=body", []string{"h1", "w1"}},
				{"code:text=body%20w", []string{"w1"}},
				{"code:text=eleve", []string{"w2"}},
				{"code:text=élevé", []string{"w2"}},
				{"code:text=height", []string{"h1"}},
				{"code:text=weight,height", []string{"h1", "w1"}},
			} {
				vals, _ := url.ParseQuery(tc.query)
				q, err := search.ParseQuery("Observation", vals, false)
				if err != nil {
					t.Fatalf("%s: %v", tc.query, err)
				}
				page, err := f.svc.Search(ctx, f.admin, q)
				if err != nil {
					t.Fatalf("%s: %v", tc.query, err)
				}
				var got []string
				for _, r := range page.Matches {
					got = append(got, r.ID)
				}
				slices.Sort(got)
				if !slices.Equal(got, tc.want) {
					t.Errorf("%s: got %v, want %v", tc.query, got, tc.want)
				}
			}
			many := func(n int, f func(i int) string) []string {
				out := make([]string, n)
				for i := range out {
					out[i] = f(i)
				}
				return out
			}
			for _, tc := range []struct {
				query, limit string
			}{
				{"_id:text=w1", "_id"},
				{"_id:in=http://x", "_id"},
				{"_id=" + strings.Join(many(1000, func(i int) string { return fmt.Sprint("x", i) }), ","), "500 values"},
				{strings.Join(many(500, func(i int) string { return fmt.Sprint("code=c", i) }), "&"), "100 parameters"},
				{strings.Join(many(101, func(i int) string { return fmt.Sprint("_id:not=x", i) }), "&"), "100 parameters"},
			} {
				vals, _ := url.ParseQuery(tc.query)
				_, err := search.ParseQuery("Observation", vals, false)
				err = searchErr(err)
				if !errors.Is(err, fault.ErrInvalid) || !strings.Contains(err.Error(), tc.limit) {
					t.Errorf("%.60s: got %v, want a 400 naming %q", tc.query, err, tc.limit)
				}
			}
			// At the limits, the query runs.
			for _, query := range []string{
				"_id=" + strings.Join(many(search.MaxValues, func(i int) string { return fmt.Sprint("x", i) }), ","),
				strings.Join(many(search.MaxParams, func(i int) string { return fmt.Sprint("code:not=c", i) }), "&"),
			} {
				vals, _ := url.ParseQuery(query)
				q, err := search.ParseQuery("Observation", vals, false)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.svc.Search(ctx, f.admin, q); err != nil {
					t.Fatalf("%.60s: %v", query, err)
				}
			}
		})
	}
}
