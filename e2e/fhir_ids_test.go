package e2e

import (
	"regexp"
	"testing"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestFHIRIdsAreV4: ids Ward gives new resources pass the version-4 UUID
// check that Oystehr apps apply (Oystehr's ids are v4), on each backend,
// through creates and transaction entries alike.
func TestFHIRIdsAreV4(t *testing.T) {
	v4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			w := startWard(t, b)
			tok := w.token(t, w.Admin)
			st, p := w.fhirDo(t, tok, "POST", "Patient", patient("Four"))
			if st != 201 || !v4.MatchString(p["id"].(string)) {
				t.Errorf("create: %d, id %v", st, p["id"])
			}
			bundle := map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
				map[string]any{"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111", "resource": patient("InBundle"),
					"request": map[string]any{"method": "POST", "url": "Patient"}},
			}}
			st, out := w.fhirDo(t, tok, "POST", "", bundle)
			if st != 200 {
				t.Fatalf("transaction: %d %v", st, out)
			}
			entry := out["entry"].([]any)[0].(map[string]any)
			loc, _ := entry["response"].(map[string]any)["location"].(string)
			if m := regexp.MustCompile(`Patient/([^/]+)/`).FindStringSubmatch(loc); m == nil || !v4.MatchString(m[1]) {
				t.Errorf("transaction entry location %q: want a v4 id", loc)
			}
		})
	}
}
