package server

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/smart/oauth"
)

// TestSignInNeverConsents: a developer's sign-in (the built-in ward-cli
// client, so no FHIR setup is needed) answers with the consent page, never
// a code; Allow there sends the code; every page carries the strict CSP
// naming the redirect origin, and the stylesheet it allows is served.
func TestSignInNeverConsents(t *testing.T) {
	ts := newTestServer(t)
	status, inv := ts.do(t, "POST", "/v1/developer/invite", ts.token,
		`{"email":"dev@example.org","practitioner":{"resourceType":"Practitioner","name":[{"family":"Dev"}]}}`)
	if status != 200 {
		t.Fatalf("invite: %d %v", status, inv)
	}
	const password = "correct horse battery staple"
	if status, body := ts.do(t, "POST", strings.TrimPrefix(inv["invitationUrl"].(string), testURL), "", `{"password":"`+password+`"}`); status != 200 {
		t.Fatalf("accept: %d %v", status, body)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	request := url.Values{"response_type": {"code"}, "client_id": {oauth.DeveloperClientID}, "redirect_uri": {"http://127.0.0.1:4321/cb"},
		"state": {"st"}, "code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}}
	send := func(form url.Values) (*http.Response, string) {
		t.Helper()
		res, err := noRedirect.PostForm(ts.URL+"/oauth/authorize", form)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	with := func(base url.Values, kv ...string) url.Values {
		f := url.Values{}
		for k, v := range base {
			f[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	interaction := regexp.MustCompile(`name="interaction" value="([^"]+)"`)

	for _, c := range []struct {
		name     string
		form     url.Values
		status   int
		contains string
	}{
		{"sign-in page", request, 200, `value="signin"`},
		{"wrong password", with(request, "action", "signin", "email", "dev@example.org", "password", "wrong password!"), 401, `aria-invalid="true"`},
		{"right password: consent, no code", with(request, "action", "signin", "email", "dev@example.org", "password", password), 200, `value="allow"`},
	} {
		res, body := send(c.form)
		if res.StatusCode != c.status || !strings.Contains(body, c.contains) {
			t.Fatalf("%s: %d, want %d with %q:\n%s", c.name, res.StatusCode, c.status, c.contains, body)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' http://127.0.0.1:4321;") {
			t.Errorf("%s: CSP %q", c.name, csp)
		}
		if c.contains != `value="allow"` {
			continue
		}
		m := interaction.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no interaction token:\n%s", body)
		}
		res, _ = send(url.Values{"interaction": {m[1]}, "action": {"allow"}})
		loc, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusSeeOther || loc.Query().Get("code") == "" || loc.Query().Get("state") != "st" {
			t.Fatalf("allow: %d %s", res.StatusCode, loc)
		}
		// The token is one-time: a second answer is an error page.
		if res, _ := send(url.Values{"interaction": {m[1]}, "action": {"allow"}}); res.StatusCode != 400 {
			t.Errorf("second allow: %d, want 400", res.StatusCode)
		}
	}

	res, err := http.Get(ts.URL + "/static/ward.css")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("stylesheet: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
}
