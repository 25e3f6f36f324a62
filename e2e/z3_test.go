package e2e

import (
	"testing"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestZ3WithSDK runs e2e/z3.test.mjs (the real @oystehr/sdk z3 client)
// against a server on each backend.
func TestZ3WithSDK(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			w := startWard(t, b)
			nodeTest(t, "z3.test.mjs", map[string]string{
				"WARD_URL":             w.URL,
				"WARD_A_CLIENT_ID":     w.Admin.ClientID,
				"WARD_A_CLIENT_SECRET": w.Admin.ClientSecret,
			})
		})
	}
}
