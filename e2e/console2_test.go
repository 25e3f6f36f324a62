package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// consoleProbeJS logs a line and answers with the payload and whether the
// execution role's token came with the event.
const consoleProbeJS = `exports.index = async (event) => {
  console.log('console-probe line ' + event.body);
  return { statusCode: 200, body: JSON.stringify({ echo: JSON.parse(event.body || '{}'), hasToken: !!event.accessToken }) };
};
`

// TestConsole2 runs browser/console2.test.mjs against a real ward serve:
// zambdas (create with an execution role, upload a zip, invoke and see
// the output, the log line), secrets, FHIR (a Patient with a validation
// error shown, then valid; search; edit; the history diff), a read-only
// developer (no write controls, forced POSTs 403), CSRF, axe-core on every
// page and a screenshot of each.
func TestConsole2(t *testing.T) {
	requireChromium(t)
	// A webhook the project's subscription delivers to (on loopback,
	// opened by --egress-allow).
	var hits atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		hits.Add(1)
	}))
	defer hook.Close()
	w := startWardWith(t, storetest.Backends()[0], "--egress-allow", "127.0.0.1/32")
	admin := w.token(t, w.Admin)
	st, sub := w.fhirDo(t, admin, "POST", "Subscription", map[string]any{"resourceType": "Subscription", "status": "requested",
		"reason": "console", "criteria": "Patient",
		"channel": map[string]any{"type": "rest-hook", "endpoint": hook.URL + "/hook", "payload": "application/fhir+json"}})
	if st != 201 {
		t.Fatalf("create subscription: %d %v", st, sub)
	}
	const password = "correct horse battery staple"
	roles := map[string]string{}
	for name, pol := range map[string]string{
		"console-admin": `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`,
		"console-reader": `{"rule":[{"resource":["Project:Settings"],"action":["Project:GetProjectInfo"],"effect":"Allow"},` +
			`{"resource":["Zambda:Function:*"],"action":["Zambda:ListAllFunctions","Zambda:GetFunction","Zambda:ReadLogs"],"effect":"Allow"},` +
			`{"resource":["Zambda:Secret:*"],"action":["Zambda:ListAllSecrets"],"effect":"Allow"},` +
			`{"resource":["Z3:*"],"action":["Z3:ListBuckets","Z3:ListObjects","Z3:GetObject"],"effect":"Allow"},` +
			`{"resource":["FHIR:*"],"action":["FHIR:Read","FHIR:Search","FHIR:History"],"effect":"Allow"}]}`,
		"fhir-reader": `{"rule":[{"resource":["FHIR:Patient:*"],"action":["FHIR:Read","FHIR:Search"],"effect":"Allow"}]}`,
	} {
		var role struct{ ID string }
		if st := w.api(t, admin, "POST", "/iam/role", fmt.Sprintf(`{"name":%q,"accessPolicy":%s}`, name, pol), &role); st >= 300 {
			t.Fatalf("create role %s: %d", name, st)
		}
		roles[name] = role.ID
	}
	w.inviteDeveloper(t, admin, "admin@example.org", roles["console-admin"], password)
	w.inviteDeveloper(t, admin, "reader@example.org", roles["console-reader"], password)
	zip := zipFiles(t, map[string]string{"index.js": "data:" + consoleProbeJS}, nil)

	shots := os.Getenv("WARD_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(t.TempDir(), "screenshots")
	}
	nodeTest(t, "browser/console2.test.mjs", map[string]string{
		"WARD_URL": w.URL, "WARD_PASSWORD": password, "WARD_ADMIN_EMAIL": "admin@example.org",
		"WARD_READER_EMAIL": "reader@example.org", "WARD_ZIP": zip, "WARD_SCREENSHOTS": shots,
		"WARD_SUBSCRIPTION": sub["id"].(string), "WARD_BUCKET": w.Admin.ProjectID + "-console",
	})
	// What the browser did, as the API sees it: the zambda runs with the
	// role picked in the console.
	var list []struct {
		Name            string  `json:"name"`
		Status          string  `json:"status"`
		ExecutionRoleID *string `json:"executionRoleId"`
	}
	w.api(t, admin, "GET", "/zambda", "", &list)
	if len(list) != 1 || list[0].Status != "Active" || list[0].ExecutionRoleID == nil || *list[0].ExecutionRoleID != roles["fhir-reader"] {
		t.Errorf("zambdas after the console: %+v", list)
	}
	var secrets []map[string]any
	w.api(t, admin, "GET", "/secret", "", &secrets)
	if len(secrets) != 1 || secrets[0]["name"] != "KEPT" {
		t.Errorf("secrets after the console: %v", secrets)
	}
	// The Patient's create and update, then the replay: sent again.
	if n := hits.Load(); n < 3 {
		t.Errorf("the webhook got %d deliveries, want the create, the update and at least one replayed", n)
	}
	pngs, _ := filepath.Glob(filepath.Join(shots, "console2-*.png"))
	if len(pngs) == 0 {
		t.Errorf("no console screenshots in %s", shots)
	}
	for _, p := range pngs {
		t.Logf("screenshot %s", p)
	}
}
