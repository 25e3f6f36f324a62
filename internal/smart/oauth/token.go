package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/smart/clientauth"
	"github.com/wardhealth/ward/internal/smart/scope"
	"github.com/wardhealth/ward/internal/store"
)

// oauthError is RFC 6749 §5.2, plus message/code so the SDK's error parser
// also reads it.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="ward"`)
	}
	writeJSON(w, status, map[string]any{"error": code, "error_description": desc, "message": desc, "code": status})
}

// oauthForm reads an OAuth request: form-encoded (the standard) or JSON
// (what Oystehr's token endpoint takes).
func oauthForm(r *http.Request) (url.Values, error) {
	body, err := fault.ReadBody(r.Body)
	if err != nil {
		return nil, err
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, fault.Invalid("request body: %s", fault.JSONProblem(err))
		}
		v := url.Values{}
		for k, val := range m {
			s, ok := val.(string)
			if !ok {
				return nil, fault.Invalid("%s must be a string", k)
			}
			v.Set(k, s)
		}
		return v, nil
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fault.Invalid("the body is not valid form encoding")
	}
	return v, nil
}

// clientCredentials reads client_id/secret from HTTP Basic or the body.
func clientCredentials(r *http.Request, form url.Values) (id, secret string) {
	if u, p, ok := r.BasicAuth(); ok {
		uid, err1 := url.QueryUnescape(u)
		psec, err2 := url.QueryUnescape(p)
		if err1 == nil && err2 == nil {
			return uid, psec
		}
		return u, p
	}
	return form.Get("client_id"), form.Get("client_secret")
}

// Token is the token endpoint, POST /oauth/token: client_credentials (a
// secret or a private_key_jwt assertion), authorization_code and
// refresh_token.
func (s *Server) Token(w http.ResponseWriter, r *http.Request, inProject InProject) error {
	form, err := oauthForm(r)
	if err != nil {
		status, msg := fault.Public(err)
		oauthError(w, status, "invalid_request", msg)
		return nil
	}
	switch form.Get("grant_type") {
	case "client_credentials":
	case "authorization_code":
		return s.tokenFromCode(w, r, form, inProject)
	case "refresh_token":
		return s.tokenFromRefresh(w, r, form, inProject)
	case "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
		return nil
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be client_credentials, authorization_code or refresh_token")
		return nil
	}
	ttl := s.cfg.TokenTTL
	var p auth.Principal
	if at := form.Get("client_assertion_type"); at != "" || form.Get("client_assertion") != "" {
		// SMART Backend Services: private_key_jwt (RFC 7523).
		if at != clientauth.AssertionType {
			oauthError(w, http.StatusBadRequest, "invalid_request", "client_assertion_type must be "+clientauth.AssertionType)
			return nil
		}
		id, err := s.assertions.Verify(r.Context(), form.Get("client_assertion"), s.cfg.PublicURL+"/oauth/token")
		if err != nil {
			if errors.Is(err, clientauth.ErrInvalidClient) {
				oauthError(w, http.StatusUnauthorized, "invalid_client", err.Error())
				return nil
			}
			return err
		}
		c, err := s.store.GetM2MByClientID(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client")
			return nil
		}
		if err != nil {
			return err // the database's failure, not the client's: a 5xx
		}
		p = auth.Principal{ProjectID: c.ProjectID, Kind: auth.KindM2M, ID: c.ID, ClientID: c.ClientID}
		if ttl > 5*time.Minute {
			ttl = 5 * time.Minute // the SMART recommendation for backend services
		}
	} else {
		id, secret := clientCredentials(r, form)
		var err error
		if p, err = s.iam.AuthenticateClient(r.Context(), id, secret); errors.Is(err, fault.ErrUnauthorized) {
			oauthError(w, http.StatusUnauthorized, "invalid_client", "invalid client credentials")
			return nil
		} else if err != nil {
			return err
		}
	}
	inProject(p.ProjectID)
	// Requested SMART scopes narrow the token; none leaves it governed by
	// the client's policy alone (Oystehr's tokens carry no scope).
	if sc := strings.TrimSpace(form.Get("scope")); sc != "" {
		set, err := scope.Parse(sc)
		if err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_scope", err.Error())
			return nil
		}
		if set.HasContext("patient") || set.HasContext("user") {
			oauthError(w, http.StatusBadRequest, "invalid_scope", "client credentials grant system/ scopes only")
			return nil
		}
		p.Scopes = set.Strings()
	}
	// The audience is accepted for Oystehr compatibility; Ward's tokens are
	// always for Ward itself.
	tok, claims, err := s.issuer.Issue(r.Context(), p, ttl)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	out := map[string]any{
		"access_token": tok, "token_type": "Bearer", "expires_in": int(claims.ExpiresAt.Sub(s.now()).Seconds() + 0.5),
	}
	if len(p.Scopes) > 0 {
		out["scope"] = strings.Join(p.Scopes, " ")
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// assertionClient looks up backend-service clients for clientauth.
func (s *Server) assertionClient(ctx context.Context, clientID string) (clientauth.Client, error) {
	c, err := s.store.GetM2MByClientID(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return clientauth.Client{}, fmt.Errorf("%w: %s", clientauth.ErrUnknownClient, clientID)
	}
	if err != nil {
		return clientauth.Client{}, err
	}
	out := clientauth.Client{ID: c.ClientID, JWKSURL: c.JWKSURL}
	if c.JWKS != "" {
		out.JWKS = []byte(c.JWKS)
	}
	return out, nil
}

// storeReplay keeps assertion jtis in the database, shared by replicas.
type storeReplay struct {
	st  *store.Store
	now func() time.Time
}

func (r storeReplay) Use(ctx context.Context, iss, jti string, exp time.Time) (bool, error) {
	return r.st.UseAssertionJTI(ctx, iss, jti, exp, r.now())
}

// oauthCaller authenticates the caller of introspect/revoke: client
// credentials, or a bearer token of Ward's.
func (s *Server) oauthCaller(r *http.Request, form url.Values) (auth.Principal, bool, error) {
	ctx := r.Context()
	if tok, ok := bearer(r); ok {
		p, err := s.Verify(ctx, tok)
		if err != nil && !errors.Is(err, fault.ErrUnauthorized) {
			return auth.Principal{}, false, err // the store, not the caller
		}
		return p, err == nil, nil
	}
	id, secret := clientCredentials(r, form)
	p, err := s.iam.AuthenticateClient(ctx, id, secret)
	if err == nil {
		return p, true, nil
	}
	if !errors.Is(err, fault.ErrUnauthorized) {
		return auth.Principal{}, false, err
	}
	// A SMART application (RFC 7009 lets a public client name itself).
	app, projectID, err := s.appClient(ctx, r, form, "")
	if err == nil {
		return auth.Principal{ProjectID: projectID, ClientID: app.ClientID}, true, nil
	}
	var refused *oauthFailure
	if errors.As(err, &refused) {
		return auth.Principal{}, false, nil
	}
	return auth.Principal{}, false, err
}

// tokenRequest reads an introspection or revocation request: the form, the
// authenticated caller and the token it is about. On failure it has
// answered with the OAuth error and ok is false; err is the server's own
// failure (a store error is a 5xx, never invalid_client).
func (s *Server) tokenRequest(w http.ResponseWriter, r *http.Request, what string, inProject InProject) (form url.Values, caller auth.Principal, tok string, ok bool, err error) {
	form, err = oauthForm(r)
	if err != nil {
		status, msg := fault.Public(err)
		oauthError(w, status, "invalid_request", msg)
		return nil, caller, "", false, nil
	}
	if caller, ok, err = s.oauthCaller(r, form); err != nil {
		return nil, caller, "", false, err
	}
	if !ok {
		oauthError(w, http.StatusUnauthorized, "invalid_client", what+" needs client credentials or a bearer token")
		return nil, caller, "", false, nil
	}
	inProject(caller.ProjectID)
	if tok = strings.TrimSpace(form.Get("token")); tok == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "token is required")
		return nil, caller, "", false, nil
	}
	return form, caller, tok, true, nil
}

// Introspect is POST /oauth/introspect (RFC 7662).
func (s *Server) Introspect(w http.ResponseWriter, r *http.Request, inProject InProject) error {
	_, caller, tok, ok, err := s.tokenRequest(w, r, "introspection", inProject)
	if err != nil || !ok {
		return err
	}
	p, err := s.Verify(r.Context(), tok)
	// Tokens of other projects are reported inactive: no cross-tenant probing.
	active := err == nil && (p.ProjectID == caller.ProjectID || (p.Kind == auth.KindDeveloper && p.ID == caller.ID))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, auth.Introspection(p, s.cfg.PublicURL, active))
	return nil
}

// Revoke is POST /oauth/revoke (RFC 7009).
func (s *Server) Revoke(w http.ResponseWriter, r *http.Request, inProject InProject) error {
	form, caller, tok, ok, err := s.tokenRequest(w, r, "revocation", inProject)
	if err != nil || !ok {
		return err
	}
	if hint := form.Get("token_type_hint"); hint != "" && hint != "access_token" && hint != "refresh_token" {
		oauthError(w, http.StatusBadRequest, "unsupported_token_type", "token_type_hint must be access_token or refresh_token")
		return nil
	}
	// RFC 7009: answer 200 whether or not the token was valid. A caller may
	// revoke its own tokens and the tokens of its own client.
	p, err := s.Verify(r.Context(), tok)
	switch {
	case err == nil:
		own := p.ProjectID == caller.ProjectID && (p.ID == caller.ID || (caller.ID == "" && p.ClientID == caller.ClientID))
		if own {
			if err := s.revoked.Revoke(r.Context(), p.TokenID, p.ExpiresAt); err != nil {
				return err
			}
		}
	case caller.ProjectID != "":
		// Not an access token: a refresh token revokes its whole grant. An
		// application revokes only its own (RFC 7009 §2.1); a project's
		// client with a bearer token any of the project's.
		client := ""
		if caller.ID == "" {
			client = caller.ClientID
		}
		family, err := s.store.RevokeRefreshToken(r.Context(), caller.ProjectID, client, secretHash("refresh", tok), s.now())
		if err != nil {
			return err
		}
		if err := s.revokeFamily(r.Context(), family); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// JWKS is GET /.well-known/jwks.json: the keys Ward's tokens verify with.
func (s *Server) JWKS(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err := w.Write(s.keys.Ring().JWKS())
	return err
}

// RevokeApplicationToken revokes a refresh token (refresh) or an access
// token issued to one of the application's users, for the Project API
// (/application/{id}/revoke-*-token). Errors: NotFound (no such
// application), Invalid (no token).
func (s *Server) RevokeApplicationToken(ctx context.Context, projectID, applicationID, token string, refresh bool) error {
	if strings.TrimSpace(token) == "" {
		return fault.Invalid("token is required")
	}
	app, err := s.iam.GetApplication(ctx, projectID, applicationID)
	if err != nil {
		return err
	}
	if refresh {
		return s.revokeRefreshToken(ctx, projectID, app.ClientID, token)
	}
	return s.revokeAccessToken(ctx, projectID, app.ClientID, token)
}

// revokeRefreshToken revokes the grant of a refresh token the application
// clientID holds; another application's token is left alone (and, as RFC
// 7009 says, that is not an error).
func (s *Server) revokeRefreshToken(ctx context.Context, projectID, clientID, token string) error {
	family, err := s.store.RevokeRefreshToken(ctx, projectID, clientID, secretHash("refresh", token), s.now())
	if err != nil {
		return err
	}
	return s.revokeFamily(ctx, family)
}

func (s *Server) revokeAccessToken(ctx context.Context, projectID, clientID, token string) error {
	p, err := s.Verify(ctx, token)
	if err != nil || p.ProjectID != projectID || p.ClientID != clientID {
		return nil // as RFC 7009: an invalid or foreign token is not an error
	}
	return s.revoked.Revoke(ctx, p.TokenID, p.ExpiresAt)
}
