package e2e

import (
	"path/filepath"
	"testing"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestERxWithSDK runs e2e/erx.test.mjs on each backend: every erx.* method
// of the real @oystehr/sdk (configured from admin-credentials.json, with a
// fetch that refuses other hosts) through the local provider, with
// authorization, a second project's view and hostile input.
func TestERxWithSDK(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			w := startWard(t, b)
			other := w.createProject(t, "other")
			nodeTest(t, "erx.test.mjs", map[string]string{
				"WARD_URL":               w.URL,
				"WARD_ADMIN_CREDENTIALS": filepath.Join(w.DataDir, "admin-credentials.json"),
				"WARD_B_CLIENT_ID":       other.ClientID,
				"WARD_B_CLIENT_SECRET":   other.ClientSecret,
			})
		})
	}
}
