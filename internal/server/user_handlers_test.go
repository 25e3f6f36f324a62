package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
)

// mustDo sends a request and fails the test unless the status is want.
func (ts *testServer) mustDo(t *testing.T, want int, method, path, token, body string) map[string]any {
	t.Helper()
	status, out := ts.do(t, method, path, token, body)
	if status != want {
		t.Fatalf("%s %s: %d %v, want %d", method, path, status, out, want)
	}
	return out
}

// doList sends a GET and decodes a JSON array answer.
func (ts *testServer) doList(t *testing.T, path, token string) []map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", ts.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out []map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", path, res.StatusCode, err)
	}
	return out
}

func TestApplicationEndpoints(t *testing.T) {
	ts := newTestServer(t)
	app := ts.mustDo(t, 200, "POST", "/v1/application", ts.token,
		`{"name":"Portal","description":"for patients","allowedCallbackUrls":["https://app.example.com/cb"],"refreshTokenEnabled":true}`)
	id, _ := app["id"].(string)
	for _, k := range []string{"id", "name", "clientId", "allowedCallbackUrls", "allowedLogoutUrls", "allowedWebOriginsUrls", "allowedCORSOriginsUrls",
		"refreshTokenEnabled", "mfaEnabled", "passwordlessSMS", "loginWithEmailEnabled", "shouldSendInviteEmail"} {
		if _, ok := app[k]; !ok {
			t.Errorf("application lacks %s: %v", k, app)
		}
	}
	if app["refreshTokenEnabled"] != true || app["loginWithEmailEnabled"] != true || app["secret"] != nil {
		t.Fatalf("created = %v", app)
	}
	list := ts.doList(t, "/v1/application", ts.token)
	if len(list) != 1 || len(list[0]) != 4 || list[0]["clientId"] != app["clientId"] || list[0]["description"] != "for patients" {
		t.Fatalf("list = %v", list)
	}
	cases := []struct {
		name, method, path, body string
		status                   int
		check                    func(map[string]any) bool
	}{
		{"get", "GET", "/v1/application/" + id, "", 200, func(m map[string]any) bool { return m["name"] == "Portal" }},
		{"patch", "PATCH", "/v1/application/" + id, `{"name":"Portal 2","allowedLogoutUrls":["http://localhost:3000/bye"]}`, 200,
			func(m map[string]any) bool { return m["name"] == "Portal 2" && m["description"] == "for patients" }},
		{"patch bad callback", "PATCH", "/v1/application/" + id, `{"allowedCallbackUrls":["http://app.example.com/cb"]}`, 400, nil},
		{"create without callbacks", "POST", "/v1/application", `{"name":"x"}`, 400, nil},
		{"create with a fragment", "POST", "/v1/application", `{"name":"x","allowedCallbackUrls":["https://a.example/cb#f"]}`, 400, nil},
		{"rotate", "POST", "/v1/application/" + id + "/rotate-secret", `{}`, 200, func(m map[string]any) bool { s, _ := m["secret"].(string); return len(s) >= 32 }},
		{"revoke without a token", "POST", "/v1/application/" + id + "/revoke-refresh-token", `{}`, 400, nil},
		// RFC 7009: an unknown token is not an error (the real revocation is in e2e TestSMARTAppLaunch).
		{"revoke an unknown token", "POST", "/v1/application/" + id + "/revoke-access-token", `{"token":"t"}`, 200, nil},
		{"get unknown", "GET", "/v1/application/nope", "", 404, nil},
		{"delete", "DELETE", "/v1/application/" + id, "", 204, nil},
		{"get deleted", "GET", "/v1/application/" + id, "", 404, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, out := ts.do(t, c.method, c.path, ts.token, c.body)
			if status != c.status || (c.check != nil && !c.check(out)) {
				t.Fatalf("%d %v, want %d", status, out, c.status)
			}
		})
	}
}

func TestUserEndpoints(t *testing.T) {
	ts := newTestServer(t)
	app := ts.mustDo(t, 200, "POST", "/v1/application", ts.token, `{"name":"Portal","allowedCallbackUrls":[]}`)["id"].(string)
	role := ts.mustDo(t, 200, "POST", "/v1/iam/role", ts.token, `{"name":"patient","accessPolicy":{"rule":[]}}`)["id"].(string)
	invite := func(email, profile string) map[string]any {
		return ts.mustDo(t, 200, "POST", "/v1/user/invite", ts.token, `{"applicationId":"`+app+`","email":"`+email+`",
			"resource":{"resourceType":"Patient","name":[{"given":["Ada"],"family":"Lovelace"}]},"profile":"`+profile+`","roles":["`+role+`"]}`)
	}
	u := invite("Ada@Example.org", "Patient/ada")
	id := u["id"].(string)
	if u["name"] != "Ada Lovelace" || u["email"] != "ada@example.org" || u["phoneNumber"] != nil || u["authenticationMethod"] != "email" ||
		u["profile"] != "Patient/ada" || !strings.HasPrefix(u["invitationUrl"].(string), testURL+"/user-invite/") {
		t.Fatalf("invite = %v", u)
	}
	if roles, _ := u["roles"].([]any); len(roles) != 1 {
		t.Fatalf("invite roles = %v", u["roles"])
	}
	for i, e := range []string{"b", "c", "d"} {
		invite(e+"@example.org", "Patient/"+string(rune('1'+i)))
	}

	cases := []struct {
		name, method, path, body string
		status                   int
		check                    func(map[string]any) bool
	}{
		{"get", "GET", "/v1/user/" + id, "", 200, func(m map[string]any) bool { return m["email"] == "ada@example.org" && m["invitationUrl"] == nil }},
		{"patch", "PATCH", "/v1/user/" + id, `{"email":"lovelace@example.org","roles":[],"accessPolicy":{"rule":[{"resource":"FHIR:Patient:*","action":"FHIR:Read","effect":"Allow"}]}}`, 200,
			func(m map[string]any) bool {
				r, _ := m["roles"].([]any)
				return m["email"] == "lovelace@example.org" && len(r) == 0 && m["accessPolicy"] != nil
			}},
		{"patch taken email", "PATCH", "/v1/user/" + id, `{"email":"B@example.org"}`, 409, nil},
		{"invite taken email", "POST", "/v1/user/invite", `{"applicationId":"` + app + `","email":"b@example.org","profile":"Patient/x","roles":["` + role + `"]}`, 409, nil},
		{"invite without a profile writer", "POST", "/v1/user/invite", `{"applicationId":"` + app + `","email":"e@example.org","resource":{"resourceType":"Patient"},"roles":["` + role + `"]}`, 501,
			func(m map[string]any) bool { return strings.Contains(m["message"].(string), "profile") }},
		{"invite unknown application", "POST", "/v1/user/invite", `{"applicationId":"nope","email":"e@example.org","profile":"Patient/x","roles":["` + role + `"]}`, 400, nil},
		{"me with an M2M token", "GET", "/v1/user/me", "", 403, nil},
		{"v2 page", "GET", "/v1/user/v2/list?sort=email&limit=2&cursor=undefined", "", 200, func(m map[string]any) bool {
			d, _ := m["data"].([]any)
			md, _ := m["metadata"].(map[string]any)
			return len(d) == 2 && md["nextCursor"] != nil && d[0].(map[string]any)["email"] == "b@example.org"
		}},
		{"v2 filter", "GET", "/v1/user/v2/list?email=LOVELACE", "", 200, func(m map[string]any) bool {
			d, _ := m["data"].([]any)
			md, _ := m["metadata"].(map[string]any)
			return len(d) == 1 && md["nextCursor"] == nil && len(d[0].(map[string]any)) == 4
		}},
		{"v2 bad sort", "GET", "/v1/user/v2/list?sort=age", "", 400, nil},
		{"v2 bad cursor", "GET", "/v1/user/v2/list?sort=createdAt&cursor=eA", "", 400, nil},
		{"delete", "DELETE", "/v1/user/" + id, "", 204, nil},
		{"get deleted", "GET", "/v1/user/" + id, "", 404, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, out := ts.do(t, c.method, c.path, ts.token, c.body)
			if status != c.status || (c.check != nil && !c.check(out)) {
				t.Fatalf("%d %v, want %d", status, out, c.status)
			}
		})
	}

	// Paging through v2 visits every user once.
	var seen []string
	cursor := ""
	for range 5 {
		page := ts.mustDo(t, 200, "GET", "/v1/user/v2/list?sort=email&sortOrder=desc&limit=2&cursor="+url.QueryEscape(cursor), ts.token, "")
		for _, d := range page["data"].([]any) {
			seen = append(seen, d.(map[string]any)["email"].(string))
		}
		next, _ := page["metadata"].(map[string]any)["nextCursor"].(string)
		if cursor = next; cursor == "" {
			break
		}
	}
	if strings.Join(seen, " ") != "d@example.org c@example.org b@example.org" {
		t.Fatalf("paged = %v", seen)
	}
	list := ts.doList(t, "/v1/user", ts.token)
	if len(list) != 3 || len(list[0]) != 4 {
		t.Fatalf("list = %v", list)
	}
}

func TestUserInvitationPageAndMe(t *testing.T) {
	ts := newTestServer(t)
	app := ts.mustDo(t, 200, "POST", "/v1/application", ts.token, `{"name":"Portal","allowedCallbackUrls":[]}`)["id"].(string)
	role := ts.mustDo(t, 200, "POST", "/v1/iam/role", ts.token, `{"name":"patient"}`)["id"].(string)
	u := ts.mustDo(t, 200, "POST", "/v1/user/invite", ts.token,
		`{"applicationId":"`+app+`","email":"ada@example.org","profile":"Patient/ada","roles":["`+role+`"]}`)
	link := strings.TrimPrefix(u["invitationUrl"].(string), testURL)

	res, err := http.Get(ts.URL + link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(page), `<form method="post">`) || strings.Contains(string(page), "<script") ||
		res.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("page: %d %s", res.StatusCode, page)
	}
	res, err = http.PostForm(ts.URL+link, url.Values{"password": {"short"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 400 || !strings.Contains(string(page), "at least") {
		t.Fatalf("weak password via the form: %d %s", res.StatusCode, page)
	}
	res, err = http.PostForm(ts.URL+link, url.Values{"password": {"correct horse battery staple"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(page), "Your account is ready") {
		t.Fatalf("accept via the form: %d %s", res.StatusCode, page)
	}
	ts.mustDo(t, 404, "POST", link, "", `{"password":"correct horse battery staple"}`)

	// A token of the user, as the login flow will issue it.
	iss := auth.NewIssuer(ts.keys.Ring, testURL, testURL, time.Now)
	userToken, _, err := iss.Issue(context.Background(), auth.Principal{ProjectID: ts.admin.ProjectID, Kind: auth.KindUser, ID: u["id"].(string)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	me := ts.mustDo(t, 200, "GET", "/v1/user/me", userToken, "")
	if me["id"] != u["id"] || me["profile"] != "Patient/ada" {
		t.Fatalf("me = %v", me)
	}
	// The user's role grants nothing: other endpoints are denied.
	ts.mustDo(t, 403, "GET", "/v1/user/"+u["id"].(string), userToken, "")
	// A role a user holds cannot be deleted; a deleted user's token stops working.
	ts.mustDo(t, 409, "DELETE", "/v1/iam/role/"+role, ts.token, "")
	ts.mustDo(t, 204, "DELETE", "/v1/user/"+u["id"].(string), ts.token, "")
	ts.mustDo(t, 401, "GET", "/v1/user/me", userToken, "")
	ts.mustDo(t, 204, "DELETE", "/v1/iam/role/"+role, ts.token, "")
}

// Every user and application endpoint enforces its catalog action on its
// resource, and a grant on one user reaches only that user.
func TestUserEndpointsAuthorize(t *testing.T) {
	ts := newTestServer(t)
	app := ts.mustDo(t, 200, "POST", "/v1/application", ts.token, `{"name":"Portal","allowedCallbackUrls":[]}`)["id"].(string)
	u := ts.mustDo(t, 200, "POST", "/v1/user/invite", ts.token,
		`{"applicationId":"`+app+`","email":"a@example.org","profile":"Patient/a","accessPolicy":{"rule":[]}}`)["id"].(string)
	other := ts.mustDo(t, 200, "POST", "/v1/user/invite", ts.token,
		`{"applicationId":"`+app+`","email":"b@example.org","profile":"Patient/b","accessPolicy":{"rule":[]}}`)["id"].(string)
	c := ts.mustDo(t, 200, "POST", "/v1/m2m", ts.token,
		`{"name":"narrow","accessPolicy":{"rule":[{"resource":"App:User:`+u+`","action":"App:GetUser","effect":"Allow"}]}}`)
	secret := ts.mustDo(t, 200, "POST", "/v1/m2m/"+c["id"].(string)+"/rotate-secret", ts.token, `{}`)["secret"].(string)
	narrow := ts.clientToken(t, c["clientId"].(string), secret)

	ts.mustDo(t, 200, "GET", "/v1/user/"+u, narrow, "")
	cases := []struct{ method, path, want string }{
		{"GET", "/v1/user/" + other, "App:GetUser on App:User:" + other},
		{"GET", "/v1/user", "App:ListAllUsers on App:User:*"},
		{"GET", "/v1/user/v2/list", "App:ListAllUsers on App:User:*"},
		{"POST", "/v1/user/invite", "App:CreateUser on App:User:*"},
		{"PATCH", "/v1/user/" + u, "App:UpdateUser on App:User:" + u},
		{"DELETE", "/v1/user/" + u, "App:DeleteUser on App:User:" + u},
		{"GET", "/v1/application", "App:ListAllApplications on App:Application:*"},
		{"POST", "/v1/application", "App:CreateApplication on App:Application:*"},
		{"GET", "/v1/application/" + app, "App:GetApplication on App:Application:" + app},
		{"PATCH", "/v1/application/" + app, "App:UpdateApplication on App:Application:" + app},
		{"DELETE", "/v1/application/" + app, "App:DeleteApplication on App:Application:" + app},
		{"POST", "/v1/application/" + app + "/rotate-secret", "App:RotateApplicationSecret on App:Application:" + app},
		{"POST", "/v1/application/" + app + "/revoke-refresh-token", "App:RevokeRefreshToken on App:Application:" + app},
		{"POST", "/v1/application/" + app + "/revoke-access-token", "App:RevokeAccessToken on App:Application:" + app},
	}
	for _, c := range cases {
		name := c.method + " " + strings.NewReplacer(u, "{id}", other, "{other}", app, "{id}").Replace(c.path)
		t.Run(name, func(t *testing.T) {
			out := ts.mustDo(t, 403, c.method, c.path, narrow, `{}`)
			if msg, _ := out["message"].(string); !strings.Contains(msg, c.want) {
				t.Fatalf("message %q does not name %s", msg, c.want)
			}
		})
	}
}
