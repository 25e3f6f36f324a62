// Package oauth is Ward's authorization server: the token endpoint (client
// credentials, private_key_jwt backend services, authorization codes with
// PKCE, rotated refresh tokens with reuse detection), introspection,
// revocation, JWKS, SMART and OpenID discovery, and the authorization
// endpoint with its sign-in, patient-picker and consent pages (developer
// sign-in included). Its handlers write OAuth answers themselves; package
// server routes requests to them and maps the errors they return.
package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/wardhealth/ward/internal/clientaddr"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/egress"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/smart/clientauth"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/tokens"
)

// Config is the authorization server's tunables.
type Config struct {
	PublicURL string        // the issuer, e.g. http://127.0.0.1:8080, no trailing slash
	FHIRBase  string        // the SMART audience; "": PublicURL + "/fhir"
	TokenTTL  time.Duration // lifetime of access tokens
	// Proxies says whose X-Forwarded-For / Forwarded headers name the
	// client that sign-in throttling counts; zero: none, the TCP peer.
	Proxies clientaddr.Resolver
}

// Patients is what the patient picker needs of the FHIR API, always as the
// signed-in user. fhir.Service implements it.
type Patients interface {
	Read(ctx context.Context, p auth.Principal, typ, id string) (fhir.Resource, error)
	Search(ctx context.Context, p auth.Principal, q *search.Query) (fhir.Page, error)
}

// Deps are the services the authorization server calls.
type Deps struct {
	Log *slog.Logger
	// Store keeps authorization codes, sign-ins between their steps,
	// refresh tokens and client-assertion ids, and looks up backend
	// clients.
	Store    *store.Store
	IAM      *iam.Service
	Keys     *tokens.Keys
	Revoked  *tokens.Revocations
	Issuer   *auth.Issuer
	Verifier *auth.Verifier
	// FHIR is read for the patient picker; nil: the FHIR API is off.
	FHIR Patients
	// Egress is what backend-service clients' JWKS URLs may reach; nil:
	// the default policy (public addresses only).
	Egress *egress.Policy
	Now    func() time.Time
}

// Server is the authorization server. Construct with New.
type Server struct {
	cfg      Config
	log      *slog.Logger
	store    *store.Store
	iam      *iam.Service
	keys     *tokens.Keys
	revoked  *tokens.Revocations
	issuer   *auth.Issuer
	verifier *auth.Verifier
	fhir     Patients
	now      func() time.Time
	// assertions verifies private_key_jwt client assertions.
	assertions *clientauth.Verifier
}

// New builds the authorization server.
func New(cfg Config, d Deps) (*Server, error) {
	if cfg.FHIRBase == "" {
		cfg.FHIRBase = cfg.PublicURL + "/fhir"
	}
	s := &Server{cfg: cfg, log: d.Log, store: d.Store, iam: d.IAM, keys: d.Keys, revoked: d.Revoked, issuer: d.Issuer,
		verifier: d.Verifier, fhir: d.FHIR, now: d.Now}
	// A jwksUrl is chosen by an API caller: fetched through the egress
	// policy, it cannot reach Ward's own network.
	av, err := clientauth.New(clientauth.Config{Lookup: s.assertionClient, Replay: storeReplay{st: d.Store, now: d.Now}, Now: d.Now,
		Logger: d.Log, HTTPClient: d.Egress.HTTPClient(0)})
	if err != nil {
		return nil, fmt.Errorf("client assertions: %w", err)
	}
	s.assertions = av
	return s, nil
}

// InProject is told the project a token request turned out to act in, before
// the answer is written (the server withdraws CORS headers the project's
// applications do not allow); "" when it has none (a developer).
type InProject func(projectID string)

// Verify checks one of Ward's tokens, reloading keys once if it names an
// unknown key (another replica may have rotated them). An invalid token is
// an Unauthorized fault; other errors are the server's.
func (s *Server) Verify(ctx context.Context, token string) (auth.Principal, error) {
	p, err := s.verifier.Verify(ctx, token)
	// Not for tokens of other issuers (an authorizer's), which would
	// otherwise make every foreign request reload Ward's keys.
	if err != nil && errors.Is(err, auth.ErrUnknownKey) && s.ownIssuer(token) {
		if err := s.keys.Refresh(ctx, 5*time.Second); err != nil {
			s.log.WarnContext(ctx, "verify a token", "err", err)
		}
		p, err = s.verifier.Verify(ctx, token)
	}
	if err != nil {
		if errors.Is(err, auth.ErrInvalidToken) {
			return auth.Principal{}, fault.Unauthorized("%v", err)
		}
		return auth.Principal{}, err
	}
	return p, nil
}

// ownIssuer reports whether an (unverified) token claims to be Ward's.
func (s *Server) ownIssuer(token string) bool {
	iss, ok := auth.UnverifiedIssuer(token)
	return ok && iss == s.cfg.PublicURL
}

// bearer extracts the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}

// writeJSON sends v with status (the bytes server.writeJSON sends). v is encoded
// before the status goes out: a value that does not encode is a bug, and
// its panic reaches the server's recovering middleware while no byte is
// sent. A failed write is a client gone mid-answer: nothing to do.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode a %T response: %v", v, err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
