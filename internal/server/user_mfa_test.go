package server

import (
	"encoding/base32"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/totp"
	"golang.org/x/crypto/bcrypt"
)

// browser is a client with its own cookies that does not follow redirects.
type browser struct {
	t  *testing.T
	ts *testServer
	c  *http.Client
}

func newBrowser(t *testing.T, ts *testServer) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, ts: ts, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) send(method, path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.ts.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res, string(out)
}

// expect fails the test unless the answer has status and contains part.
func (b *browser) expect(what string, res *http.Response, body string, status int, part string) string {
	b.t.Helper()
	if res.StatusCode != status || !strings.Contains(body, part) {
		b.t.Fatalf("%s: %d, want %d with %q:\n%s", what, res.StatusCode, status, part, body)
	}
	return body
}

var (
	formField        = regexp.MustCompile(`name="form" value="([^"]+)"`)
	interactionField = regexp.MustCompile(`name="interaction" value="([^"]+)"`)
	mfaKey           = regexp.MustCompile(`id="mfa-key" class="key">([A-Z2-7 ]+)<`)
)

func field(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in:\n%s", re, body)
	}
	return m[1]
}

func keySecret(t *testing.T, body string) []byte {
	t.Helper()
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ReplaceAll(field(t, mfaKey, body), " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nextCode is a code the server has not seen yet: the step after now's,
// which is inside the accepted window and later than any code used so
// far in a test that takes less than a step between codes.
func nextCode(secret []byte) string { return totp.Code(secret, totp.Step(time.Now())+1) }

// TestPasswordResetAndMFA drives the reset link, enrolment, sign-in with
// a code, resetMfa and an application that requires MFA through the
// server's pages and API, with the attacks on each.
func TestPasswordResetAndMFA(t *testing.T) {
	ts := newTestServer(t)
	if err := ts.iam.SetPasswordCost(bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	const cb = "https://app.example.com/cb"
	app := ts.mustDo(t, 200, "POST", "/v1/application", ts.token, `{"name":"Portal","allowedCallbackUrls":["`+cb+`"]}`)
	appID, clientID := app["id"].(string), app["clientId"].(string)
	role := ts.mustDo(t, 200, "POST", "/v1/iam/role", ts.token, `{"name":"p","accessPolicy":{"rule":[]}}`)["id"].(string)
	user := ts.mustDo(t, 200, "POST", "/v1/user/invite", ts.token, `{"applicationId":"`+appID+`","email":"ann@example.org",
		"profile":"Patient/ann","roles":["`+role+`"]}`)["id"].(string)

	// Attacks on the API: another project's id, no permission, a foreign redirect.
	other, err := ts.iam.CreateProject(t.Context(), "Other tenant")
	if err != nil {
		t.Fatal(err)
	}
	otherToken := ts.clientToken(t, other.ClientID, other.ClientSecret)
	weak := ts.mustDo(t, 200, "POST", "/v1/m2m", ts.token, `{"name":"reader","accessPolicy":{"rule":[{"resource":"App:User:*","action":"App:GetUser","effect":"Allow"}]}}`)
	weakSecret := ts.mustDo(t, 200, "POST", "/v1/m2m/"+weak["id"].(string)+"/rotate-secret", ts.token, `{}`)["secret"].(string)
	weakToken := ts.clientToken(t, weak["clientId"].(string), weakSecret)
	for _, c := range []struct {
		name, path, token, body string
		status                  int
	}{
		{"reset link, other project", "/v1/user/" + user + "/reset-password-link", otherToken, `{}`, 404},
		{"reset mfa, other project", "/v1/user/" + user + "/reset-mfa", otherToken, `{}`, 404},
		{"reset link, no permission", "/v1/user/" + user + "/reset-password-link", weakToken, `{}`, 403},
		{"reset mfa, no permission", "/v1/user/" + user + "/reset-mfa", weakToken, `{}`, 403},
		{"reset link, foreign redirect", "/v1/user/" + user + "/reset-password-link", ts.token, `{"redirectUrl":"https://evil.example/"}`, 400},
		{"reset link, bad body", "/v1/user/" + user + "/reset-password-link", ts.token, `{"redirectUrl":1}`, 400},
		{"reset link, unknown user", "/v1/user/nobody/reset-password-link", ts.token, `{}`, 404},
	} {
		if status, out := ts.do(t, "POST", c.path, c.token, c.body); status != c.status || out["message"] == nil {
			t.Errorf("%s: %d %v, want %d with a message", c.name, status, out, c.status)
		}
	}

	// The link: its page, CSRF, password rules, single use.
	newLink := func() string {
		t.Helper()
		out := ts.mustDo(t, 200, "POST", "/v1/user/"+user+"/reset-password-link", ts.token, `{"redirectUrl":"`+cb+`"}`)
		link, _ := out["link"].(string)
		path, ok := strings.CutPrefix(link, testURL+"/oauth/reset/")
		if !ok || out["expiresAt"] == nil {
			t.Fatalf("link answer %v", out)
		}
		return "/oauth/reset/" + path
	}
	stale, link := newLink(), newLink()
	b := newBrowser(t, ts)
	res, body := b.send("GET", stale, nil)
	b.expect("replaced link", res, body, 404, "replaced by a newer one")
	res, body = b.send("GET", link, nil)
	b.expect("reset page", res, body, 200, "ann@example.org")
	form := field(t, formField, body)
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || res.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("reset page headers %v", res.Header)
	}
	const password = "a good long password"
	res, body = newBrowser(t, ts).send("POST", link, url.Values{"form": {form}, "password": {password}})
	b.expect("post without the page's cookie", res, body, 403, "expired")
	res, body = b.send("POST", link, url.Values{"form": {form}, "password": {"short"}})
	b.expect("short password", res, body, 400, "characters")
	res, body = b.send("POST", link, url.Values{"form": {form}, "password": {password}})
	b.expect("reset", res, body, 200, `href="`+cb+`"`)
	res, body = b.send("POST", link, url.Values{"form": {form}, "password": {"another long password"}})
	b.expect("link used twice", res, body, 404, "already used")

	// Sign in with the password (no MFA yet), allow, which remembers consent.
	authz := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {cb}, "scope": {"openid"},
		"state": {"st"}, "aud": {testURL + "/fhir"}, "code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}}
	signin := func(b *browser, password string) (*http.Response, string) {
		f := url.Values{"action": {"signin"}, "email": {"ann@example.org"}, "password": {password}}
		for k, v := range authz {
			f[k] = v
		}
		return b.send("POST", "/oauth/authorize", f)
	}
	redirected := func(what string, res *http.Response) {
		t.Helper()
		if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, cb+"?code=") {
			t.Fatalf("%s: %d to %q, want a code at %s", what, res.StatusCode, loc, cb)
		}
	}
	res, body = signin(b, password)
	body = b.expect("password sign-in", res, body, 200, `value="allow"`)
	res, _ = b.send("POST", "/oauth/authorize", url.Values{"interaction": {field(t, interactionField, body)}, "action": {"allow"}})
	redirected("allow", res)

	// Enrol from the applications page.
	res, body = b.send("GET", "/oauth/apps", nil)
	body = b.expect("apps page", res, body, 200, "Set up two-step sign-in")
	appsForm := field(t, formField, body)
	res, body = b.send("POST", "/oauth/apps", url.Values{"form": {"forged"}, "action": {"mfa-start"}})
	b.expect("enrol without the form token", res, body, 403, "expired")
	res, body = b.send("POST", "/oauth/apps", url.Values{"form": {appsForm}, "action": {"mfa-start"}})
	body = b.expect("enrol page", res, body, 200, "otpauth://totp/")
	secret := keySecret(t, body)
	res, body = b.send("POST", "/oauth/apps", url.Values{"form": {appsForm}, "action": {"mfa-verify"}, "code": {"000000"}})
	body = b.expect("wrong first code", res, body, 401, "Wrong or already used code")
	if again := keySecret(t, body); string(again) != string(secret) {
		t.Fatal("a wrong code changed the secret being set up")
	}
	res, _ = b.send("POST", "/oauth/apps", url.Values{"form": {appsForm}, "action": {"mfa-verify"}, "code": {totp.Code(secret, totp.Step(time.Now()))}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("confirm: %d", res.StatusCode)
	}
	res, body = b.send("GET", "/oauth/apps", nil)
	b.expect("apps page after enrolment", res, body, 200, "On: signing in asks for a code")
	if strings.Contains(body, "otpauth") {
		t.Fatal("the apps page shows the secret after enrolment")
	}
	res, body = b.send("POST", "/oauth/apps", url.Values{"form": {appsForm}, "action": {"mfa-start"}})
	b.expect("enrol twice", res, body, 409, "already set up")

	// Signed out, the password alone asks for a code and starts no session.
	b2 := newBrowser(t, ts)
	res, body = signin(b2, password)
	body = b2.expect("password, enrolled", res, body, 200, "Enter your code")
	if strings.Contains(res.Header.Get("Set-Cookie"), "ward_session=") {
		t.Fatal("a session started before the code")
	}
	res, body = b2.send("POST", "/oauth/authorize", url.Values{"interaction": {field(t, interactionField, body)}, "action": {"verify"}, "code": {"123456"}})
	body = b2.expect("wrong code", res, body, 401, "Wrong or already used code")
	code := nextCode(secret)
	res, _ = b2.send("POST", "/oauth/authorize", url.Values{"interaction": {field(t, interactionField, body)}, "action": {"verify"}, "code": {code}})
	redirected("code", res)
	// The same code again, in another sign-in: refused.
	res, body = signin(newBrowser(t, ts), password)
	res, body = b2.send("POST", "/oauth/authorize", url.Values{"interaction": {field(t, interactionField, body)}, "action": {"verify"}, "code": {code}})
	b2.expect("replayed code", res, body, 401, "Wrong or already used code")

	// A reset link ends the sessions of the user's browsers.
	if res, body := b2.send("GET", "/oauth/apps", nil); res.StatusCode != 200 || !strings.Contains(body, "ann@example.org") {
		t.Fatalf("signed-in apps page: %d", res.StatusCode)
	}
	b3 := newBrowser(t, ts)
	link = newLink()
	_, body = b3.send("GET", link, nil)
	res, body = b3.send("POST", link, url.Values{"form": {field(t, formField, body)}, "password": {password}})
	b3.expect("second reset", res, body, 200, "password is changed")
	res, body = b2.send("GET", "/oauth/apps", nil)
	b2.expect("session after reset", res, body, 401, "not signed in")

	// resetMfa: the password alone signs in again.
	if status, out := ts.do(t, "POST", "/v1/user/"+user+"/reset-mfa", ts.token, ``); status != 204 {
		t.Fatalf("reset mfa: %d %v", status, out)
	}
	res, _ = signin(newBrowser(t, ts), password)
	redirected("password after resetMfa", res)

	// An application with mfaEnabled makes the user enrol at sign-in.
	ts.mustDo(t, 200, "PATCH", "/v1/application/"+appID, ts.token, `{"mfaEnabled":true}`)
	b4 := newBrowser(t, ts)
	res, body = signin(b4, password)
	body = b4.expect("required enrolment", res, body, 200, "asks for a code from an authenticator app")
	secret = keySecret(t, body)
	res, _ = b4.send("POST", "/oauth/authorize", url.Values{"interaction": {field(t, interactionField, body)}, "action": {"verify"}, "code": {nextCode(secret)}})
	redirected("required enrolment's code", res)
	if status, out := ts.do(t, "GET", "/v1/user/"+user, ts.token, ""); status != 200 || strings.Contains(strings.ToLower(stringify(out)), "secret") {
		t.Fatalf("user answer: %d %v", status, out)
	}
}

func stringify(m map[string]any) string {
	var b strings.Builder
	for k, v := range m {
		b.WriteString(k)
		b.WriteString("=")
		if s, ok := v.(string); ok {
			b.WriteString(s)
		}
		b.WriteString(" ")
	}
	return b.String()
}
