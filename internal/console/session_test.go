package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/seal"
)

// clock is a settable time for session expiry.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// newTestConsole builds a console whose developer "dev-a" belongs to
// projects p1 and p2 (p3 is another tenant's). Its API answers nothing:
// these tests stop before any API call, or must.
func newTestConsole(t *testing.T, publicURL string) (*Console, *clock, *int) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	apiCalls := new(int)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*apiCalls++
		http.Error(w, `{"message":"not here","code":404}`, http.StatusNotFound)
	})
	projects := func(_ context.Context, dev string) ([]iam.ProjectStub, error) {
		if dev == "dev-a" {
			return []iam.ProjectStub{{ID: "p1", Name: "One"}, {ID: "p2", Name: "Two"}}, nil
		}
		return []iam.ProjectStub{{ID: "p3", Name: "Three"}}, nil
	}
	return New(Config{PublicURL: publicURL}, Deps{API: api, Projects: projects, Now: clk.now}), clk, apiCalls
}

func TestSessionAndCSRF(t *testing.T) {
	c, clk, apiCalls := newTestConsole(t, "http://ward.test")
	exp := clk.t.Add(time.Hour)
	tokA, err := c.sessions.start(bg, "dev-a", "access-a", "p1", "One", exp)
	if err != nil {
		t.Fatal(err)
	}
	tokB, err := c.sessions.start(bg, "dev-b", "access-b", "p3", "Three", exp)
	if err != nil {
		t.Fatal(err)
	}
	sessA, _ := getSession(c, tokA)
	sessB, _ := getSession(c, tokB)
	tokEnded, _ := c.sessions.start(bg, "dev-a", "access-c", "p1", "One", exp)
	ended, _ := getSession(c, tokEnded)
	c.sessions.end(bg, ended.key)
	tokExpired, _ := c.sessions.start(bg, "dev-a", "access-d", "p1", "One", clk.t.Add(time.Second))
	expired, _ := getSession(c, tokExpired)
	clk.t = clk.t.Add(2 * time.Second)

	cases := []struct {
		name        string
		method      string
		cookie      string // "" sends none
		form        url.Values
		wantStatus  int
		wantProject string // session A's project afterwards ("": unchanged p1)
	}{
		{name: "GET without a session goes to the welcome page", method: "GET", wantStatus: http.StatusSeeOther},
		{name: "POST without a session", method: "POST", form: url.Values{"csrf": {sessA.CSRF}, "project": {"p2"}}, wantStatus: http.StatusForbidden},
		{name: "forged cookie", method: "POST", cookie: "forged-" + strings.Repeat("x", 38), form: url.Values{"csrf": {sessA.CSRF}, "project": {"p2"}}, wantStatus: http.StatusForbidden},
		{name: "the stored hash is not a cookie", method: "POST", cookie: sessA.key, form: url.Values{"csrf": {sessA.CSRF}, "project": {"p2"}}, wantStatus: http.StatusForbidden},
		{name: "missing CSRF token", method: "POST", cookie: tokA, form: url.Values{"project": {"p2"}}, wantStatus: http.StatusForbidden},
		{name: "empty CSRF token", method: "POST", cookie: tokA, form: url.Values{"csrf": {""}, "project": {"p2"}}, wantStatus: http.StatusForbidden},
		{name: "another session's CSRF token", method: "POST", cookie: tokA, form: url.Values{"csrf": {sessB.CSRF}, "project": {"p2"}}, wantStatus: http.StatusForbidden},
		{name: "the CSRF token in the query string", method: "POST", cookie: tokA, form: url.Values{"project": {"p2"}}, wantStatus: http.StatusForbidden},
		{name: "a prefix of the CSRF token", method: "POST", cookie: tokA, form: url.Values{"csrf": {sessA.CSRF[:20]}, "project": {"p2"}}, wantStatus: http.StatusForbidden},
		{name: "signed-out session", method: "POST", cookie: tokEnded, form: url.Values{"csrf": {ended.CSRF}, "project": {"p2"}}, wantStatus: http.StatusForbidden},
		{name: "expired session", method: "POST", cookie: tokExpired, form: url.Values{"csrf": {expired.CSRF}, "project": {"p2"}}, wantStatus: http.StatusForbidden},
		{name: "cross-project: another tenant's project", method: "POST", cookie: tokA, form: url.Values{"csrf": {sessA.CSRF}, "project": {"p3"}}, wantStatus: http.StatusForbidden},
		{name: "cross-project: an unknown project", method: "POST", cookie: tokA, form: url.Values{"csrf": {sessA.CSRF}, "project": {"p1' OR 1=1"}}, wantStatus: http.StatusForbidden},
		{name: "own session, own token, own project", method: "POST", cookie: tokA, form: url.Values{"csrf": {sessA.CSRF}, "project": {"p2"}}, wantStatus: http.StatusSeeOther, wantProject: "p2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.sessions.setProject(bg, sessA.key, "p1", "One")
			var body *strings.Reader
			target := "/console/project/switch"
			if tc.name == "the CSRF token in the query string" {
				target += "?csrf=" + url.QueryEscape(sessA.CSRF)
			}
			if tc.method == "GET" {
				target = "/console/project"
			}
			body = strings.NewReader(tc.form.Encode())
			r := httptest.NewRequest(tc.method, "http://ward.test"+target, body)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.cookie != "" {
				r.AddCookie(&http.Cookie{Name: sessionCookie, Value: tc.cookie})
			}
			w := httptest.NewRecorder()
			c.Handler().ServeHTTP(w, r)
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.wantStatus, w.Body)
			}
			got, _ := getSession(c, tokA)
			want := tc.wantProject
			if want == "" {
				want = "p1"
			}
			if got.Project != want {
				t.Errorf("session A's project = %q, want %q", got.Project, want)
			}
			if csp := w.Header().Get("Content-Security-Policy"); w.Code != http.StatusSeeOther && !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("CSP = %q", csp)
			}
		})
	}
	if *apiCalls != 0 {
		t.Errorf("refused requests reached the API %d times", *apiCalls)
	}
}

func TestSessionCookie(t *testing.T) {
	for _, tc := range []struct {
		url    string
		secure bool
	}{{"http://127.0.0.1:8080", false}, {"https://ward.example.org", true}} {
		c, _, _ := newTestConsole(t, tc.url)
		ck := c.cookie(sessionCookie, "v", 60)
		if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/console" || ck.Secure != tc.secure {
			t.Errorf("%s: cookie %+v", tc.url, ck)
		}
	}
}

func TestCallbackRefusesForeignState(t *testing.T) {
	c, _, apiCalls := newTestConsole(t, "http://ward.test")
	verifier := strings.Repeat("v", 43)
	for _, tc := range []struct{ name, cookie, state string }{
		{"no login cookie", "", "s1"},
		{"another sign-in's state", "s2." + verifier, "s1"},
		{"empty state", "." + verifier, ""},
		{"short verifier", "s1.short", "s1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://ward.test/console/callback?code=c&state="+tc.state, nil)
			if tc.cookie != "" {
				r.AddCookie(&http.Cookie{Name: loginCookie, Value: tc.cookie})
			}
			w := httptest.NewRecorder()
			c.Handler().ServeHTTP(w, r)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
		})
	}
	if *apiCalls != 0 {
		t.Errorf("a refused callback exchanged its code (%d API calls)", *apiCalls)
	}
}

func TestSessionsBounded(t *testing.T) {
	clk := &clock{t: time.Unix(0, 0)}
	m := newMemSessions()
	s := newSessions(m, nil, clk.now, nil)
	s.seal, _ = seal.New(seal.NewKey())
	for i := 0; i < maxMemSessions+5; i++ {
		if _, err := s.start(bg, "d", "a", "p", "P", clk.t.Add(time.Duration(i+1)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if len(m.m) != maxMemSessions {
		t.Errorf("%d sessions kept, want %d", len(m.m), maxMemSessions)
	}
}

var bg = context.Background()

// getSession is the session of a cookie token, if there is one.
func getSession(c *Console, tok string) (session, bool) {
	s, err := c.sessions.get(bg, tok)
	return s, err == nil
}

func FuzzParseLogin(f *testing.F) {
	f.Add("state." + strings.Repeat("v", 43))
	f.Add("")
	f.Add("..")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, v string) {
		state, verifier, ok := parseLogin(v)
		if !ok {
			if state != "" || verifier != "" {
				t.Fatal("values returned with ok=false")
			}
			return
		}
		if state == "" || len(verifier) < 43 || state+"."+verifier != v {
			t.Fatalf("parseLogin(%q) = %q, %q", v, state, verifier)
		}
	})
}

// A token the API no longer accepts (revoked, account removed) ends the
// console session instead of leaving it half alive.
func TestRefusedTokenEndsSession(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"message":"token revoked","code":401}`, http.StatusUnauthorized)
	})
	c := New(Config{PublicURL: "http://ward.test"}, Deps{API: api, Now: clk.now})
	tok, err := c.sessions.start(bg, "dev-a", "access-a", "p1", "One", clk.t.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "http://ward.test/console/roles", nil)
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: tok})
	w := httptest.NewRecorder()
	c.Handler().ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("status %d", w.Code)
	}
	if _, ok := getSession(c, tok); ok {
		t.Error("the session outlived its token")
	}
	if ck := w.Result().Cookies(); len(ck) != 1 || ck[0].Name != sessionCookie || ck[0].MaxAge >= 0 {
		t.Errorf("cookies = %v, want the session cookie cleared", ck)
	}
}

// Sign-out forgets the session, clears the cookie and revokes the
// developer's access token at Ward's revocation endpoint.
func TestSignOutRevokes(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	var revoked []string
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" && r.URL.Path == "/oauth/revoke" && r.Header.Get("Authorization") == "Bearer "+r.PostFormValue("token") {
			revoked = append(revoked, r.PostFormValue("token"))
		}
	})
	c := New(Config{PublicURL: "http://ward.test"}, Deps{API: api, Now: clk.now})
	tok, err := c.sessions.start(bg, "dev-a", "access-a", "p1", "One", clk.t.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sess, _ := getSession(c, tok)
	r := httptest.NewRequest("POST", "http://ward.test/console/signout", strings.NewReader(url.Values{"csrf": {sess.CSRF}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: tok})
	w := httptest.NewRecorder()
	c.Handler().ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if _, ok := getSession(c, tok); ok {
		t.Error("the session outlived sign-out")
	}
	if len(revoked) != 1 || revoked[0] != "access-a" {
		t.Errorf("revoked %v, want the session's access token", revoked)
	}
	if ck := w.Result().Cookies(); len(ck) != 1 || ck[0].MaxAge >= 0 {
		t.Errorf("cookies = %v, want the session cookie cleared", ck)
	}
}
