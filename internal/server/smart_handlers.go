package server

import (
	"net/http"
)

// The OAuth and SMART endpoints: the authorization server (package
// smart/oauth) answers them; the server adds what every route gets and,
// once a token request names its project, withdraws CORS headers that
// project does not allow.

// inProject is how a token request reports its project to the CORS check.
func inProject(w http.ResponseWriter, r *http.Request) func(string) {
	return func(projectID string) { corsProject(w, r, projectID) }
}

func (s *Server) token(w http.ResponseWriter, r *http.Request, _ call) error {
	return s.oauth.Token(w, r, inProject(w, r))
}

func (s *Server) introspect(w http.ResponseWriter, r *http.Request, _ call) error {
	return s.oauth.Introspect(w, r, inProject(w, r))
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request, _ call) error {
	return s.oauth.Revoke(w, r, inProject(w, r))
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request, _ call) error {
	return s.oauth.JWKS(w, r)
}

func (s *Server) smartConfiguration(w http.ResponseWriter, r *http.Request, _ call) error {
	return s.oauth.SmartConfiguration(w, r)
}

func (s *Server) openIDConfiguration(w http.ResponseWriter, r *http.Request, _ call) error {
	return s.oauth.OpenIDConfiguration(w, r)
}

// authorize is the SMART authorization endpoint and its sign-in, picker
// and consent pages (its login form is the credential check).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, _ call) error {
	return s.oauth.Authorize(w, r)
}

// oauthApps lists the applications the signed-in user allowed, to withdraw
// them, and signs out.
func (s *Server) oauthApps(w http.ResponseWriter, r *http.Request, _ call) error {
	return s.oauth.Apps(w, r)
}

func (s *Server) stylesheet(w http.ResponseWriter, r *http.Request, _ call) error {
	return s.oauth.Stylesheet(w, r)
}
