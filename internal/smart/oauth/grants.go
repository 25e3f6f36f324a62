package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store"
)

// The authorization_code and refresh_token grants of the token endpoint:
// client authentication of applications, PKCE, issuing a user's (or a
// developer's) tokens, refresh token rotation and reuse detection.

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
	if id == DeveloperClientID || id == ConsoleClientID {
		return iam.Application{Name: "Ward CLI", ClientID: id}, "", nil
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
			Family: family, ClientID: g.ClientID, UserID: g.UserID, Grant: data, ExpiresAt: s.now().Add(ttl),
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
