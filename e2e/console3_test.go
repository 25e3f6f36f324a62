package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestConsole3 runs browser/console3.test.mjs against a real ward serve,
// twice around a restart: the dashboard after some API traffic (non-zero
// requests, an error, its charts), a Z3 upload by dropping a file on the
// folder (a synthetic drop event with a DataTransfer) and its download;
// then ward serve is killed and started again, and the same browser
// session (its saved cookies) still opens the console and its forms still
// pass the CSRF check. axe-core on every page, no CSP errors, no request
// to another host, screenshots console3-*.png.
func TestConsole3(t *testing.T) {
	requireChromium(t)
	w := startWard(t, storetest.Backends()[0])
	admin := w.token(t, w.Admin)
	const password = "correct horse battery staple"
	var role struct{ ID string }
	if st := w.api(t, admin, "POST", "/iam/role", `{"name":"console-admin","accessPolicy":{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}}`, &role); st >= 300 {
		t.Fatalf("create role: %d", st)
	}
	w.inviteDeveloper(t, admin, "admin@example.org", role.ID, password)
	// Traffic the dashboard shows: five reads and one 404.
	for range 5 {
		if st := w.api(t, admin, "GET", "/project", "", nil); st != 200 {
			t.Fatalf("project: %d", st)
		}
	}
	if st, _ := w.fhirDo(t, admin, "GET", "Patient/no-such-patient", nil); st != 404 {
		t.Fatalf("missing patient: %d", st)
	}
	bucket := w.Admin.ProjectID + "-drop"
	if st := w.api(t, admin, "PUT", "/z3/"+bucket, "", nil); st != 200 {
		t.Fatalf("bucket: %d", st)
	}
	shots := os.Getenv("WARD_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(t.TempDir(), "screenshots")
	}
	env := map[string]string{"WARD_URL": w.URL, "WARD_PASSWORD": password, "WARD_ADMIN_EMAIL": "admin@example.org",
		"WARD_BUCKET": bucket, "WARD_SCREENSHOTS": shots, "WARD_STATE": filepath.Join(t.TempDir(), "browser-state.json"),
		"WARD_PHASE": "before"}
	nodeTest(t, "browser/console3.test.mjs", env)

	// A restart as a crash does it: nothing of the old process's memory
	// survives, only the database (and the master key file).
	w.kill9(t)
	w.launch(t)
	env["WARD_PHASE"] = "after"
	nodeTest(t, "browser/console3.test.mjs", env)
	pngs, _ := filepath.Glob(filepath.Join(shots, "console3-*.png"))
	if len(pngs) < 3 {
		t.Errorf("%d console3 screenshots in %s", len(pngs), shots)
	}
	for _, p := range pngs {
		t.Logf("screenshot %s", p)
	}
}
