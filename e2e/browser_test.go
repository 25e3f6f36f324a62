package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestBrowserSMARTApp runs browser/fhirclient.test.mjs: fhirclient's
// browser build in chromium launches against Ward, signs Alice (and then
// Bob) in, reads and refreshes; the browser never shows data Ward refused
// (after a revoke, for the next user) and CORS lets only the origin the
// application lists read Ward's answers.
func TestBrowserSMARTApp(t *testing.T) {
	requireChromium(t)
	w := startWard(t, storetest.Backends()[0])
	admin := w.token(t, w.Admin)

	ids := map[string]string{}
	for _, name := range []string{"Alice", "Bob"} {
		st, p := w.fhirDo(t, admin, "POST", "Patient", patient(name))
		if st != 201 {
			t.Fatalf("create patient: %d %v", st, p)
		}
		ids[name] = p["id"].(string)
	}
	var role struct{ ID string }
	if st := w.api(t, admin, "POST", "/iam/role", `{"name":"reader","accessPolicy":{"rule":[{"resource":["FHIR:*"],"action":["FHIR:Read","FHIR:Search"],"effect":"Allow"}]}}`, &role); st >= 300 {
		t.Fatalf("create role: %d", st)
	}
	appPort := freeAddr(t)[len("127.0.0.1:"):]
	appOrigin := "http://127.0.0.1:" + appPort
	var app struct {
		ID       string `json:"id"`
		ClientID string `json:"clientId"`
	}
	body := fmt.Sprintf(`{"name":"fhirclient app","allowedCallbackUrls":[%q],"allowedCORSOriginsUrls":[%q],"refreshTokenEnabled":true}`,
		appOrigin+"/app.html", appOrigin)
	if st := w.api(t, admin, "POST", "/application", body, &app); st >= 300 {
		t.Fatalf("create application: %d", st)
	}
	const password = "correct horse battery staple"
	for _, name := range []string{"Alice", "Bob"} {
		w.inviteUser(t, admin, app.ID, role.ID, strings.ToLower(name)+"@example.org", "Patient/"+ids[name], password)
	}
	nodeTest(t, "browser/fhirclient.test.mjs", map[string]string{
		"WARD_URL": w.URL, "WARD_CLIENT_ID": app.ClientID, "WARD_APP_PORT": appPort, "WARD_PASSWORD": password,
		"WARD_ALICE_EMAIL": "alice@example.org", "WARD_ALICE_ID": ids["Alice"],
		"WARD_BOB_EMAIL": "bob@example.org", "WARD_BOB_ID": ids["Bob"],
		"WARD_SCREENSHOTS": t.TempDir(),
	})
}
