package fhir

import (
	"regexp"
	"testing"
)

// v4 is the UUID check apps written for Oystehr apply to ids (Ottehr does
// at 68 call sites).
var v4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestNewIDIsV4AndOrdered: new ids pass a version-4 check and still sort
// in creation order (what the indexes keyed by id gain from).
func TestNewIDIsV4AndOrdered(t *testing.T) {
	prev := ""
	for i := range 10000 {
		id := newID()
		if !v4.MatchString(id) {
			t.Fatalf("id %q is not a version-4 UUID", id)
		}
		if id <= prev {
			t.Fatalf("id %d %q does not sort after %q", i, id, prev)
		}
		prev = id
	}
}
