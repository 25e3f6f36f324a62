package e2e

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestSMARTAppLaunch drives Ward's SMART authorization server with
// golang.org/x/oauth2: discovery, authorization code + PKCE S256 through
// the login page, a patient/*.rs token confined to the user's own
// compartment, openid fhirUser, refresh with rotation and reuse detection,
// and a practitioner who picks the patient.
func TestSMARTAppLaunch(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testSMARTAppLaunch(t, b) })
	}
}

const smartCallback = "http://127.0.0.1:9/callback" // never contacted: the test reads the redirect

// noRedirect is a browser that stops at the first redirect, so the test
// can read the code the authorization server sends back.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func testSMARTAppLaunch(t *testing.T, b storetest.Backend) {
	w := startWard(t, b)
	admin := w.token(t, w.Admin)
	ctx := context.Background()

	// Two patients with one Observation each.
	ids := map[string]string{}
	for _, name := range []string{"Alice", "Bob"} {
		st, p := w.fhirDo(t, admin, "POST", "Patient", map[string]any{"resourceType": "Patient", "birthDate": "1980-02-03",
			"name": []any{map[string]any{"given": []string{name}, "family": "Smith"}}})
		if st != 201 {
			t.Fatalf("create patient: %d %v", st, p)
		}
		ids[name] = p["id"].(string)
		st, o := w.fhirDo(t, admin, "POST", "Observation", map[string]any{"resourceType": "Observation", "status": "final",
			"code":    map[string]any{"text": "weight of " + name},
			"subject": map[string]any{"reference": "Patient/" + ids[name]}})
		if st != 201 {
			t.Fatalf("create observation: %d %v", st, o)
		}
	}
	st, prac := w.fhirDo(t, admin, "POST", "Practitioner", map[string]any{"resourceType": "Practitioner", "name": []any{map[string]any{"family": "Who"}}})
	if st != 201 {
		t.Fatalf("create practitioner: %d", st)
	}

	// The users' policy reads everything; SMART scopes must narrow it.
	var role struct{ ID string }
	if st := w.api(t, admin, "POST", "/iam/role", `{"name":"smart-reader","accessPolicy":{"rule":[{"resource":["FHIR:*"],"action":["FHIR:Read","FHIR:Search"],"effect":"Allow"}]}}`, &role); st != 201 && st != 200 {
		t.Fatalf("create role: %d", st)
	}
	var app struct {
		ID       string `json:"id"`
		ClientID string `json:"clientId"`
	}
	if st := w.api(t, admin, "POST", "/application", fmt.Sprintf(`{"name":"Smart app","allowedCallbackUrls":[%q],"refreshTokenEnabled":true}`, smartCallback), &app); st >= 300 {
		t.Fatalf("create application: %d", st)
	}
	const password = "correct horse battery staple"
	invite := func(email, profile string) { w.inviteUser(t, admin, app.ID, role.ID, email, profile, password) }
	invite("alice@example.org", "Patient/"+ids["Alice"])
	invite("dr.who@example.org", "Practitioner/"+prac["id"].(string))

	// Discovery at the FHIR base, as a SMART client starts.
	var disc struct {
		AuthorizationEndpoint string   `json:"authorization_endpoint"`
		TokenEndpoint         string   `json:"token_endpoint"`
		Challenge             []string `json:"code_challenge_methods_supported"`
		Capabilities          []string `json:"capabilities"`
		Issuer                string   `json:"issuer"`
		JWKSURI               string   `json:"jwks_uri"`
	}
	getJSON(t, w.URL+"/fhir/.well-known/smart-configuration", &disc)
	if disc.AuthorizationEndpoint != w.URL+"/oauth/authorize" || strings.Join(disc.Challenge, ",") != "S256" {
		t.Fatalf("smart-configuration: %+v", disc)
	}
	var oidc struct {
		Issuer string `json:"issuer"`
	}
	getJSON(t, w.URL+"/.well-known/openid-configuration", &oidc)
	if oidc.Issuer != w.URL {
		t.Errorf("openid-configuration issuer = %q", oidc.Issuer)
	}

	conf := &oauth2.Config{ClientID: app.ClientID, RedirectURL: smartCallback,
		Endpoint: oauth2.Endpoint{AuthURL: disc.AuthorizationEndpoint, TokenURL: disc.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams},
		Scopes:   []string{"launch/patient", "openid", "fhirUser", "offline_access", "patient/*.rs"}}
	aud := oauth2.SetAuthURLParam("aud", w.URL+"/fhir")

	// Without PKCE the request goes back to the app with an error.
	loc := browse(t, conf.AuthCodeURL("s0", aud), nil)
	if loc.Query().Get("error") != "invalid_request" || loc.Query().Get("state") != "s0" {
		t.Fatalf("authorize without PKCE: %s", loc)
	}

	// A wrong password shows the page again; the right one returns a code.
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("s1", aud, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "n-1"))
	if st, body := loginForm(t, authURL, "alice@example.org", "wrong password!", "signin"); st != 401 || !strings.Contains(body, "Wrong email or password") {
		t.Fatalf("wrong password: %d %s", st, body)
	}
	code := login(t, authURL, "alice@example.org", password, "s1")

	// A verifier that does not match the challenge fails, and burns the code.
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); oauthCode(err) != "invalid_grant" {
		t.Fatalf("exchange with the wrong verifier: %v", err)
	}
	code = login(t, authURL, "alice@example.org", password, "s1")
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); oauthCode(err) != "invalid_grant" {
		t.Fatalf("a code works once: %v", err)
	}
	if tok.Extra("patient") != ids["Alice"] || tok.RefreshToken == "" || !strings.Contains(fmt.Sprint(tok.Extra("scope")), "patient/*.rs") {
		t.Fatalf("token response: patient=%v refresh=%q scope=%v", tok.Extra("patient"), tok.RefreshToken, tok.Extra("scope"))
	}
	idt := verifyIDToken(t, w.URL, disc.JWKSURI, fmt.Sprint(tok.Extra("id_token")))
	if fmt.Sprint(idt["aud"]) != "["+app.ClientID+"]" || idt["fhirUser"] != w.URL+"/fhir/Patient/"+ids["Alice"] || idt["nonce"] != "n-1" || idt["iss"] != w.URL {
		t.Fatalf("id_token claims: %v", idt)
	}

	// patient/*.rs: own Patient and Observations only, totals included.
	at := tok.AccessToken
	if st, _ := w.fhirDo(t, at, "GET", "Patient/"+ids["Alice"], nil); st != 200 {
		t.Errorf("read own Patient: %d", st)
	}
	if st, _ := w.fhirDo(t, at, "GET", "Patient/"+ids["Bob"], nil); st != 403 {
		t.Errorf("read another patient: %d, want 403", st)
	}
	if st, bundle := w.fhirDo(t, at, "GET", "Observation?_total=accurate", nil); st != 200 || bundle["total"] != float64(1) {
		t.Errorf("search Observations: %d total=%v, want 1 (Alice's)", st, bundle["total"])
	}
	if st, _ := w.fhirDo(t, at, "POST", "Observation", map[string]any{"resourceType": "Observation", "status": "final",
		"code": map[string]any{"text": "x"}, "subject": map[string]any{"reference": "Patient/" + ids["Alice"]}}); st != 403 {
		t.Errorf("create with .rs scopes: %d, want 403", st)
	}

	// Introspection reports the SMART fields.
	var intro map[string]any
	postForm(t, w.URL+"/oauth/introspect", admin, url.Values{"token": {at}}, &intro)
	if intro["active"] != true || intro["patient"] != ids["Alice"] || intro["client_id"] != app.ClientID || !strings.Contains(fmt.Sprint(intro["scope"]), "patient/*.rs") {
		t.Errorf("introspection: %v", intro)
	}

	// A public app refreshes naming no client (fhirclient sends only
	// grant_type and refresh_token; SMART App Launch 2 allows it).
	var bare struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		Patient      string `json:"patient"`
	}
	if st := postFormStatus(t, w.URL+"/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, &bare); st != 200 ||
		bare.RefreshToken == "" || bare.RefreshToken == tok.RefreshToken || bare.Patient != ids["Alice"] {
		t.Fatalf("refresh without client_id: %d %+v", st, bare)
	}
	tok.RefreshToken = bare.RefreshToken
	// Answers to authenticated requests stay out of every cache, errors too.
	for _, c := range []struct {
		path string
		want int
	}{{"Patient/" + ids["Alice"], 200}, {"Patient/" + ids["Bob"], 403}, {"Observation", 200}, {"Patient/" + ids["Alice"] + "/$everything", 200}} {
		req, _ := http.NewRequest("GET", w.URL+"/fhir/"+c.path, nil)
		req.Header.Set("Authorization", "Bearer "+bare.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.want || res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s: %d Cache-Control %q, want %d no-store", c.path, res.StatusCode, res.Header.Get("Cache-Control"), c.want)
		}
	}

	// Refresh once (rotation), then the old refresh token is refused and
	// the whole grant dies with it.
	old := tok.RefreshToken
	fresh, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: old}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.RefreshToken == "" || fresh.RefreshToken == old || fresh.Extra("patient") != ids["Alice"] {
		t.Fatalf("refreshed: refresh=%q patient=%v", fresh.RefreshToken, fresh.Extra("patient"))
	}
	if st, _ := w.fhirDo(t, fresh.AccessToken, "GET", "Patient/"+ids["Alice"], nil); st != 200 {
		t.Errorf("read with the refreshed token: %d", st)
	}
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: old}).Token(); oauthCode(err) != "invalid_grant" {
		t.Fatalf("reused refresh token: %v", err)
	}
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: fresh.RefreshToken}).Token(); oauthCode(err) != "invalid_grant" {
		t.Fatalf("after reuse, the rotated refresh token must be revoked too: %v", err)
	}
	if st, _ := w.fhirDo(t, fresh.AccessToken, "GET", "Patient/"+ids["Alice"], nil); st != 401 {
		t.Errorf("access token of a grant revoked by reuse: %d, want 401", st)
	}

	// Cancel on the sign-in page and Deny on the consent page send
	// access_denied back, with the state.
	// (More scopes than Alice allowed before, so the consent page shows.)
	moreURL := conf.AuthCodeURL("s1", aud, oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("scope", strings.Join(append(conf.Scopes, "patient/Observation.rs"), " ")))
	for _, action := range []string{"deny", "signin-deny"} {
		if loc := submit(t, moreURL, "alice@example.org", password, action); loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "s1" {
			t.Errorf("%s: %s", action, loc)
		}
	}

	// A practitioner chooses the patient first (by name, with search),
	// then consents naming that patient; Cancel in the picker denies.
	verifier = oauth2.GenerateVerifier()
	authURL = conf.AuthCodeURL("s2", aud, oauth2.S256ChallengeOption(verifier))
	st, page := loginForm(t, authURL, "dr.who@example.org", password, "signin")
	if st != 200 || !strings.Contains(page, "Choose a patient") || !strings.Contains(page, "Alice Smith") || strings.Contains(page, "Patient/") {
		t.Fatalf("picker: %d %s", st, page)
	}
	if loc := answer(t, w.URL, page, url.Values{"action": {"deny"}}); loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "s2" {
		t.Errorf("cancel in the picker: %s", loc)
	}
	_, page = loginForm(t, authURL, "dr.who@example.org", password, "signin")
	st, page = answerPage(t, w.URL, page, url.Values{"action": {"search"}, "q": {"bob"}})
	if st != 200 || !strings.Contains(page, "Bob Smith") || strings.Contains(page, "Alice Smith") {
		t.Fatalf("picker search: %d %s", st, page)
	}
	st, page = answerPage(t, w.URL, page, url.Values{"action": {"choose"}, "patient": {ids["Bob"]}})
	if st != 200 || !strings.Contains(page, "Allow Smart app to access Bob Smith&#39;s records?") {
		t.Fatalf("consent after the picker: %d %s", st, page)
	}
	loc = answer(t, w.URL, page, url.Values{"action": {"allow"}})
	tok, err = conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("practitioner exchange: %v (redirect %s)", err, loc)
	}
	if tok.Extra("patient") != ids["Bob"] {
		t.Fatalf("picked patient = %v", tok.Extra("patient"))
	}
	if st, _ := w.fhirDo(t, tok.AccessToken, "GET", "Patient/"+ids["Bob"], nil); st != 200 {
		t.Errorf("practitioner reads the picked patient: %d", st)
	}
	if st, _ := w.fhirDo(t, tok.AccessToken, "GET", "Patient/"+ids["Alice"], nil); st != 403 {
		t.Errorf("practitioner reads another patient with patient/ scopes: %d, want 403", st)
	}

	// Self-registration: with signupEnabled and a default patient role the
	// page offers an account; the new user gets a Patient of their own.
	var selfRole struct{ ID string }
	if st := w.api(t, admin, "POST", "/iam/role", `{"name":"self-registered","accessPolicy":{"rule":[{"resource":["FHIR:*"],"action":["FHIR:Read","FHIR:Search"],"effect":"Allow"}]}}`, &selfRole); st >= 300 {
		t.Fatalf("create role: %d", st)
	}
	if st := w.api(t, admin, "PATCH", "/project", fmt.Sprintf(`{"signupEnabled":true,"defaultPatientRoleId":%q}`, selfRole.ID), nil); st != 200 {
		t.Fatalf("enable signup: %d", st)
	}
	verifier = oauth2.GenerateVerifier()
	authURL = conf.AuthCodeURL("s3", aud, oauth2.S256ChallengeOption(verifier))
	res, err := noRedirect.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	signupPage, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(signupPage), "Create an account") {
		t.Fatalf("signup form missing: %s", signupPage)
	}
	form := hiddenFields(string(signupPage))
	for k, v := range map[string]string{"given": "Carol", "family": "New", "email": "carol@example.org", "password": password, "action": "signup"} {
		form.Set(k, v)
	}
	st, page = postPage(t, w.URL+"/oauth/authorize", form)
	if st != 200 || !strings.Contains(page, "Allow Smart app to access your health records?") {
		t.Fatalf("consent after sign-up: %d %s", st, page)
	}
	loc = answer(t, w.URL, page, url.Values{"action": {"allow"}})
	carol, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("signup exchange: %v (redirect %s)", err, loc)
	}
	carolID, _ := carol.Extra("patient").(string)
	if carolID == "" || carolID == ids["Alice"] || carolID == ids["Bob"] {
		t.Fatalf("signed-up patient = %q", carolID)
	}
	if st, p := w.fhirDo(t, carol.AccessToken, "GET", "Patient/"+carolID, nil); st != 200 || fmt.Sprint(p["name"]) == "" {
		t.Errorf("read own new Patient: %d %v", st, p)
	}
	if st, _ := w.fhirDo(t, carol.AccessToken, "GET", "Patient/"+ids["Alice"], nil); st != 403 {
		t.Errorf("new patient reads Alice: %d, want 403", st)
	}
	if st := w.api(t, admin, "DELETE", "/iam/role/"+selfRole.ID, "", nil); st != 409 {
		t.Errorf("delete the default patient role: %d, want 409", st)
	}

	// The Project API revokes an application's access token; the OAuth
	// revocation endpoint takes its refresh token (public client by id).
	if st := w.api(t, admin, "POST", "/application/"+app.ID+"/revoke-access-token", fmt.Sprintf(`{"token":%q}`, tok.AccessToken), nil); st != 200 {
		t.Fatalf("revoke-access-token: %d", st)
	}
	if st, _ := w.fhirDo(t, tok.AccessToken, "GET", "Patient/"+ids["Bob"], nil); st != 401 {
		t.Errorf("revoked access token: %d, want 401", st)
	}
	res, err = http.PostForm(w.URL+"/oauth/revoke", url.Values{"client_id": {app.ClientID}, "token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("revoke refresh token: %d", res.StatusCode)
	}
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); oauthCode(err) != "invalid_grant" {
		t.Fatalf("revoked refresh token: %v", err)
	}
}

// postFormStatus posts a form without credentials and decodes the answer.
func postFormStatus(t *testing.T, u string, form url.Values, out any) int {
	t.Helper()
	res, err := http.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		t.Fatalf("POST %s: %d, body not JSON: %v", u, res.StatusCode, err)
	}
	return res.StatusCode
}

func getJSON(t *testing.T, u string, out any) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

func postForm(t *testing.T, u, bearer string, form url.Values, out any) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+bearer)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

// browse follows an authorization URL that should redirect at once.
func browse(t *testing.T, u string, _ url.Values) *url.URL {
	t.Helper()
	res, err := noRedirect.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET %s: %d, want a redirect", u, res.StatusCode)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)

func hiddenFields(page string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		v.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return v
}

// loginForm opens the login page and submits it as a browser would; it
// returns the status and page of the answer when it is not a redirect.
func loginForm(t *testing.T, authURL, email, password, action string) (int, string) {
	t.Helper()
	res, err := noRedirect.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(page), `<form method="post"`) {
		t.Fatalf("login page: %d %s", res.StatusCode, page)
	}
	form := hiddenFields(string(page))
	form.Set("email", email)
	form.Set("password", password)
	form.Set("action", action)
	target := authURL[:strings.Index(authURL, "?")]
	res, err = noRedirect.PostForm(target, form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusSeeOther {
		return res.StatusCode, res.Header.Get("Location")
	}
	return res.StatusCode, string(body)
}

// submit goes through the sign-in page and returns where the browser is
// sent back to: action "deny" is Cancel on the sign-in page, "allow" and
// "signin-deny" sign in and answer the consent page with Allow or Deny.
func submit(t *testing.T, authURL, email, password, action string) *url.URL {
	t.Helper()
	signin := "deny"
	if action != "deny" {
		signin = "signin"
	}
	st, loc := loginForm(t, authURL, email, password, signin)
	remembered := st == http.StatusSeeOther && action == "allow" && strings.HasPrefix(loc, smartCallback+"?")
	if action != "deny" && !remembered {
		// Signing in alone never sends a code: consent is its own page
		// (unless the user allowed these scopes to this app before).
		if st != 200 || !strings.Contains(loc, `value="allow"`) {
			t.Fatalf("consent page: %d %s", st, loc)
		}
		u := answer(t, authURL[:strings.Index(authURL, "/oauth/")], loc, url.Values{"action": {strings.TrimPrefix(action, "signin-")}})
		loc, st = u.String(), http.StatusSeeOther
	}
	if st != http.StatusSeeOther {
		t.Fatalf("login: %d %s", st, loc)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loc, smartCallback+"?") {
		t.Fatalf("redirected to %s", loc)
	}
	return u
}

// answerPage posts a picker or consent page's hidden fields with more
// and returns the status and page of the answer (a redirect's Location).
func answerPage(t *testing.T, base, page string, more url.Values) (int, string) {
	t.Helper()
	form := hiddenFields(page)
	for k, v := range more {
		form[k] = v
	}
	return postPage(t, base+"/oauth/authorize", form)
}

// answer is answerPage for an answer that redirects to the application.
func answer(t *testing.T, base, page string, more url.Values) *url.URL {
	t.Helper()
	st, loc := answerPage(t, base, page, more)
	if st != http.StatusSeeOther {
		t.Fatalf("answer %v: %d %s", more, st, loc)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func postPage(t *testing.T, u string, form url.Values) (int, string) {
	t.Helper()
	res, err := noRedirect.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusSeeOther {
		return res.StatusCode, res.Header.Get("Location")
	}
	return res.StatusCode, string(body)
}

// login signs in, allows, and returns the authorization code (state checked).
func login(t *testing.T, authURL, email, password, state string) string {
	t.Helper()
	loc := submit(t, authURL, email, password, "allow")
	if loc.Query().Get("state") != state || loc.Query().Get("code") == "" {
		t.Fatalf("redirect: %s", loc)
	}
	return loc.Query().Get("code")
}

func oauthCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return fmt.Sprint(err)
}

// verifyIDToken checks an id_token's RS256 signature against the server's
// JWKS and its issuer, and returns its claims.
func verifyIDToken(t *testing.T, issuer, jwksURL, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("id_token is not a JWS: %q", tok)
	}
	var hdr struct{ Alg, Kid string }
	raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if err := json.Unmarshal(raw, &hdr); err != nil || hdr.Alg != "RS256" {
		t.Fatalf("id_token header %s: %v", raw, err)
	}
	var set struct {
		Keys []struct{ Kid, N, E string }
	}
	getJSON(t, jwksURL, &set)
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	ok := false
	for _, k := range set.Keys {
		if k.Kid != hdr.Kid {
			continue
		}
		n, _ := base64.RawURLEncoding.DecodeString(k.N)
		e, _ := base64.RawURLEncoding.DecodeString(k.E)
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil
	}
	if !ok {
		t.Fatal("id_token signature does not verify with the server's JWKS")
	}
	var claims map[string]any
	raw, _ = base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	if claims["iss"] != issuer {
		t.Errorf("id_token iss = %v, want %s", claims["iss"], issuer)
	}
	return claims
}

// TestDeveloperSignIn: a developer signs in on the same page through the
// built-in ward-cli client (loopback redirect, PKCE) and gets a developer
// token that works in the project named by x-oystehr-project-id.
func TestDeveloperSignIn(t *testing.T) {
	w := startWard(t, storetest.Backends()[0])
	admin := w.token(t, w.Admin)
	ctx := context.Background()
	var role struct{ ID string }
	if st := w.api(t, admin, "POST", "/iam/role", `{"name":"dev","accessPolicy":{"rule":[{"resource":"IAM:Role:*","action":"IAM:ListAllRoles","effect":"Allow"}]}}`, &role); st >= 300 {
		t.Fatalf("create role: %d", st)
	}
	var inv struct {
		InvitationURL string `json:"invitationUrl"`
	}
	if st := w.api(t, admin, "POST", "/developer/invite", `{"email":"dev@example.org","practitioner":{"resourceType":"Practitioner","name":[{"family":"Dev"}]},"roles":["`+role.ID+`"]}`, &inv); st >= 300 {
		t.Fatalf("invite developer: %d", st)
	}
	const password = "correct horse battery staple"
	res, err := http.Post(inv.InvitationURL, "application/json", strings.NewReader(`{"password":"`+password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("accept: %d", res.StatusCode)
	}
	conf := &oauth2.Config{ClientID: "ward-cli", RedirectURL: smartCallback, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: w.URL + "/oauth/authorize", TokenURL: w.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("d1", oauth2.S256ChallengeOption(verifier))
	if st, _ := loginForm(t, authURL, "dev@example.org", "not the password", "signin"); st != 401 {
		t.Fatalf("wrong password: %d", st)
	}
	bad := (&oauth2.Config{ClientID: "ward-cli", RedirectURL: "https://evil.example/cb", Endpoint: conf.Endpoint}).AuthCodeURL("x", oauth2.S256ChallengeOption(verifier))
	if res, err := noRedirect.Get(bad); err != nil || res.StatusCode != 400 {
		t.Fatalf("non-loopback redirect: %v %v", res.StatusCode, err)
	}
	tok, err := conf.Exchange(ctx, login(t, authURL, "dev@example.org", password, "d1"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		project string
		want    int
	}{{w.Admin.ProjectID, 200}, {"", 400}} {
		req, _ := http.NewRequest("GET", w.URL+"/v1/iam/role", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		if c.project != "" {
			req.Header.Set("x-oystehr-project-id", c.project)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("developer token, project %q: %d, want %d", c.project, res.StatusCode, c.want)
		}
	}
}
