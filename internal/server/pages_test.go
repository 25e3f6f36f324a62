package server

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestPageCSP(t *testing.T) {
	for _, c := range []struct{ redirect, formAction string }{
		{"", "form-action 'none';"},
		{"http://127.0.0.1:9/callback", "form-action 'self' http://127.0.0.1:9;"},
		{"https://App.example/cb?x=1", "form-action 'self' https://App.example;"},
		{"com.example.app:/oauth", "form-action 'self' com.example.app:;"},
		{"http://[::1]:8080/cb", "form-action 'self' http://[::1]:8080;"},
		// Nothing from a URI may widen or end the policy.
		{"https://a.example;script-src *", "form-action 'self';"},
		{"https://a.example%20*/cb", "form-action 'self';"},
		{"java script:x", "form-action 'self';"},
	} {
		got := pageCSP(c.redirect)
		if !strings.Contains(got, c.formAction) || !strings.HasPrefix(got, "default-src 'none'; style-src 'self';") ||
			!strings.Contains(got, "frame-ancestors 'none'") {
			t.Errorf("pageCSP(%q) = %q, want %q", c.redirect, got, c.formAction)
		}
	}
}

func TestDescribePatient(t *testing.T) {
	for _, c := range []struct {
		name, content string
		want          patientChoice
	}{
		{"name, birth date, identifier", `{"name":[{"given":["Ada","May"],"family":"Lovelace"}],"birthDate":"1815-12-10",
			"identifier":[{"value":""},{"type":{"coding":[{"code":"MR"}]},"value":"123"}]}`,
			patientChoice{"p1", "Ada May Lovelace", "Born 10 December 1815 · MR 123"}},
		{"text name, partial date, typed identifier", `{"name":[{"text":"Bob Smith"}],"birthDate":"1970","identifier":[{"type":{"text":"NHS number"},"value":"9"}]}`,
			patientChoice{"p1", "Bob Smith", "Born 1970 · NHS number 9"}},
		{"nothing but the id", `{}`, patientChoice{"p1", "Unnamed patient", "Record p1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := describePatient("p1", []byte(c.content)); got != c.want {
				t.Errorf("describePatient = %+v, want %+v", got, c.want)
			}
		})
	}
}

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
	request := url.Values{"response_type": {"code"}, "client_id": {DeveloperClientID}, "redirect_uri": {"http://127.0.0.1:4321/cb"},
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
