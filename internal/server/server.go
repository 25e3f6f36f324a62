// Package server wires Ward's HTTP surface: routes, middleware, the
// per-request policy gate, and the mapping of errors to responses.
package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/tokens"
)

// Config is the server's tunables.
type Config struct {
	PublicURL      string        // e.g. http://127.0.0.1:8080, no trailing slash
	MaxBodyBytes   int64         // request body limit
	RequestTimeout time.Duration // per-request deadline
	TokenTTL       time.Duration // lifetime of access tokens
	Version        string
}

// Server is Ward's HTTP API.
type Server struct {
	cfg      Config
	log      *slog.Logger
	store    *store.Store
	iam      *iam.Service
	keys     *tokens.Keys
	revoked  *tokens.Revocations
	issuer   *auth.Issuer
	verifier *auth.Verifier
	fhir     *fhir.Handler
	now      func() time.Time
	mux      *http.ServeMux
}

// Deps are the services the server calls.
type Deps struct {
	Log      *slog.Logger
	Store    *store.Store
	IAM      *iam.Service
	Keys     *tokens.Keys
	Revoked  *tokens.Revocations
	Issuer   *auth.Issuer
	Verifier *auth.Verifier
	FHIR     *fhir.Handler
	Now      func() time.Time
}

// New builds the server and its routes.
func New(cfg Config, d Deps) *Server {
	s := &Server{cfg: cfg, log: d.Log, store: d.Store, iam: d.IAM, keys: d.Keys, revoked: d.Revoked,
		issuer: d.Issuer, verifier: d.Verifier, fhir: d.FHIR, now: d.Now, mux: http.NewServeMux()}
	for _, rt := range s.routes() {
		s.mux.Handle(rt.method+" "+rt.path, s.gate(rt))
	}
	if s.fhir != nil {
		base := s.fhir.Path()
		s.mux.HandleFunc(base, s.fhirGate)
		s.mux.HandleFunc(base+"/", s.fhirGate)
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, notFound(r))
	})
	return s
}

// Handler is the whole HTTP API.
func (s *Server) Handler() http.Handler { return s.outer(s.mux) }
