package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/smart/scope"
	"github.com/wardhealth/ward/internal/store"
)

// SMART App Launch: discovery, the authorization endpoint (its sign-in,
// patient-picker and consent pages are in consent.go and pages.go), and the
// authorization_code and refresh_token grants of the token endpoint.

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

var smartScopesSupported = []string{"openid", "fhirUser", "launch/patient", "offline_access", "online_access",
	"patient/*.cruds", "user/*.cruds", "system/*.cruds", "patient/*.read", "patient/*.write", "user/*.read", "user/*.write",
	"system/*.read", "system/*.write"}

// discovery holds what SMART and OpenID Connect discovery both publish.
func (s *Server) discovery() map[string]any {
	u := s.cfg.PublicURL
	return map[string]any{
		"issuer":                                u,
		"jwks_uri":                              u + "/.well-known/jwks.json",
		"authorization_endpoint":                u + "/oauth/authorize",
		"token_endpoint":                        u + "/oauth/token",
		"introspection_endpoint":                u + "/oauth/introspect",
		"revocation_endpoint":                   u + "/oauth/revoke",
		"grant_types_supported":                 []string{"authorization_code", "client_credentials", "refresh_token"},
		"response_types_supported":              []string{"code"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "private_key_jwt"},
		"scopes_supported":                      smartScopesSupported,
	}
}

// SmartConfiguration is GET .well-known/smart-configuration (App Launch
// 2.x §conformance), served at the root and at the FHIR base.
func (s *Server) SmartConfiguration(w http.ResponseWriter, r *http.Request) error {
	m := s.discovery()
	m["token_endpoint_auth_signing_alg_values_supported"] = []string{"RS384", "ES384"}
	m["capabilities"] = []string{"launch-standalone", "authorize-post", "client-public", "client-confidential-symmetric",
		"client-confidential-asymmetric", "sso-openid-connect", "context-standalone-patient", "permission-offline",
		"permission-online", "permission-patient", "permission-user", "permission-v1", "permission-v2"}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, m)
	return nil
}

// OpenIDConfiguration is OpenID Connect discovery for the same server.
func (s *Server) OpenIDConfiguration(w http.ResponseWriter, r *http.Request) error {
	m := s.discovery()
	m["subject_types_supported"] = []string{"public"}
	m["id_token_signing_alg_values_supported"] = []string{auth.AlgRS256}
	m["claims_supported"] = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser"}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, m)
	return nil
}

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
	if q.ClientID == DeveloperClientID {
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
	action := r.PostForm.Get("action")
	switch action {
	case "":
		return render(w, http.StatusOK, "signin", q.RedirectURI, page)
	case "deny":
		redirectError(w, r, q, "access_denied", "the user declined")
		return nil
	case "signin":
		if u, err = s.iam.LoginUser(r.Context(), projectID, r.PostForm.Get("email"), r.PostForm.Get("password"), clientIP(r)); err != nil {
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
		Challenge: q.Challenge, Nonce: q.Nonce, AuthTime: s.now().Unix(), FHIRUser: u.Profile, State: q.State}
	g.Scopes = grantedScopes(set, app, u.Profile != "")
	// Any patient/ scope needs a patient in context (App Launch 2 §scopes).
	needPatient := set.Has("launch/patient") || set.HasContext("patient")
	return s.afterSignIn(w, r, pending{Grant: g, App: app.Name, Account: strings.TrimSpace(r.PostForm.Get("email"))}, needPatient)
}

// DeveloperClientID is the built-in public client developers sign in with
// (a CLI or script on their machine): the same page, password rules and
// throttling as users, a loopback redirect (RFC 8252 §7.3) and PKCE. Its
// tokens are developer tokens: no project (named per request in
// x-oystehr-project-id), no scopes, the developer's policy per project.
const DeveloperClientID = "ward-cli"

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
	if !developerRedirect(q.RedirectURI) {
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
	const name = "Ward's command-line tool"
	page := signinPageData{pageBase: pageBase{Title: "Developer sign-in", App: name, Host: "this computer (" + redirectHost(q.RedirectURI) + ")"},
		Request: q.fields()}
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
	id, err := s.iam.LoginDeveloper(r.Context(), r.PostForm.Get("email"), r.PostForm.Get("password"), clientIP(r))
	if err != nil {
		return s.loginFailed(w, r, err, page, action, q.RedirectURI)
	}
	g := smartGrant{Developer: true, UserID: id, ClientID: DeveloperClientID, RedirectURI: q.RedirectURI,
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

// clientIP is the peer address, for login throttling. Forwarded headers
// are not trusted: any client could set them.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// --- token endpoint grants ---

// appClient authenticates the application at the token endpoint: a
// confidential one with its secret (Basic or form), a public one by its
// client_id alone (PKCE binds its code). grantClient is the client the
// presented code or refresh token was issued to: a public app's refresh may
// name no client (SMART App Launch 2: "authentication is not possible (and
// thus not required)"). A refusal is an *oauthFailure; other errors are
// the server's.
func (s *Server) appClient(ctx context.Context, r *http.Request, form url.Values, grantClient string) (iam.Application, string, error) {
	id, secret := clientCredentials(r, form)
	if id == "" && secret == "" {
		id = grantClient
	}
	if secret != "" {
		app, projectID, err := s.iam.AuthenticateApplication(ctx, id, secret)
		if errors.Is(err, fault.ErrUnauthorized) {
			return iam.Application{}, "", &oauthFailure{http.StatusUnauthorized, "invalid_client", "invalid client credentials"}
		}
		return app, projectID, err
	}
	if id == DeveloperClientID {
		return iam.Application{Name: "Ward CLI", ClientID: DeveloperClientID}, "", nil
	}
	if id == "" {
		return iam.Application{}, "", &oauthFailure{http.StatusUnauthorized, "invalid_client", "client_id is required"}
	}
	app, projectID, err := s.iam.ApplicationByClientID(ctx, id)
	if errors.Is(err, fault.ErrNotFound) {
		return iam.Application{}, "", &oauthFailure{http.StatusUnauthorized, "invalid_client", "unknown client_id"}
	}
	if err != nil {
		return iam.Application{}, "", err
	}
	if app.Confidential {
		return iam.Application{}, "", &oauthFailure{http.StatusUnauthorized, "invalid_client",
			"this application is confidential: authenticate with its client secret (HTTP Basic or client_secret)"}
	}
	return app, projectID, nil
}

// oauthFailure is a refusal at the token endpoint (RFC 6749 §5.2).
type oauthFailure struct {
	status      int
	code, about string
}

func (f *oauthFailure) Error() string { return f.code + ": " + f.about }

// writeOAuth answers err: an *oauthFailure as the OAuth error it is, any
// other error is returned for the server's error path (5xx, logged).
func writeOAuth(w http.ResponseWriter, err error) error {
	var f *oauthFailure
	if errors.As(err, &f) {
		oauthError(w, f.status, f.code, f.about)
		return nil
	}
	return err
}

// pkceMatches checks RFC 7636 S256: base64url(sha256(verifier)) = challenge.
func pkceMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

func (s *Server) tokenFromCode(w http.ResponseWriter, r *http.Request, form url.Values, inProject InProject) error {
	app, projectID, err := s.appClient(r.Context(), r, form, "")
	if err != nil {
		return writeOAuth(w, err)
	}
	inProject(projectID)
	_, data, err := s.store.TakeOAuthCode(r.Context(), secretHash("code", form.Get("code")), s.now())
	if errors.Is(err, store.ErrNotFound) {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the authorization code is invalid, expired or already used")
		return nil
	}
	if err != nil {
		return err
	}
	var g smartGrant
	if err := json.Unmarshal(data, &g); err != nil {
		return fmt.Errorf("stored grant: %w", err)
	}
	switch {
	case g.ClientID != app.ClientID:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the authorization code was issued to another client")
	case form.Get("redirect_uri") != g.RedirectURI:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri differs from the authorization request's")
	case !pkceMatches(form.Get("code_verifier"), g.Challenge):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code_challenge")
	default:
		return s.issueSMART(w, r, g, "")
	}
	return nil
}

func (s *Server) tokenFromRefresh(w http.ResponseWriter, r *http.Request, form url.Values, inProject InProject) error {
	hash := secretHash("refresh", form.Get("refresh_token"))
	// The token names its client: looked up, not used, so a confidential
	// app that forgot its secret does not burn its refresh token.
	grantClient, err := s.store.RefreshTokenClient(r.Context(), hash)
	if errors.Is(err, store.ErrNotFound) {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token is invalid, expired or revoked")
		return nil
	}
	if err != nil {
		return err
	}
	app, projectID, err := s.appClient(r.Context(), r, form, grantClient)
	if err != nil {
		return writeOAuth(w, err)
	}
	inProject(projectID)
	t, err := s.store.UseRefreshToken(r.Context(), hash, s.now())
	if errors.Is(err, store.ErrReused) {
		s.log.WarnContext(r.Context(), "refresh token reused: grant revoked", "project", t.ProjectID, "client", t.ClientID)
		if err := s.revokeFamily(r.Context(), t.Family); err != nil {
			return err
		}
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token was already used; every token of this grant is now revoked")
		return nil
	}
	if errors.Is(err, store.ErrNotFound) {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token is invalid, expired or revoked")
		return nil
	}
	if err != nil {
		return err
	}
	var g smartGrant
	if err := json.Unmarshal(t.Grant, &g); err != nil {
		return fmt.Errorf("stored grant: %w", err)
	}
	if g.ClientID != app.ClientID {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token was issued to another client")
		return nil
	}
	// A refresh may only narrow the grant.
	if sc := strings.Fields(form.Get("scope")); len(sc) > 0 {
		for _, x := range sc {
			if !g.has(x) {
				oauthError(w, http.StatusBadRequest, "invalid_scope", "scope "+x+" was not granted")
				return nil
			}
		}
		g.Scopes = sc
	}
	return s.issueSMART(w, r, g, t.Family)
}

// issueSMART answers the token request for a user's grant: access token,
// launch context, id_token (openid) and a rotated refresh token
// (offline_access/online_access) in family ("" starts one).
func (s *Server) issueSMART(w http.ResponseWriter, r *http.Request, g smartGrant, family string) error {
	ctx := r.Context()
	if g.Developer {
		return s.issueDeveloper(w, r, g)
	}
	// The user may have been deleted since they consented.
	if _, err := s.iam.GetUser(ctx, g.ProjectID, g.UserID); err != nil {
		if errors.Is(err, fault.ErrNotFound) {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "the user no longer exists")
			return nil
		}
		return err
	}
	p := auth.Principal{ProjectID: g.ProjectID, Kind: auth.KindUser, ID: g.UserID, ClientID: g.ClientID,
		Scopes: g.Scopes, Patient: g.Patient}
	if g.has("fhirUser") || g.has("openid") || g.Patient != "" {
		p.FHIRUser = g.FHIRUser
	}
	tok, claims, err := s.issuer.Issue(ctx, p, s.cfg.TokenTTL)
	if err != nil {
		return err
	}
	out := map[string]any{"access_token": tok, "token_type": "Bearer",
		"expires_in": int(claims.ExpiresAt.Sub(s.now()).Seconds() + 0.5), "scope": strings.Join(g.Scopes, " ")}
	if g.Patient != "" {
		out["patient"] = g.Patient
		out["need_patient_banner"] = true
	}
	if g.has("openid") {
		it := auth.IDToken{Subject: g.UserID, ClientID: g.ClientID, Nonce: g.Nonce, AuthTime: time.Unix(g.AuthTime, 0)}
		if g.has("fhirUser") && g.FHIRUser != "" {
			it.FHIRUser = s.fhirBaseURL() + "/" + g.FHIRUser
		}
		if out["id_token"], err = s.issuer.IDToken(ctx, it, s.cfg.TokenTTL); err != nil {
			return err
		}
	}
	if g.has("offline_access") || g.has("online_access") {
		rt, err := randomToken()
		if err != nil {
			return err
		}
		if family == "" {
			if family, err = randomToken(); err != nil {
				return err
			}
		}
		ttl := offlineTTL
		if !g.has("offline_access") {
			ttl = onlineTTL
		}
		data, err := json.Marshal(g)
		if err != nil {
			return err
		}
		if err := s.store.PutRefreshToken(ctx, store.RefreshToken{Hash: secretHash("refresh", rt), ProjectID: g.ProjectID,
			Family: family, ClientID: g.ClientID, Grant: data, ExpiresAt: s.now().Add(ttl),
			AccessJTI: claims.TokenID, AccessExpiresAt: claims.ExpiresAt}); err != nil {
			return err
		}
		out["refresh_token"] = rt
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, out)
	return nil
}

// issueDeveloper answers a developer's code exchange: an access token with
// no project and no scopes (no refresh tokens: a CLI signs in again).
func (s *Server) issueDeveloper(w http.ResponseWriter, r *http.Request, g smartGrant) error {
	p := auth.Principal{Kind: auth.KindDeveloper, ID: g.UserID}
	tok, claims, err := s.issuer.Issue(r.Context(), p, s.cfg.TokenTTL)
	if err != nil {
		return err
	}
	out := map[string]any{"access_token": tok, "token_type": "Bearer",
		"expires_in": int(claims.ExpiresAt.Sub(s.now()).Seconds() + 0.5), "scope": strings.Join(g.Scopes, " ")}
	if g.has("openid") {
		it := auth.IDToken{Subject: g.UserID, ClientID: g.ClientID, Nonce: g.Nonce, AuthTime: time.Unix(g.AuthTime, 0)}
		if out["id_token"], err = s.issuer.IDToken(r.Context(), it, s.cfg.TokenTTL); err != nil {
			return err
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
	return nil
}

// revokeFamily revokes the access tokens issued within a grant (its
// refresh tokens are revoked by the store).
func (s *Server) revokeFamily(ctx context.Context, family string) error {
	if family == "" {
		return nil
	}
	toks, err := s.store.FamilyAccessTokens(ctx, family, s.now())
	if err != nil {
		return err
	}
	for _, t := range toks {
		if err := s.revoked.Revoke(ctx, t.JTI, t.ExpiresAt); err != nil {
			return err
		}
	}
	return nil
}
