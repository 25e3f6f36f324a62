package e2e

import (
	"path/filepath"
	"testing"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestRCMWithSDK runs e2e/rcm.test.mjs: the real @oystehr/sdk's rcm service
// (eligibility 270/271, 837P validation and submission with a 277CA) and
// the payer endpoints against a real `ward serve` with the local
// clearinghouse, on each backend, with authorization and a second project.
func TestRCMWithSDK(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			w := startWard(t, b)
			other := w.createProject(t, "other")
			nodeTest(t, "rcm.test.mjs", map[string]string{
				"WARD_URL":               w.URL,
				"WARD_ADMIN_CREDENTIALS": filepath.Join(w.DataDir, "admin-credentials.json"),
				"WARD_B_CLIENT_ID":       other.ClientID,
				"WARD_B_CLIENT_SECRET":   other.ClientSecret,
			})
		})
	}
}
