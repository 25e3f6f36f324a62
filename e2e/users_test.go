package e2e

import (
	"testing"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestUsersWithSDK runs e2e/users.test.mjs (the real @oystehr/sdk: the
// application and user resources) against a server on each backend, with
// two projects.
func TestUsersWithSDK(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			w := startWard(t, b)
			other := w.createProject(t, "Other")
			nodeTest(t, "users.test.mjs", map[string]string{
				"WARD_URL":             w.URL,
				"WARD_A_CLIENT_ID":     w.Admin.ClientID,
				"WARD_A_CLIENT_SECRET": w.Admin.ClientSecret,
				"WARD_B_CLIENT_ID":     other.ClientID,
				"WARD_B_CLIENT_SECRET": other.ClientSecret,
			})
		})
	}
}
