package server

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/iam"
)

const hostileName = `<img src=x onerror=alert(1)>`

// readProject is the rule a developer needs to land on the console.
const readProject = `{"resource":["Project:Settings"],"action":["Project:GetProjectInfo"],"effect":"Allow"}`

// noMarkup fails when body holds the hostile name unescaped, or not at all
// as text.
func noMarkup(t *testing.T, which, body string) {
	t.Helper()
	if strings.Contains(body, "<img src=x") {
		t.Errorf("%s holds markup from a name", which)
	}
	if !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("%s does not show the name as text", which)
	}
}

var (
	invitationLink = regexp.MustCompile(`<pre class="code" id="invitation">([^<]+)</pre>`)
	appSecret      = regexp.MustCompile(`<pre class="code" id="secret">([^<]+)</pre>`)
)

// The developers pages: list and filter, invite (the link once, a bad
// email's message at the field), roles, remove; markup in a name as
// text; another tenant's developer 404 and untouched; CSRF 403; a reader
// without write controls whose forced writes are 403 and change nothing.
func TestConsoleDevelopers(t *testing.T) {
	ts := newTestServer(t)
	ts.inviteConsoleDeveloper(t, "admin@example.org", `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`)
	ts.inviteConsoleDeveloper(t, "reader@example.org",
		`{"rule":[{"resource":["IAM:*"],"action":["IAM:ListAllDevelopers","IAM:GetDeveloper"],"effect":"Allow"},`+readProject+`]}`)
	b, csrf := ts.consoleSignIn(t, "admin@example.org")
	ctx := t.Context()
	roles, err := ts.iam.ListRoles(ctx, ts.admin.ProjectID)
	if err != nil || len(roles) == 0 {
		t.Fatalf("roles: %v %v", roles, err)
	}

	if status, body := get(t, b, "/console/developers?q=READER"); status != 200 || !strings.Contains(body, "reader@example.org") ||
		strings.Contains(body, ">admin@example.org<") || !strings.Contains(body, "Invite a developer") {
		t.Fatalf("filtered list: %d %s", status, body)
	}
	// A bad email: the API's message at the field, nothing invited.
	status, body := post(t, b, "/console/developers/invite", url.Values{"csrf": {csrf}, "email": {"not an email"}, "name": {"X"}})
	if status != 400 || !strings.Contains(body, `id="email" type="email" name="email" value="not an email" required aria-invalid="true"`) ||
		!strings.Contains(body, "Email must be a plain email address.") {
		t.Fatalf("bad invite: %d %s", status, body)
	}
	status, body = post(t, b, "/console/developers/invite", url.Values{"csrf": {csrf}, "email": {"new@example.org"},
		"name": {hostileName}, "role": {roles[0].ID}})
	m := invitationLink.FindStringSubmatch(body)
	if status != 200 || m == nil || !strings.HasPrefix(m[1], testURL+"/invite/") {
		t.Fatalf("invite: %d %s", status, body)
	}
	devs, err := ts.iam.ListDevelopers(ctx, ts.admin.ProjectID)
	if err != nil {
		t.Fatal(err)
	}
	var newID string
	for _, d := range devs {
		if d.Email == "new@example.org" {
			newID = d.ID
		}
	}
	if d, err := ts.iam.GetDeveloper(ctx, ts.admin.ProjectID, newID); err != nil || len(d.Roles) != 1 || d.Roles[0].ID != roles[0].ID {
		t.Fatalf("invited developer: %+v %v", d, err)
	}
	_, list := get(t, b, "/console/developers")
	noMarkup(t, "developers list", list)
	status, page := get(t, b, "/console/developers/"+newID)
	if status != 200 || !strings.Contains(page, "Save roles") || !strings.Contains(page, "Remove developer") {
		t.Fatalf("developer page: %d %s", status, page)
	}
	noMarkup(t, "developer page", page)
	// Roles: none checked is no roles.
	if status, body := post(t, b, "/console/developers/"+newID+"/roles", url.Values{"csrf": {csrf}}); status != 200 || !strings.Contains(body, "Saved.") {
		t.Fatalf("save roles: %d %s", status, body)
	}
	if d, err := ts.iam.GetDeveloper(ctx, ts.admin.ProjectID, newID); err != nil || len(d.Roles) != 0 {
		t.Fatalf("roles after save: %+v %v", d, err)
	}

	// Another tenant's developer: 404 on every page and action, untouched.
	other, err := ts.iam.CreateProject(ctx, "Other tenant")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := ts.iam.InviteDeveloper(ctx, other.ProjectID, iam.DeveloperInvite{Email: "theirs@example.org", Roles: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := get(t, b, "/console/developers/"+theirs.ID); status != 404 {
		t.Errorf("another tenant's developer page: %d", status)
	}
	for _, action := range []string{"roles", "remove"} {
		if status, _ := post(t, b, "/console/developers/"+theirs.ID+"/"+action, url.Values{"csrf": {csrf}}); status != 404 {
			t.Errorf("another tenant's developer %s: %d", action, status)
		}
	}
	if _, err := ts.iam.GetDeveloper(ctx, other.ProjectID, theirs.ID); err != nil {
		t.Errorf("another tenant's developer after the console's tries: %v", err)
	}
	// No CSRF token: 403 before anything.
	if status, _ := post(t, b, "/console/developers/"+newID+"/remove", url.Values{}); status != 403 {
		t.Errorf("remove without CSRF: %d", status)
	}

	// The reader: no write controls, forced writes 403 and nothing done.
	rb, rcsrf := ts.consoleSignIn(t, "reader@example.org")
	if status, body := get(t, rb, "/console/developers"); status != 200 || strings.Contains(body, "Invite a developer") {
		t.Errorf("reader's list: %d", status)
	}
	if status, body := get(t, rb, "/console/developers/"+newID); status != 200 || strings.Contains(body, "Save roles") || strings.Contains(body, "Remove developer") {
		t.Errorf("reader's developer page: %d %s", status, body)
	}
	for path, action := range map[string]string{"/console/developers/invite": "IAM:InviteDeveloper",
		"/console/developers/" + newID + "/roles": "IAM:UpdateDeveloper", "/console/developers/" + newID + "/remove": "IAM:RemoveDeveloper"} {
		status, body := post(t, rb, path, url.Values{"csrf": {rcsrf}, "email": {"forced@example.org"}, "role": {roles[0].ID}})
		if status != 403 || !strings.Contains(body, action) {
			t.Errorf("reader's forced %s: %d %s", path, status, body)
		}
	}
	if status, _ := get(t, rb, "/console/developers/invite"); status != 403 {
		t.Errorf("reader's invite form: %d", status)
	}
	if d, err := ts.iam.GetDeveloper(ctx, ts.admin.ProjectID, newID); err != nil || len(d.Roles) != 0 {
		t.Errorf("after the reader's forced writes: %+v %v", d, err)
	}

	// Remove.
	if status, body := post(t, b, "/console/developers/"+newID+"/remove", url.Values{"csrf": {csrf}}); status != 200 ||
		!strings.Contains(body, "Developer removed.") || strings.Contains(body, "new@example.org") {
		t.Fatalf("remove: %d %s", status, body)
	}
	if _, err := ts.iam.GetDeveloper(ctx, ts.admin.ProjectID, newID); err == nil {
		t.Error("the removed developer is still in the project")
	}
}

// The users pages: invite through an application (the link once; no
// application or contact: the API's message), the list and its filter,
// the profile link, roles, remove; markup as text; another tenant's user
// 404; a reader's forced writes 403.
func TestConsoleUsers(t *testing.T) {
	ts := newTestServer(t)
	ts.inviteConsoleDeveloper(t, "admin@example.org", `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`)
	ts.inviteConsoleDeveloper(t, "reader@example.org",
		`{"rule":[{"resource":["App:*"],"action":["App:ListAllUsers","App:GetUser","App:ListAllApplications"],"effect":"Allow"},`+readProject+`]}`)
	ctx := t.Context()
	name, empty := "Portal", []string{}
	app, err := ts.iam.CreateApplication(ctx, ts.admin.ProjectID, iam.ApplicationInput{Name: &name, AllowedCallbackURLs: &empty})
	if err != nil {
		t.Fatal(err)
	}
	roles, err := ts.iam.ListRoles(ctx, ts.admin.ProjectID)
	if err != nil || len(roles) == 0 {
		t.Fatalf("roles: %v %v", roles, err)
	}
	b, csrf := ts.consoleSignIn(t, "admin@example.org")
	if status, body := get(t, b, "/console/users/invite"); status != 200 || !strings.Contains(body, `<option value="`+app.ID+`">Portal</option>`) {
		t.Fatalf("invite form: %d %s", status, body)
	}
	status, body := post(t, b, "/console/users/invite", url.Values{"csrf": {csrf}, "app": {app.ID}, "name": {"Nobody"}, "role": {roles[0].ID}})
	if status != 400 || !strings.Contains(body, "A user needs an email or a phoneNumber.") || !strings.Contains(body, `value="Nobody"`) {
		t.Fatalf("invite without contact: %d %s", status, body)
	}
	// The test server creates no profiles (ward serve does): an existing one.
	status, pat := ts.do(t, "POST", "/fhir/Patient", ts.token, `{"resourceType":"Patient"}`)
	if status != 201 {
		t.Fatalf("create patient: %d %v", status, pat)
	}
	status, body = post(t, b, "/console/users/invite", url.Values{"csrf": {csrf}, "app": {app.ID}, "email": {"pat@example.org"},
		"name": {hostileName}, "profile": {"Patient/" + pat["id"].(string)}, "role": {roles[0].ID}})
	if m := invitationLink.FindStringSubmatch(body); status != 200 || m == nil || !strings.Contains(m[1], "/user-invite/") {
		t.Fatalf("invite: %d %s", status, body)
	}
	if status, body := post(t, b, "/console/users/invite", url.Values{"csrf": {csrf}, "app": {app.ID}, "email": {"other@example.org"}, "name": {"Olga"},
		"profile": {"Patient/" + pat["id"].(string)}, "role": {roles[0].ID}}); status != 200 {
		t.Fatalf("second invite: %d %s", status, body)
	}
	_, list := get(t, b, "/console/users")
	noMarkup(t, "users list", list)
	if status, body := get(t, b, "/console/users?q=olga"); status != 200 || !strings.Contains(body, "Olga") || strings.Contains(body, "pat@example.org") {
		t.Fatalf("filter by name: %d %s", status, body)
	}
	if status, body := get(t, b, "/console/users?q=pat%40"); status != 200 || strings.Contains(body, "Olga") || !strings.Contains(body, "pat@example.org") {
		t.Fatalf("filter by email: %d %s", status, body)
	}
	id := regexp.MustCompile(`href="/console/users/([^"]+)">&lt;img`).FindStringSubmatch(list)
	if id == nil {
		t.Fatalf("no user link in %s", list)
	}
	status, page := get(t, b, "/console/users/"+id[1])
	if status != 200 || !regexp.MustCompile(`<a href="/console/fhir/Patient/[^"]+" id="profile-link">Patient/`).MatchString(page) ||
		!strings.Contains(page, "Remove user") {
		t.Fatalf("user page: %d %s", status, page)
	}
	noMarkup(t, "user page", page)
	// A password reset link, shown once; a two-step sign-in reset.
	if !strings.Contains(page, "Make a password reset link") || !strings.Contains(page, "Reset two-step sign-in") {
		t.Fatalf("user page without the reset buttons: %s", page)
	}
	status, body = post(t, b, "/console/users/"+id[1]+"/reset-password-link", url.Values{"csrf": {csrf}})
	link := regexp.MustCompile(`<pre class="code" id="reset-link">([^<]+)</pre>`).FindStringSubmatch(body)
	if status != 200 || link == nil || !strings.Contains(link[1], "/oauth/reset/") {
		t.Fatalf("reset link: %d %s", status, body)
	}
	if _, again := get(t, b, "/console/users/"+id[1]); strings.Contains(again, link[1]) {
		t.Error("the reset link shows again on a later page")
	}
	if status, body := post(t, b, "/console/users/"+id[1]+"/reset-mfa", url.Values{"csrf": {csrf}}); status != 200 || !strings.Contains(body, "Two-step sign-in reset") {
		t.Fatalf("reset MFA: %d %s", status, body)
	}
	if status, _ := post(t, b, "/console/users/"+id[1]+"/roles", url.Values{"csrf": {csrf}}); status != 200 {
		t.Fatalf("save roles: %d", status)
	}
	if u, err := ts.iam.GetUser(ctx, ts.admin.ProjectID, id[1]); err != nil || len(u.Roles) != 0 {
		t.Fatalf("roles after save: %+v %v", u, err)
	}

	other, err := ts.iam.CreateProject(ctx, "Other tenant")
	if err != nil {
		t.Fatal(err)
	}
	theirApp, err := ts.iam.CreateApplication(ctx, other.ProjectID, iam.ApplicationInput{Name: &name, AllowedCallbackURLs: &empty})
	if err != nil {
		t.Fatal(err)
	}
	email := "theirs@example.org"
	ref := "Patient/" + pat["id"].(string)
	theirs, err := ts.iam.InviteUser(ctx, other.ProjectID, iam.UserInvite{ApplicationID: theirApp.ID, Email: &email,
		Profile: &ref, AccessPolicy: json.RawMessage(`{"rule":[]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := get(t, b, "/console/users/"+theirs.ID); status != 404 {
		t.Errorf("another tenant's user page: %d", status)
	}
	for _, action := range []string{"roles", "remove", "reset-password-link", "reset-mfa"} {
		if status, _ := post(t, b, "/console/users/"+theirs.ID+"/"+action, url.Values{"csrf": {csrf}}); status != 404 {
			t.Errorf("another tenant's user %s: %d", action, status)
		}
	}
	// Inviting into another tenant's application is the API's refusal.
	if status, _ := post(t, b, "/console/users/invite", url.Values{"csrf": {csrf}, "app": {theirApp.ID}, "email": {"x@example.org"}, "role": {roles[0].ID}}); status != 400 {
		t.Errorf("invite into another tenant's application: %d", status)
	}
	if _, err := ts.iam.GetUser(ctx, other.ProjectID, theirs.ID); err != nil {
		t.Errorf("another tenant's user after the console's tries: %v", err)
	}

	rb, rcsrf := ts.consoleSignIn(t, "reader@example.org")
	if status, body := get(t, rb, "/console/users/"+id[1]); status != 200 || strings.Contains(body, "Save roles") || strings.Contains(body, "Remove user") ||
		strings.Contains(body, "password reset") || strings.Contains(body, "Reset two-step") {
		t.Errorf("reader's user page: %d %s", status, body)
	}
	if _, body := get(t, rb, "/console/users"); strings.Contains(body, "Invite a user") {
		t.Error("reader's list offers invites")
	}
	for path, action := range map[string]string{"/console/users/invite": "App:CreateUser",
		"/console/users/" + id[1] + "/roles": "App:UpdateUser", "/console/users/" + id[1] + "/remove": "App:DeleteUser",
		"/console/users/" + id[1] + "/reset-password-link": "App:GetUserPasswordResetLink", "/console/users/" + id[1] + "/reset-mfa": "App:ResetUserMFA"} {
		status, body := post(t, rb, path, url.Values{"csrf": {rcsrf}, "app": {app.ID}, "email": {"forced@example.org"}, "role": {roles[0].ID}})
		if status != 403 || !strings.Contains(body, action) {
			t.Errorf("reader's forced %s: %d %s", path, status, body)
		}
	}

	if status, body := post(t, b, "/console/users/"+id[1]+"/remove", url.Values{"csrf": {csrf}}); status != 200 || !strings.Contains(body, "User removed.") {
		t.Fatalf("remove: %d %s", status, body)
	}
	if _, err := ts.iam.GetUser(ctx, ts.admin.ProjectID, id[1]); err == nil {
		t.Error("the removed user is still there")
	}
}

// The applications pages: create (a bad redirect URI's message at the
// field), list and filter, edit the redirect URIs, rotate the secret
// (shown once), delete; markup as text; another tenant's application
// 404; a reader's forced writes 403.
func TestConsoleApplications(t *testing.T) {
	ts := newTestServer(t)
	ts.inviteConsoleDeveloper(t, "admin@example.org", `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`)
	ts.inviteConsoleDeveloper(t, "reader@example.org",
		`{"rule":[{"resource":["App:*"],"action":["App:ListAllApplications","App:GetApplication"],"effect":"Allow"},`+readProject+`]}`)
	ctx := t.Context()
	b, csrf := ts.consoleSignIn(t, "admin@example.org")

	status, body := post(t, b, "/console/applications/new", url.Values{"csrf": {csrf}, "name": {"Bad"}, "callbacks": {"not a url"}})
	if status != 400 || !strings.Contains(body, `aria-invalid="true">not a url</textarea>`) || !strings.Contains(body, "AllowedCallbackUrls") {
		t.Fatalf("bad redirect URI: %d %s", status, body)
	}
	status, body = post(t, b, "/console/applications/new", url.Values{"csrf": {csrf}, "name": {hostileName}, "description": {"the portal"},
		"callbacks": {"https://app.example.org/cb\n\n  https://app.example.org/cb2  \n"}})
	if status != 200 || !strings.Contains(body, "Saved.") || !strings.Contains(body, "https://app.example.org/cb, https://app.example.org/cb2") {
		t.Fatalf("create: %d %s", status, body)
	}
	noMarkup(t, "application page", body)
	apps, err := ts.iam.ListApplications(ctx, ts.admin.ProjectID)
	if err != nil || len(apps) != 1 {
		t.Fatalf("applications: %+v %v", apps, err)
	}
	id := apps[0].ID
	name, empty := "Second", []string{}
	if _, err := ts.iam.CreateApplication(ctx, ts.admin.ProjectID, iam.ApplicationInput{Name: &name, AllowedCallbackURLs: &empty}); err != nil {
		t.Fatal(err)
	}
	_, list := get(t, b, "/console/applications")
	noMarkup(t, "applications list", list)
	if status, body := get(t, b, "/console/applications?q=portal"); status != 200 || strings.Contains(body, "Second") || !strings.Contains(body, "1 of 2 applications") {
		t.Fatalf("filter: %d %s", status, body)
	}
	status, body = post(t, b, "/console/applications/"+id, url.Values{"csrf": {csrf}, "name": {"Portal"}, "callbacks": {"https://new.example.org/cb"}})
	if status != 200 || !strings.Contains(body, "Saved.") {
		t.Fatalf("edit: %d %s", status, body)
	}
	if a, err := ts.iam.GetApplication(ctx, ts.admin.ProjectID, id); err != nil || a.Name != "Portal" || strings.Join(a.AllowedCallbackURLs, " ") != "https://new.example.org/cb" {
		t.Fatalf("after edit: %+v %v", a, err)
	}
	status, body = post(t, b, "/console/applications/"+id+"/rotate-secret", url.Values{"csrf": {csrf}})
	m := appSecret.FindStringSubmatch(body)
	if status != 200 || m == nil || len(m[1]) < 20 {
		t.Fatalf("rotate: %d %s", status, body)
	}
	if _, again := get(t, b, "/console/applications/"+id); strings.Contains(again, m[1]) {
		t.Error("the secret shows again on a later page")
	}

	other, err := ts.iam.CreateProject(ctx, "Other tenant")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := ts.iam.CreateApplication(ctx, other.ProjectID, iam.ApplicationInput{Name: &name, AllowedCallbackURLs: &empty})
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := get(t, b, "/console/applications/"+theirs.ID); status != 404 {
		t.Errorf("another tenant's application page: %d", status)
	}
	for _, action := range []string{"", "/rotate-secret", "/delete"} {
		if status, _ := post(t, b, "/console/applications/"+theirs.ID+action, url.Values{"csrf": {csrf}, "name": {"taken"}}); status != 404 {
			t.Errorf("another tenant's application %q: %d", action, status)
		}
	}
	if a, err := ts.iam.GetApplication(ctx, other.ProjectID, theirs.ID); err != nil || a.Name != "Second" {
		t.Errorf("another tenant's application after the console's tries: %+v %v", a, err)
	}

	rb, rcsrf := ts.consoleSignIn(t, "reader@example.org")
	if status, body := get(t, rb, "/console/applications/"+id); status != 200 || strings.Contains(body, "Rotate secret") ||
		strings.Contains(body, "Delete application") || strings.Contains(body, `action="/console/applications/`+id+`"`) {
		t.Errorf("reader's application page: %d %s", status, body)
	}
	if _, body := get(t, rb, "/console/applications"); strings.Contains(body, "New application") {
		t.Error("reader's list offers create")
	}
	for path, action := range map[string]string{"/console/applications/new": "App:CreateApplication",
		"/console/applications/" + id: "App:UpdateApplication", "/console/applications/" + id + "/rotate-secret": "App:RotateApplicationSecret",
		"/console/applications/" + id + "/delete": "App:DeleteApplication"} {
		status, body := post(t, rb, path, url.Values{"csrf": {rcsrf}, "name": {"forced"}})
		if status != 403 || !strings.Contains(body, action) {
			t.Errorf("reader's forced %s: %d %s", path, status, body)
		}
	}
	if a, err := ts.iam.GetApplication(ctx, ts.admin.ProjectID, id); err != nil || a.Name != "Portal" {
		t.Errorf("after the reader's forced writes: %+v %v", a, err)
	}

	if status, body := post(t, b, "/console/applications/"+id+"/delete", url.Values{"csrf": {csrf}}); status != 200 || !strings.Contains(body, "Application deleted.") {
		t.Fatalf("delete: %d %s", status, body)
	}
	if _, err := ts.iam.GetApplication(ctx, ts.admin.ProjectID, id); err == nil {
		t.Error("the deleted application is still there")
	}
}
