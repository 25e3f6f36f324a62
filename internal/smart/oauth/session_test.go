package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store"
)

const (
	testEmail    = "pat@example.com"
	testPassword = "a long enough password"
	testVerifier = "verifier-verifier-verifier-verifier-verifier-1"
	testCallback = "https://app.example/cb"
)

// launcher is a browser launching apps against a test server: a cookie
// jar, redirects back to the application not followed.
type launcher struct {
	t  *testing.T
	ts *testServer
	c  *http.Client
}

func newLauncher(t *testing.T, ts *testServer) *launcher {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host != strings.TrimPrefix(ts.URL, "http://") {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return &launcher{t: t, ts: ts, c: c}
}

// page is a response: status, body, and where it redirects to.
type page struct {
	status   int
	body     string
	location string
}

func (l *launcher) do(req *http.Request) page {
	l.t.Helper()
	res, err := l.c.Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, body: string(b), location: res.Header.Get("Location")}
}

func (l *launcher) get(path string) page {
	req, _ := http.NewRequest(http.MethodGet, l.ts.URL+path, nil)
	return l.do(req)
}

func (l *launcher) post(path string, form url.Values) page {
	req, _ := http.NewRequest(http.MethodPost, l.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return l.do(req)
}

func authzQuery(clientID, scopes string) url.Values {
	sum := sha256.Sum256([]byte(testVerifier))
	return url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {testCallback}, "scope": {scopes},
		"state": {"st"}, "aud": {testURL + "/fhir"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}}
}

func (l *launcher) launch(clientID, scopes string) page {
	return l.get("/oauth/authorize?" + authzQuery(clientID, scopes).Encode())
}

func (l *launcher) signIn(clientID, scopes string) page {
	f := authzQuery(clientID, scopes)
	f.Set("action", "signin")
	f.Set("email", testEmail)
	f.Set("password", testPassword)
	return l.post("/oauth/authorize", f)
}

var (
	interactionField = regexp.MustCompile(`name="interaction" value="([^"]+)"`)
	formField        = regexp.MustCompile(`name="form" value="([^"]+)"`)
)

func field(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in page:\n%s", re, body)
	}
	return m[1]
}

func (l *launcher) allow(consent page) page {
	return l.post("/oauth/authorize", url.Values{"interaction": {field(l.t, interactionField, consent.body)}, "action": {"allow"}})
}

// what a response is: the sign-in page, the consent page or a code.
func what(p page) string {
	switch {
	case p.status == http.StatusSeeOther && strings.HasPrefix(p.location, testCallback) && strings.Contains(p.location, "code="):
		return "code"
	case p.status == http.StatusOK && strings.Contains(p.body, `name="password"`):
		return "signin"
	case p.status == http.StatusOK && strings.Contains(p.body, `value="allow"`):
		return "consent"
	}
	return "other"
}

// signinFixture is a project with a patient user and two applications
// that may stay connected.
func signinFixture(t *testing.T) (*testServer, iam.Application, iam.Application) {
	t.Helper()
	ts := newTestServer(t)
	ctx := context.Background()
	project := ts.admin.ProjectID
	mk := func(name string) iam.Application {
		app, err := ts.iam.CreateApplication(ctx, project, iam.ApplicationInput{Name: ptr(name), AllowedCallbackURLs: &[]string{testCallback},
			RefreshTokenEnabled: ptr(true)})
		if err != nil {
			t.Fatal(err)
		}
		return app
	}
	app, other := mk("Health Diary"), mk("Other App")
	role, err := ts.iam.CreateRole(ctx, project, iam.RoleInput{Name: ptr("patient"), AccessPolicy: json.RawMessage(`{"rule":[]}`)})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := ts.iam.InviteUser(ctx, project, iam.UserInvite{ApplicationID: app.ID, Email: ptr(testEmail), Profile: ptr("Patient/1"), Roles: &[]string{role.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.iam.AcceptUserInvitation(ctx, strings.TrimPrefix(inv.InvitationURL, testURL+"/user-invite/"), testPassword); err != nil {
		t.Fatal(err)
	}
	return ts, app, other
}

const (
	scopesA = "launch/patient openid offline_access patient/Patient.rs patient/Observation.rs"
	scopesB = "launch/patient patient/Patient.rs"                  // a subset of A
	scopesC = "launch/patient offline_access patient/Condition.rs" // not a subset of A
)

// A second launch within the session skips the password, and one asking
// the same application for no more than was allowed skips consent too.
func TestRememberedSignIn(t *testing.T) {
	ts, app, other := signinFixture(t)
	l := newLauncher(t, ts)
	if got := what(l.launch(app.ClientID, scopesA)); got != "signin" {
		t.Fatalf("first launch: %s", got)
	}
	consent := l.signIn(app.ClientID, scopesA)
	if what(consent) != "consent" || !strings.Contains(consent.body, "Not you?") {
		t.Fatalf("after sign-in: %s\n%s", what(consent), consent.body)
	}
	cookies := l.c.Jar.Cookies(&url.URL{Scheme: "http", Host: strings.TrimPrefix(ts.URL, "http://"), Path: "/oauth/"})
	if len(cookies) != 1 || cookies[0].Name != sessionCookie {
		t.Fatalf("session cookie: %v", cookies)
	}
	if got := what(l.allow(consent)); got != "code" {
		t.Fatalf("allow: %s", got)
	}
	tests := []struct {
		name, client, scopes, want string
	}{
		{"same app, same scopes", app.ClientID, scopesA, "code"},
		{"same app, a subset", app.ClientID, scopesB, "code"},
		{"same app, more scopes", app.ClientID, scopesC, "consent"},
		{"another app", other.ClientID, scopesB, "consent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := what(l.launch(tc.client, tc.scopes)); got != tc.want {
				t.Fatalf("launch: %s, want %s", got, tc.want)
			}
		})
	}
	// Allowing C replaces what was remembered: A is asked again.
	if got := what(l.allow(l.launch(app.ClientID, scopesC))); got != "code" {
		t.Fatalf("allow C: %s", got)
	}
	if got := what(l.launch(app.ClientID, scopesA)); got != "consent" {
		t.Fatalf("A after C: %s, want consent", got)
	}
	// "Not you? Sign out" on the consent page: back to the sign-in page.
	out := l.post("/oauth/authorize", url.Values{"interaction": {field(t, interactionField, l.launch(app.ClientID, scopesA).body)}, "action": {"signout"}})
	if what(out) != "signin" {
		t.Fatalf("sign out from consent: %s %d %s", what(out), out.status, out.body)
	}
	if got := what(l.launch(app.ClientID, scopesB)); got != "signin" {
		t.Fatalf("launch after sign-out: %s", got)
	}
}

// Only a valid session skips the password: not a forged, expired or
// another project's one.
func TestSessionNotValid(t *testing.T) {
	ts, app, _ := signinFixture(t)
	ctx := context.Background()
	now := time.Now()
	user, err := ts.iam.LoginUser(ctx, ts.admin.ProjectID, testEmail, testPassword, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	put := func(tok, project string, created, expires time.Time) {
		if err := ts.st.PutOAuthSession(ctx, secretHash("session", tok), store.OAuthSession{ProjectID: project, UserID: user.ID,
			CreatedAt: created, ExpiresAt: expires}); err != nil {
			t.Fatal(err)
		}
	}
	put("valid", ts.admin.ProjectID, now, now.Add(time.Hour))
	put("expired", ts.admin.ProjectID, now.Add(-13*time.Hour), now.Add(-time.Hour))
	put("elsewhere", "another-project", now, now.Add(time.Hour))
	tests := []struct{ cookie, want string }{
		{"valid", "consent"},
		{"expired", "signin"},
		{"elsewhere", "signin"},
		{"forged", "signin"},
		{"", "signin"},
	}
	for _, tc := range tests {
		t.Run(tc.cookie, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, ts.URL+"/oauth/authorize?"+authzQuery(app.ClientID, scopesA).Encode(), nil)
			if tc.cookie != "" {
				req.AddCookie(&http.Cookie{Name: sessionCookie, Value: tc.cookie})
			}
			if got := what(newLauncher(t, ts).do(req)); got != tc.want {
				t.Fatalf("%s, want %s", got, tc.want)
			}
		})
	}
}

// Withdrawing an application on the apps page revokes its refresh tokens
// and makes its next launch ask again; the page's forms need its token.
func TestWithdrawApp(t *testing.T) {
	ts, app, _ := signinFixture(t)
	l := newLauncher(t, ts)
	if p := l.get("/oauth/apps"); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "not signed in") {
		t.Fatalf("apps page signed out: %d %s", p.status, p.body)
	}
	back := l.allow(l.signIn(app.ClientID, scopesA))
	loc, err := url.Parse(back.location)
	if err != nil || what(back) != "code" {
		t.Fatalf("sign in and allow: %s %v", what(back), err)
	}
	res, err := http.PostForm(ts.URL+"/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"client_id": {app.ClientID}, "redirect_uri": {testCallback}, "code_verifier": {testVerifier}})
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	rt := str(tok["refresh_token"])
	if rt == "" {
		t.Fatalf("no refresh token: %v", tok)
	}

	apps := l.get("/oauth/apps")
	if apps.status != http.StatusOK || !strings.Contains(apps.body, "Health Diary") || !strings.Contains(apps.body, testEmail) {
		t.Fatalf("apps page: %d %s", apps.status, apps.body)
	}
	if p := l.post("/oauth/apps", url.Values{"form": {"forged"}, "action": {"withdraw"}, "client_id": {app.ClientID}}); p.status != http.StatusForbidden {
		t.Fatalf("withdraw with a forged form token: %d", p.status)
	}
	form := field(t, formField, apps.body)
	if p := l.post("/oauth/apps", url.Values{"form": {form}, "action": {"withdraw"}, "client_id": {app.ClientID}}); p.status != http.StatusOK ||
		strings.Contains(p.body, "Health Diary") {
		t.Fatalf("after withdraw (redirected to the list): %d %s", p.status, p.body)
	}
	res, err = http.PostForm(ts.URL+"/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {app.ClientID}})
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	json.NewDecoder(res.Body).Decode(&out)
	res.Body.Close()
	if out["error"] != "invalid_grant" {
		t.Fatalf("refresh after withdraw: %v", out)
	}
	if got := what(l.launch(app.ClientID, scopesA)); got != "consent" {
		t.Fatalf("launch after withdraw: %s, want consent", got)
	}
	if p := l.post("/oauth/apps", url.Values{"form": {form}, "action": {"signout"}}); p.status != http.StatusOK || !strings.Contains(p.body, "signed out") {
		t.Fatalf("sign out: %d %s", p.status, p.body)
	}
	if got := what(l.launch(app.ClientID, scopesA)); got != "signin" {
		t.Fatalf("launch after sign-out: %s, want signin", got)
	}
}
