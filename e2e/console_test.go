package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// inviteDeveloper invites email into the project with a role and accepts
// the invitation with password, as the invitee's browser would.
func (w *ward) inviteDeveloper(t *testing.T, admin, email, roleID, password string) {
	t.Helper()
	var inv struct {
		InvitationURL string `json:"invitationUrl"`
	}
	body := fmt.Sprintf(`{"email":%q,"practitioner":{"resourceType":"Practitioner","name":[{"family":"Dev"}]},"roles":[%q]}`, email, roleID)
	if st := w.api(t, admin, "POST", "/developer/invite", body, &inv); st >= 300 {
		t.Fatalf("invite developer %s: %d", email, st)
	}
	res, err := http.Post(inv.InvitationURL, "application/json", strings.NewReader(fmt.Sprintf(`{"password":%q}`, password)))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("accept invitation for %s: %d", email, res.StatusCode)
	}
}

// TestConsole runs browser/console.test.mjs against a real `ward serve`:
// developer sign-in through Ward's own page, the project page and its
// switcher, roles with inline policy errors and the explain box, M2M
// clients (create, rotate the secret shown once, which then works), a
// read-only developer (no write controls, a forced POST is 403), CSRF
// (a POST without the token is 403), sign-out, axe-core on every page and
// a screenshot of each.
func TestConsole(t *testing.T) {
	requireChromium(t)
	w := startWard(t, storetest.Backends()[0])
	if !strings.Contains(w.log.String(), w.URL+"/console") {
		t.Error("first start did not print the console URL")
	}
	admin := w.token(t, w.Admin)
	const password = "correct horse battery staple"
	roles := map[string]string{}
	for name, pol := range map[string]string{
		"console-admin": `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`,
		"console-reader": `{"rule":[{"resource":["Project:Settings"],"action":["Project:GetProjectInfo"],"effect":"Allow"},` +
			`{"resource":["IAM:Role:*"],"action":["IAM:ListAllRoles","IAM:GetRole"],"effect":"Allow"},` +
			`{"resource":["IAM:M2MClient:*"],"action":["IAM:ListAllM2MClients","IAM:GetM2MClient"],"effect":"Allow"}]}`,
	} {
		var role struct{ ID string }
		if st := w.api(t, admin, "POST", "/iam/role", fmt.Sprintf(`{"name":%q,"accessPolicy":%s}`, name, pol), &role); st >= 300 {
			t.Fatalf("create role %s: %d", name, st)
		}
		roles[name] = role.ID
	}
	w.inviteDeveloper(t, admin, "admin@example.org", roles["console-admin"], password)
	w.inviteDeveloper(t, admin, "reader@example.org", roles["console-reader"], password)
	// A second project the admin developer also belongs to: the switcher.
	other := w.createProject(t, "Second project")
	otherAdmin := w.token(t, other)
	var otherRole struct{ ID string }
	if st := w.api(t, otherAdmin, "POST", "/iam/role", `{"name":"all","accessPolicy":{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}}`, &otherRole); st >= 300 {
		t.Fatalf("create role in the second project: %d", st)
	}
	w.inviteDeveloper(t, otherAdmin, "admin@example.org", otherRole.ID, password)

	shots := os.Getenv("WARD_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(t.TempDir(), "screenshots")
	}
	nodeTest(t, "browser/console.test.mjs", map[string]string{
		"WARD_URL": w.URL, "WARD_PASSWORD": password, "WARD_ADMIN_EMAIL": "admin@example.org",
		"WARD_READER_EMAIL": "reader@example.org", "WARD_READER_ROLE": roles["console-reader"],
		"WARD_OTHER_PROJECT": "Second project", "WARD_SCREENSHOTS": shots,
	})
	pngs, _ := filepath.Glob(filepath.Join(shots, "console-*.png"))
	if len(pngs) == 0 {
		t.Errorf("no console screenshots in %s", shots)
	}
	for _, p := range pngs {
		t.Logf("screenshot %s", p)
	}
}
