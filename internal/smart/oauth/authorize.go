package oauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/smart/scope"
)

// SMART App Launch: the authorization endpoint and developer sign-in (the
// picker and consent steps are in consent.go, the pages in pages.go; the
// code is exchanged in grants.go).

const (
	codeTTL        = time.Minute      // an authorization code is exchanged at once
	interactionTTL = 10 * time.Minute // the picker and consent steps between sign-in and code
	offlineTTL     = 30 * 24 * time.Hour
	onlineTTL      = 12 * time.Hour
)

// smartGrant is what the user consented to: stored under an authorization
// code, then under each refresh token of the grant.
type smartGrant struct {
	// Developer marks a developer's sign-in (the built-in CLI client): no
	// project, no SMART context, a token under the developer's policy.
	Developer   bool     `json:"developer,omitempty"`
	ProjectID   string   `json:"project"`
	UserID      string   `json:"user"`
	ClientID    string   `json:"client"`
	RedirectURI string   `json:"redirectUri"`
	Challenge   string   `json:"challenge,omitempty"`
	Scopes      []string `json:"scopes"`
	Patient     string   `json:"patient,omitempty"`
	FHIRUser    string   `json:"fhirUser,omitempty"` // "Patient/123"
	Nonce       string   `json:"nonce,omitempty"`
	AuthTime    int64    `json:"authTime"`
	State       string   `json:"state,omitempty"` // only while the patient is picked
}

func (g smartGrant) has(sc string) bool {
	for _, s := range g.Scopes {
		if s == sc {
			return true
		}
	}
	return false
}

// secretHash names a one-time credential in the database; namespace keeps
// codes and picker interactions apart.
func secretHash(namespace, secret string) string {
	sum := sha256.Sum256([]byte(namespace + "\x00" + secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// fhirBaseURL is the SMART audience: the FHIR base clients send as aud.
func (s *Server) fhirBaseURL() string { return s.cfg.FHIRBase }

// authzRequest is an authorization request's parameters (GET query or
// POST form), carried through the login page in hidden fields.
type authzRequest struct {
	ResponseType, ClientID, RedirectURI, Scope, State, Aud, Challenge, Method, Nonce, Launch string
}

func readAuthzRequest(v url.Values) authzRequest {
	q := authzRequest{ResponseType: v.Get("response_type"), ClientID: v.Get("client_id"), RedirectURI: v.Get("redirect_uri"),
		Scope: v.Get("scope"), State: v.Get("state"), Aud: v.Get("aud"), Challenge: v.Get("code_challenge"),
		Method: v.Get("code_challenge_method"), Nonce: v.Get("nonce"), Launch: v.Get("launch")}
	if q.Aud == "" {
		q.Aud = v.Get("resource") // RFC 8707's name, a synonym in SMART 2
	}
	return q
}

func (q authzRequest) fields() []hiddenField {
	return []hiddenField{{"response_type", q.ResponseType}, {"client_id", q.ClientID}, {"redirect_uri", q.RedirectURI},
		{"scope", q.Scope}, {"state", q.State}, {"aud", q.Aud}, {"code_challenge", q.Challenge},
		{"code_challenge_method", q.Method}, {"nonce", q.Nonce}}
}

type hiddenField struct{ Name, Value string }

// check validates what may only be reported to a registered redirect URI:
// it returns the OAuth error code and description, or "" when valid.
func (s *Server) checkAuthzRequest(q authzRequest) (string, string) {
	switch {
	case q.ResponseType != "code":
		return "unsupported_response_type", "response_type must be code"
	case q.Launch != "":
		return "invalid_request", "EHR launch is not supported: use a standalone launch (scope launch/patient)"
	case q.Challenge == "" || q.Method != "S256":
		return "invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256"
	case len(q.Challenge) != 43:
		return "invalid_request", "code_challenge must be the base64url SHA-256 of the code_verifier (43 characters)"
	case strings.TrimSuffix(q.Aud, "/") != s.fhirBaseURL():
		return "invalid_request", "aud must be this server's FHIR base URL, " + s.fhirBaseURL()
	case strings.TrimSpace(q.Scope) == "":
		return "invalid_scope", "scope is required"
	}
	set, err := scope.Parse(q.Scope)
	if err != nil {
		return "invalid_scope", err.Error()
	}
	if set.HasContext("system") {
		return "invalid_scope", "system/ scopes are for backend services (client_credentials), not user login"
	}
	return "", ""
}

// redirectWith sends the browser back to the application with params
// added to its redirect URI (which may hold a query of its own).
func redirectWith(w http.ResponseWriter, r *http.Request, redirectURI string, params url.Values) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func redirectError(w http.ResponseWriter, r *http.Request, q authzRequest, code, desc string) {
	v := url.Values{"error": {code}, "error_description": {desc}}
	if q.State != "" {
		v.Set("state", q.State)
	}
	redirectWith(w, r, q.RedirectURI, v)
}

// Authorize is the SMART authorization endpoint, GET and POST. The first
// request shows the sign-in page; its form posts back here with
// action=signin (credentials), signup or deny. A user whose profile is not
// a Patient then chooses the patient when the scopes need one, and
// everyone allows or denies on the consent page (consent.go).
func (s *Server) Authorize(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return errorPage(w, http.StatusBadRequest, "The request is not valid form encoding.")
	}
	if r.Method == http.MethodPost && r.PostForm.Get("interaction") != "" {
		return s.continueAuthorize(w, r)
	}
	q := readAuthzRequest(r.Form)
	if q.ClientID == DeveloperClientID || q.ClientID == ConsoleClientID {
		return s.authorizeDeveloper(w, r, q)
	}
	app, projectID, err := s.iam.ApplicationByClientID(r.Context(), q.ClientID)
	if errors.Is(err, fault.ErrNotFound) {
		return errorPage(w, http.StatusBadRequest, "Unknown application: check the client_id.")
	}
	if err != nil {
		return err
	}
	// Never redirect to an unregistered URI (an open redirector).
	if q.RedirectURI == "" || !app.AllowsRedirect(q.RedirectURI) {
		return errorPage(w, http.StatusBadRequest, "The redirect_uri is not one of the application's allowed callback URLs.")
	}
	if code, desc := s.checkAuthzRequest(q); code != "" {
		redirectError(w, r, q, code, desc)
		return nil
	}
	set, _ := scope.Parse(q.Scope) // checked above
	page := signinPageData{pageBase: pageBase{Title: "Sign in", App: app.Name, Host: redirectHost(q.RedirectURI)},
		Request: q.fields(), Min: iam.MinPasswordLength}
	if proj, err := s.store.GetProject(r.Context(), projectID); err == nil {
		page.Signup = proj.SignupEnabled && proj.DefaultPatientRoleID != ""
	}
	var u iam.User
	authTime := s.now()
	action := r.PostForm.Get("action")
	switch action {
	case "":
		// A remembered sign-in of this project skips the password.
		_, sess, su, ok, err := s.session(r.Context(), r)
		if err != nil {
			return err
		}
		if !ok || sess.ProjectID != projectID {
			return render(w, http.StatusOK, "signin", q.RedirectURI, page)
		}
		u, authTime = su, sess.CreatedAt
	case "deny":
		redirectError(w, r, q, "access_denied", "the user declined")
		return nil
	case "signin":
		if u, err = s.iam.LoginUser(r.Context(), projectID, r.PostForm.Get("email"), r.PostForm.Get("password"), s.cfg.Proxies.Client(r)); err != nil {
			return s.loginFailed(w, r, err, page, action, q.RedirectURI)
		}
	case "signup":
		if u, err = s.signUp(r, projectID); err != nil {
			return s.loginFailed(w, r, err, page, action, q.RedirectURI)
		}
	default:
		return errorPage(w, http.StatusBadRequest, "Unknown action.")
	}
	g := smartGrant{ProjectID: projectID, UserID: u.ID, ClientID: app.ClientID, RedirectURI: q.RedirectURI,
		Challenge: q.Challenge, Nonce: q.Nonce, AuthTime: authTime.Unix(), FHIRUser: u.Profile, State: q.State}
	g.Scopes = grantedScopes(set, app, u.Profile != "")
	// Any patient/ scope needs a patient in context (App Launch 2 §scopes).
	needPatient := set.Has("launch/patient") || set.HasContext("patient")
	account := strings.TrimSpace(r.PostForm.Get("email"))
	if u.Email != nil && *u.Email != "" {
		account = *u.Email
	}
	p := pending{Grant: g, App: app.Name, Account: account, Request: &q, NeedPatient: needPatient}
	// The second step, if any, comes before the session: a password
	// alone never signs an enrolled user in.
	if p.Step, err = s.secondStep(r, projectID, u.ID, app.MFAEnabled, action != ""); err != nil {
		return err
	}
	if p.Step != "" {
		return s.askCode(w, r, http.StatusOK, p, "")
	}
	if action != "" {
		if err := s.startSession(r.Context(), w, projectID, u.ID); err != nil {
			return err
		}
	}
	return s.afterSignIn(w, r, p, needPatient)
}

// DeveloperClientID is the built-in public client developers sign in with
// (a CLI or script on their machine): the same page, password rules and
// throttling as users, a loopback redirect (RFC 8252 §7.3) and PKCE. Its
// tokens are developer tokens: no project (named per request in
// x-oystehr-project-id), no scopes, the developer's policy per project.
const DeveloperClientID = "ward-cli"

// ConsoleClientID is Ward's web console (package console): a developer
// sign-in like ward-cli's whose one redirect URI is the console's
// callback on Ward's public URL. Ward's own first-party page: no consent
// step.
const ConsoleClientID = "ward-console"

// ConsoleCallbackPath is the console's redirect URI, under the public URL.
const ConsoleCallbackPath = "/console/callback"

// developerRedirect accepts http://127.0.0.1|[::1]|localhost:<any port>/...
func developerRedirect(uri string) bool {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" {
		return false
	}
	h := u.Hostname()
	return h == "127.0.0.1" || h == "::1" || h == "localhost"
}

func (s *Server) authorizeDeveloper(w http.ResponseWriter, r *http.Request, q authzRequest) error {
	name := "Ward's command-line tool"
	host := "this computer (" + redirectHost(q.RedirectURI) + ")"
	if q.ClientID == ConsoleClientID {
		// Exactly the console's callback: a code never leaves Ward.
		if q.RedirectURI != s.cfg.PublicURL+ConsoleCallbackPath {
			return errorPage(w, http.StatusBadRequest, "The console signs in only through "+s.cfg.PublicURL+ConsoleCallbackPath+".")
		}
		name, host = "Ward console", redirectHost(q.RedirectURI)
	} else if !developerRedirect(q.RedirectURI) {
		return errorPage(w, http.StatusBadRequest, "Developer sign-in redirects only to this machine (http://127.0.0.1:<port>/...).")
	}
	switch {
	case q.ResponseType != "code":
		redirectError(w, r, q, "unsupported_response_type", "response_type must be code")
		return nil
	case q.Challenge == "" || q.Method != "S256" || len(q.Challenge) != 43:
		redirectError(w, r, q, "invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256")
		return nil
	}
	page := signinPageData{pageBase: pageBase{Title: "Developer sign-in", App: name, Host: host},
		Request: q.fields(), FirstParty: q.ClientID == ConsoleClientID}
	action := r.PostForm.Get("action")
	switch action {
	case "":
		return render(w, http.StatusOK, "signin", q.RedirectURI, page)
	case "deny":
		redirectError(w, r, q, "access_denied", "the developer declined")
		return nil
	case "signin":
	default:
		return errorPage(w, http.StatusBadRequest, "Unknown action.")
	}
	id, err := s.iam.LoginDeveloper(r.Context(), r.PostForm.Get("email"), r.PostForm.Get("password"), s.cfg.Proxies.Client(r))
	if err != nil {
		return s.loginFailed(w, r, err, page, action, q.RedirectURI)
	}
	g := smartGrant{Developer: true, UserID: id, ClientID: q.ClientID, RedirectURI: q.RedirectURI,
		Challenge: q.Challenge, Nonce: q.Nonce, AuthTime: s.now().Unix(), State: q.State}
	if set, err := scope.Parse(q.Scope); err == nil && set.Has("openid") {
		g.Scopes = []string{"openid"}
	}
	return s.afterSignIn(w, r, pending{Grant: g, App: name, Account: strings.TrimSpace(r.PostForm.Get("email"))}, false)
}

// signUp registers a patient from the sign-up form (the project must have
// signupEnabled and a defaultPatientRoleId; iam checks both). The new
// Patient resource becomes the user's profile.
func (s *Server) signUp(r *http.Request, projectID string) (iam.User, error) {
	f := r.PostForm
	given, family := strings.TrimSpace(f.Get("given")), strings.TrimSpace(f.Get("family"))
	if given == "" || family == "" {
		return iam.User{}, fault.Invalid("given and family names are required")
	}
	res, err := json.Marshal(map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"given": []string{given}, "family": family}}})
	if err != nil {
		return iam.User{}, err
	}
	return s.iam.SignUpPatient(r.Context(), projectID, f.Get("email"), f.Get("password"), res)
}

// loginFailed shows the sign-in page again with the reason (wrong
// credentials, throttled, a sign-up problem) next to the form it is about,
// focus on the field to fix, or fails the request on a server error.
func (s *Server) loginFailed(w http.ResponseWriter, r *http.Request, err error, page signinPageData, form, redirectURI string) error {
	status, msg := fault.Public(err)
	if status >= 500 {
		return err
	}
	if ra := fault.RetryAfter(err); ra > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ra))
	}
	f := r.PostForm
	page.Error, page.ErrorIn, page.Email = sentence(msg), form, strings.TrimSpace(f.Get("email"))
	page.Invalid = form == "signin" && status == http.StatusUnauthorized
	if form == "signup" {
		page.Given, page.Family = f.Get("given"), f.Get("family")
	}
	return render(w, status, "signin", redirectURI, page)
}

// grantedScopes is what the login grants of what was asked: resource
// scopes as asked (the user's policy still applies to each request),
// refresh tokens only for applications that allow them, fhirUser only for
// users with a profile. EHR launch is not offered.
func grantedScopes(set scope.Set, app iam.Application, hasProfile bool) []string {
	var out []string
	for _, sc := range set.Strings() {
		switch sc {
		case "offline_access", "online_access":
			if !app.RefreshTokenEnabled {
				continue
			}
		case "fhirUser":
			if !hasProfile {
				continue
			}
		case "launch":
			continue
		}
		out = append(out, sc)
	}
	return out
}

// finishAuthorize stores the grant under a fresh code and sends the
// browser back to the application.
func (s *Server) finishAuthorize(w http.ResponseWriter, r *http.Request, g smartGrant) error {
	code, err := randomToken()
	if err != nil {
		return err
	}
	state := g.State
	g.State = ""
	data, err := json.Marshal(g)
	if err != nil {
		return err
	}
	if err := s.store.PutOAuthCode(r.Context(), secretHash("code", code), g.ProjectID, data, s.now().Add(codeTTL)); err != nil {
		return err
	}
	v := url.Values{"code": {code}}
	if state != "" {
		v.Set("state", state)
	}
	redirectWith(w, r, g.RedirectURI, v)
	return nil
}

// userPrincipal is the logged-in user acting under their own policy (no
// scopes), for what the login pages read on their behalf.
func userPrincipal(g smartGrant) auth.Principal {
	return auth.Principal{ProjectID: g.ProjectID, Kind: auth.KindUser, ID: g.UserID, ClientID: g.ClientID}
}
