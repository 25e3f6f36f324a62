package e2e

import (
	"testing"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestTerminologyWithSDK runs e2e/terminology.test.mjs: the real @oystehr/sdk's
// terminology.searchCpt and searchHcpcs against a project's own code sets, required bindings
// on its FHIR writes, and the FHIR terminology operations over HTTP, with a second project
// that must see none of the first's codes.
func TestTerminologyWithSDK(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			w := startWard(t, b)
			other := w.createProject(t, "other")
			nodeTest(t, "terminology.test.mjs", map[string]string{
				"WARD_URL":             w.URL,
				"WARD_A_CLIENT_ID":     w.Admin.ClientID,
				"WARD_A_CLIENT_SECRET": w.Admin.ClientSecret,
				"WARD_B_CLIENT_ID":     other.ClientID,
				"WARD_B_CLIENT_SECRET": other.ClientSecret,
			})
		})
	}
}
