package oauth

import (
	"net/http"

	"github.com/wardhealth/ward/internal/auth"
)

// SMART and OpenID Connect discovery: what the authorization server
// supports, at the root and at the FHIR base.

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
