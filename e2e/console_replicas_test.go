package e2e

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestConsoleSessionReplicas: two ward serve on one PostgreSQL (one
// secrets key, as deployed). A developer signs in to the console on
// replica 1; replica 2 accepts the same cookie (the session is in the
// database, its access token sealed with the shared key) and its forms'
// CSRF token; sign-out on replica 2 ends the session on replica 1.
func TestConsoleSessionReplicas(t *testing.T) {
	b := storetest.Backends()[1]
	dsn := b.DSN(t)
	env := []string{"WARD_SECRETS_KEY=" + base64.StdEncoding.EncodeToString(seal.NewKey())}
	rs := make([]*ward, 2)
	for i := range rs {
		rs[i] = &ward{DataDir: t.TempDir(), DB: dsn, URL: "http://" + freeAddr(t), log: &syncBuffer{}, env: env}
	}
	for _, r := range rs {
		// One public URL (replica 1's here; a load balancer's when deployed).
		r.flags = []string{"--public-url", rs[0].URL}
		r.start(t)
	}
	for _, r := range rs {
		r.waitHealthy(t)
	}
	var admin creds
	for _, r := range rs {
		if raw, err := os.ReadFile(filepath.Join(r.DataDir, "admin-credentials.json")); err == nil {
			if err := json.Unmarshal(raw, &admin); err != nil {
				t.Fatal(err)
			}
		}
	}
	w := rs[0]
	token := w.token(t, admin)
	var role struct{ ID string }
	if st := w.api(t, token, "POST", "/iam/role", `{"name":"console-admin","accessPolicy":{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}}`, &role); st >= 300 {
		t.Fatalf("role: %d", st)
	}
	const password = "correct horse battery staple"
	w.inviteDeveloper(t, token, "dev@example.org", role.ID, password)

	// Sign in on replica 1, as a browser does.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	res, err := c.Get(w.URL + "/console/signin")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	form := res.Request.URL.Query()
	form.Set("action", "signin")
	form.Set("email", "dev@example.org")
	form.Set("password", password)
	res, err = c.PostForm(w.URL+"/oauth/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Request.URL.Path != "/console/dashboard" {
		t.Fatalf("sign-in: %d at %s: %s", res.StatusCode, res.Request.URL, body)
	}
	u, _ := url.Parse(w.URL + "/console")
	var session string
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "ward_console" {
			session = ck.Value
		}
	}
	if session == "" {
		t.Fatal("no session cookie")
	}

	// Replica 2, the same cookie: signed in, and its sign-out form passes.
	page := func(r *ward) (int, string, string) {
		req, _ := http.NewRequest("GET", r.URL+"/console/dashboard", nil)
		req.AddCookie(&http.Cookie{Name: "ward_console", Value: session})
		res, err := http.DefaultTransport.RoundTrip(req) // no redirects followed
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Location"), string(b)
	}
	st, _, html := page(rs[1])
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(html)
	if st != 200 || !strings.Contains(html, "<h1>Dashboard</h1>") || m == nil {
		t.Fatalf("replica 2 with replica 1's session: %d %s", st, html)
	}
	req, _ := http.NewRequest("POST", rs[1].URL+"/console/signout", strings.NewReader(url.Values{"csrf": {m[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "ward_console", Value: session})
	res, err = http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("sign-out on replica 2: %d", res.StatusCode)
	}
	// Signed out everywhere: replica 1 sends the browser to the welcome page.
	if st, loc, _ := page(rs[0]); st != http.StatusSeeOther || loc != "/console" {
		t.Errorf("replica 1 after sign-out on replica 2: %d to %q", st, loc)
	}
}
