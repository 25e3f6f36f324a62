package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// chromiumPath is Debian's chromium, which the browser tests drive through
// playwright-core (scripts/test.sh installs it).
const chromiumPath = "/usr/bin/chromium"

// requireChromium fails in CI and skips elsewhere when chromium is missing.
func requireChromium(t *testing.T) {
	t.Helper()
	requireNode(t)
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (apt-get install chromium)", chromiumPath)
		}
		t.Skipf("%s not installed (apt-get install chromium; not CI, so skipping)", chromiumPath)
	}
}

// TestSMARTPagesAccessible runs browser/pages.test.mjs: the sign-in,
// picker, consent and error pages in chromium at a phone's and a laptop's
// size, checked with axe-core, with a screenshot of each
// ($WARD_SCREENSHOTS, else a temporary directory; the paths are logged).
func TestSMARTPagesAccessible(t *testing.T) {
	requireChromium(t)
	w := startWard(t, storetest.Backends()[0])
	admin := w.token(t, w.Admin)

	ids := map[string]string{}
	for _, p := range []struct{ given, mrn string }{{"Alice", "A-100"}, {"Bob", "B-200"}} {
		st, res := w.fhirDo(t, admin, "POST", "Patient", map[string]any{"resourceType": "Patient", "birthDate": "1980-02-03",
			"name":       []any{map[string]any{"given": []string{p.given}, "family": "Smith"}},
			"identifier": []any{map[string]any{"type": map[string]any{"text": "MRN"}, "system": "urn:example:mrn", "value": p.mrn}}})
		if st != 201 {
			t.Fatalf("create patient: %d %v", st, res)
		}
		ids[p.given] = res["id"].(string)
	}
	st, prac := w.fhirDo(t, admin, "POST", "Practitioner", map[string]any{"resourceType": "Practitioner", "name": []any{map[string]any{"family": "Who"}}})
	if st != 201 {
		t.Fatalf("create practitioner: %d", st)
	}
	var role struct{ ID string }
	if st := w.api(t, admin, "POST", "/iam/role", `{"name":"reader","accessPolicy":{"rule":[{"resource":["FHIR:*"],"action":["FHIR:Read","FHIR:Search"],"effect":"Allow"}]}}`, &role); st >= 300 {
		t.Fatalf("create role: %d", st)
	}
	// The application's page is served by the node script on this port.
	appPort := freeAddr(t)[len("127.0.0.1:"):]
	var app struct {
		ID       string `json:"id"`
		ClientID string `json:"clientId"`
	}
	body := fmt.Sprintf(`{"name":"Pages app","allowedCallbackUrls":["http://127.0.0.1:%s/callback"],"refreshTokenEnabled":true}`, appPort)
	if st := w.api(t, admin, "POST", "/application", body, &app); st >= 300 {
		t.Fatalf("create application: %d", st)
	}
	const password = "correct horse battery staple"
	for email, profile := range map[string]string{"alice@example.org": "Patient/" + ids["Alice"], "dr.who@example.org": "Practitioner/" + prac["id"].(string)} {
		w.inviteUser(t, admin, app.ID, role.ID, email, profile, password)
	}

	shots := os.Getenv("WARD_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(t.TempDir(), "screenshots")
	}
	nodeTest(t, "browser/pages.test.mjs", map[string]string{
		"WARD_URL": w.URL, "WARD_CLIENT_ID": app.ClientID, "WARD_APP_PORT": appPort, "WARD_PASSWORD": password,
		"WARD_PATIENT_EMAIL": "alice@example.org", "WARD_PRACTITIONER_EMAIL": "dr.who@example.org", "WARD_PICK": "Bob", "WARD_PICK_MRN": "B-200",
		"WARD_SCREENSHOTS": shots,
	})
	pngs, _ := filepath.Glob(filepath.Join(shots, "*.png"))
	if len(pngs) == 0 {
		t.Errorf("no screenshots in %s", shots)
	}
	for _, p := range pngs {
		t.Logf("screenshot %s", p)
	}
}

// npmInstalled reports whether e2e/node_modules has every package the
// node tests import (an older checkout may lack newer ones).
func npmInstalled() bool {
	for _, p := range []string{"@oystehr/sdk", "playwright-core", "axe-core", "fhirclient"} {
		if _, err := os.Stat(filepath.Join("node_modules", p)); err != nil {
			return false
		}
	}
	return true
}
