package e2e

import (
	"testing"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestFHIRWithSDK runs e2e/fhir.test.mjs (the real @oystehr/sdk FHIR
// client) against a server on each backend.
func TestFHIRWithSDK(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			w := startWard(t, b)
			nodeTest(t, "fhir.test.mjs", map[string]string{
				"WARD_URL":             w.URL,
				"WARD_A_CLIENT_ID":     w.Admin.ClientID,
				"WARD_A_CLIENT_SECRET": w.Admin.ClientSecret,
			})
		})
	}
}
