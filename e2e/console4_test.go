package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestConsole4 runs browser/console4.test.mjs against a real ward serve:
// the developers, users and applications pages (invite a developer and a
// user, list and filter them, create an application and rotate its
// secret), exports (start one, see it complete, download a file, cancel
// another), the highlighted JSON of a resource, a read-only developer (no
// write controls, forced POSTs 403); axe-core on every new page, no CSP
// errors, no other host, a screenshot of each.
func TestConsole4(t *testing.T) {
	requireChromium(t)
	w := startWardWith(t, storetest.Backends()[0])
	admin := w.token(t, w.Admin)
	const password = "correct horse battery staple"
	roles := map[string]string{}
	for name, pol := range map[string]string{
		"console-admin": `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`,
		"console-reader": `{"rule":[{"resource":["Project:Settings"],"action":["Project:GetProjectInfo"],"effect":"Allow"},` +
			`{"resource":["IAM:*"],"action":["IAM:ListAllDevelopers","IAM:GetDeveloper","IAM:ListAllRoles"],"effect":"Allow"},` +
			`{"resource":["App:*"],"action":["App:ListAllUsers","App:GetUser","App:ListAllApplications","App:GetApplication"],"effect":"Allow"}]}`,
	} {
		var role struct{ ID string }
		if st := w.api(t, admin, "POST", "/iam/role", fmt.Sprintf(`{"name":%q,"accessPolicy":%s}`, name, pol), &role); st >= 300 {
			t.Fatalf("create role %s: %d", name, st)
		}
		roles[name] = role.ID
	}
	w.inviteDeveloper(t, admin, "admin@example.org", roles["console-admin"], password)
	w.inviteDeveloper(t, admin, "reader@example.org", roles["console-reader"], password)
	var patient string
	for i := range 5 {
		st, p := w.fhirDo(t, admin, "POST", "Patient", map[string]any{"resourceType": "Patient", "active": true,
			"name": []map[string]any{{"family": fmt.Sprintf("Export%d", i), "given": []string{"Ada"}}}, "birthDate": "1990-01-02"})
		if st != 201 {
			t.Fatalf("create patient: %d %v", st, p)
		}
		patient = p["id"].(string)
	}

	shots := os.Getenv("WARD_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(t.TempDir(), "screenshots")
	}
	nodeTest(t, "browser/console4.test.mjs", map[string]string{
		"WARD_URL": w.URL, "WARD_PASSWORD": password, "WARD_ADMIN_EMAIL": "admin@example.org",
		"WARD_READER_EMAIL": "reader@example.org", "WARD_SCREENSHOTS": shots, "WARD_PATIENT": patient,
		"WARD_ROLE": "console-admin",
	})
	// What the browser did, as the API sees it.
	var devs []struct{ Email string }
	w.api(t, admin, "GET", "/developer", "", &devs)
	invited := false
	for _, d := range devs {
		invited = invited || d.Email == "invited@example.org"
	}
	if !invited {
		t.Errorf("developers after the console: %+v", devs)
	}
	var apps []struct{ Name string }
	w.api(t, admin, "GET", "/application", "", &apps)
	if len(apps) != 1 || apps[0].Name != "Patient portal" {
		t.Errorf("applications after the console: %+v", apps)
	}
	pngs, _ := filepath.Glob(filepath.Join(shots, "console4-*.png"))
	if len(pngs) == 0 {
		t.Errorf("no console screenshots in %s", shots)
	}
	for _, p := range pngs {
		t.Logf("screenshot %s", p)
	}
}
