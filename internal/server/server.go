// Package server wires Ward's HTTP surface: routes, middleware, the
// per-request policy gate, and the mapping of errors to responses.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/wardhealth/ward/internal/activity"
	"github.com/wardhealth/ward/internal/admit"
	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/console"
	"github.com/wardhealth/ward/internal/conversation"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/provider/clearinghouse"
	"github.com/wardhealth/ward/internal/provider/erx"
	"github.com/wardhealth/ward/internal/provider/fax"
	"github.com/wardhealth/ward/internal/provider/payment"
	"github.com/wardhealth/ward/internal/provider/sms"
	"github.com/wardhealth/ward/internal/ratelimit"
	"github.com/wardhealth/ward/internal/reqid"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/smart/authorizer"
	"github.com/wardhealth/ward/internal/smart/oauth"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/telemed"
	"github.com/wardhealth/ward/internal/z3"
	"github.com/wardhealth/ward/internal/zambda"
)

// Config is the server's tunables.
type Config struct {
	PublicURL      string        // e.g. http://127.0.0.1:8080, no trailing slash
	MaxBodyBytes   int64         // request body limit
	RequestTimeout time.Duration // per-request deadline
	// TransferTimeout is the deadline of a presigned Z3 upload or download,
	// whose body is not bound by MaxBodyBytes (Z3 has its own object limit).
	TransferTimeout time.Duration
	Version         string
	// ReadConcurrency is how many FHIR reads and searches run at once,
	// the others waiting their turn in arrival order (at most
	// ReadMaxWait, then they go in anyway); <= 0: no limit.
	ReadConcurrency int
	ReadMaxWait     time.Duration // 0: DefaultReadMaxWait
	// ZambdaSandbox is the zambda sandbox's mode ("bwrap", "off",
	// "unavailable"), shown by /healthz with a warning unless "bwrap".
	ZambdaSandbox string
	// CORSOrigins are origins allowed for every project (the operator's
	// own front ends), besides those the projects' applications list.
	CORSOrigins []string
	// RateLimit is requests per minute per principal where the project
	// sets none; <= 0: no limit.
	RateLimit int
}

// DefaultReadMaxWait bounds a read's wait for a turn: requests that hold their
// slot long (a slow query) delay the others by this much, never more.
// Turns trade the way interleaving favours short requests for order; at
// 32 clients on two cores the queue is ~2-4 ms deep, so the bound only
// acts when slow requests hold the slots.
const DefaultReadMaxWait = 20 * time.Millisecond

// Server is Ward's HTTP API.
type Server struct {
	cfg    Config
	log    *slog.Logger
	access *slog.Logger // one line per request
	iam    *iam.Service
	oauth  *oauth.Server
	fhir   *fhir.Handler
	reads  *admit.Gate // turns for FHIR reads; nil: no limit
	z3     *z3.Service
	zambda *zambda.Service
	// telemed is video meetings; nil without FHIR.
	telemed *telemed.Service
	conv    *conversation.Service // nil: no conversation endpoints
	// console is the web console at /console; nil without IAM.
	console *console.Console
	now     func() time.Time
	mux     *http.ServeMux
	// authorizer validates foreign bearer tokens on the FHIR API; nil
	// when zambdas are off.
	authorizer  *authorizer.Authorizer
	authorizers projectAuthorizers
	// origins answers which projects allow a browser origin (CORS).
	origins      *originIndex
	publicOrigin string
	fresh        func(context.Context) error
	ready        func(context.Context) error
	limiter      *ratelimit.Limiter // nil: no rate limits
	draining     func() bool
	sms          *sms.Service      // nil: no /v1/messaging endpoints
	messaging    []MessagingConfig // what /v1/messaging/config reports
	activity     *activity.Recorder
	deliveries   func(ctx context.Context, projectID string, since time.Time) ([]store.DeliveryMinute, int64, error)
	erx          *erx.Service       // nil: no /erx/v3 endpoints
	fax          *fax.Service       // nil: no /fax/v1 endpoints
	payment      *payment.Service   // nil: no /v1/payment endpoints
	rcm          *clearinghouse.RCM // nil: no /v1/rcm endpoints
}

// Deps are the services the server calls.
type Deps struct {
	Log *slog.Logger
	// AccessLog gets the line each request ends with; nil: Log.
	AccessLog *slog.Logger
	IAM       *iam.Service
	// OAuth is the authorization server: it issues and verifies Ward's
	// tokens and answers /oauth/* and SMART discovery.
	OAuth  *oauth.Server
	FHIR   *fhir.Handler
	Z3     *z3.Service     // nil: no /z3 endpoints
	Zambda *zambda.Service // nil: no /zambda and /secret endpoints
	// Telemed is video meetings; nil: no /telemed endpoints.
	Telemed *telemed.Service
	// Conversations runs conversation.* of the SDK; nil: none.
	Conversations *conversation.Service
	// Authorizer validates bearer tokens Ward did not issue with the
	// project's authorizer function; nil: such tokens are refused.
	Authorizer *authorizer.Authorizer
	Now        func() time.Time
	// Fresh returns once changes other replicas committed (revocations,
	// policies, principals, keys, project settings) are applied here; it
	// runs before every request that depends on them. nil: one process.
	Fresh func(context.Context) error
	// Ready answers /readyz: nil when the database answers, is migrated
	// and its writer commits. nil: always ready.
	Ready func(context.Context) error
	// Draining reports a shutdown in progress: /readyz answers 503 at
	// once, before the listener closes. nil: never.
	Draining func() bool
	// Limiter counts requests per principal (shared by replicas); nil:
	// no rate limits.
	Limiter *ratelimit.Limiter
	// SMS sends transactional SMS; nil: no /v1/messaging endpoints.
	SMS *sms.Service
	// Messaging lists the services messaging.getMessagingConfig reports
	// (SMS, and conversations when they land).
	Messaging []MessagingConfig
	// RCM is the SDK's rcm service (eligibility, claims, payers); nil:
	// no /v1/rcm endpoints.
	RCM *clearinghouse.RCM
	// ConsoleSessions keeps the console's sessions (the database, so they
	// survive a restart and every replica accepts them); nil: in memory.
	ConsoleSessions console.SessionStore
	// Sealer seals what a console session keeps (the master key).
	Sealer *seal.Sealer
	// Activity counts each project's requests for the dashboard
	// (GET /v1/project/metrics); nil: not counted.
	Activity *activity.Recorder
	// Deliveries reads a project's subscription delivery attempts since a
	// time and its backlog (the database's, every replica's); nil: none.
	Deliveries func(ctx context.Context, projectID string, since time.Time) ([]store.DeliveryMinute, int64, error)
	// ERx answers the SDK's erx.*; nil: no /erx/v3 endpoints.
	ERx *erx.Service
	// Fax answers the SDK's fax.*; nil: no /fax/v1 endpoints.
	Fax *fax.Service
	// Payment runs paymentMethod.* and charge.*; nil: none.
	Payment *payment.Service
}

// New builds the server and its routes.
func New(cfg Config, d Deps) *Server {
	if cfg.TransferTimeout <= 0 {
		cfg.TransferTimeout = time.Hour
	}
	s := &Server{cfg: cfg, log: d.Log, iam: d.IAM, oauth: d.OAuth,
		fhir: d.FHIR, z3: d.Z3, zambda: d.Zambda, telemed: d.Telemed, conv: d.Conversations, now: d.Now, mux: http.NewServeMux(), authorizer: d.Authorizer}
	s.access = d.AccessLog
	s.fresh = d.Fresh
	s.ready = d.Ready
	s.limiter = d.Limiter
	s.draining = d.Draining
	s.sms, s.messaging = d.SMS, d.Messaging
	s.rcm = d.RCM
	s.activity, s.deliveries = d.Activity, d.Deliveries
	s.erx, s.fax = d.ERx, d.Fax
	s.payment = d.Payment
	if s.draining == nil {
		s.draining = func() bool { return false }
	}
	if s.fresh == nil {
		s.fresh = func(context.Context) error { return nil }
	}
	if cfg.ReadMaxWait <= 0 {
		cfg.ReadMaxWait = DefaultReadMaxWait
	}
	s.reads = admit.New(cfg.ReadConcurrency, cfg.ReadMaxWait)
	if s.access == nil {
		s.access = d.Log
	}
	// Every line logged with a request's context names the request.
	s.log, s.access = reqid.Logger(s.log.Handler()), reqid.Logger(s.access.Handler())
	var loadOrigins func(context.Context) ([]store.ProjectOrigins, error)
	if d.IAM != nil {
		loadOrigins = d.IAM.CORSOrigins
	} else {
		loadOrigins = func(context.Context) ([]store.ProjectOrigins, error) { return nil, nil }
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	s.origins = newOriginIndex(loadOrigins, now, cfg.CORSOrigins)
	if d.IAM != nil {
		s.origins.changes = d.IAM.Changes
	}
	s.publicOrigin, _ = normalOrigin(cfg.PublicURL)
	if d.IAM != nil && d.OAuth != nil {
		// The console calls the API through this mux (and so the same gate)
		// with the signed-in developer's token.
		ccfg := console.Config{PublicURL: cfg.PublicURL}
		if d.FHIR != nil {
			ccfg.FHIRPath = d.FHIR.Path()
		}
		s.console = console.New(ccfg, console.Deps{Log: d.Log, API: s.mux,
			Verify: d.OAuth.Verify, Projects: d.IAM.DeveloperProjects, Now: now, Sessions: d.ConsoleSessions, Sealer: d.Sealer,
			Decide: func(ctx context.Context, p auth.Principal, action, resource string) error {
				_, err := d.IAM.Authorize(ctx, p, action, resource)
				return err
			}})
	}
	all := append(append(append(s.routes(), s.z3Routes()...), s.zambdaRoutes()...), s.consoleRoutes()...)
	all = append(all, s.messagingRoutes()...)
	all = append(all, s.paymentRoutes()...)
	all = append(all, s.telemedRoutes()...)
	all = append(all, s.rcmRoutes()...)
	all = append(all, s.conversationRoutes()...)
	all = append(all, s.metricsRoutes()...)
	all = append(all, s.erxRoutes()...)
	all = append(all, s.faxRoutes()...)
	for _, rt := range all {
		s.mux.Handle(rt.method+" "+rt.path, s.gate(rt))
	}
	if s.fhir != nil {
		base := s.fhir.Path()
		s.mux.HandleFunc(base, s.fhirGate)
		s.mux.HandleFunc(base+"/", s.fhirGate)
		// SMART discovery is also at the FHIR base (App Launch 2 §conformance).
		s.mux.Handle("GET "+base+"/.well-known/smart-configuration", s.gate(route{public: true, handle: s.smartConfiguration}))
		s.mux.Handle("GET "+base+"/.well-known/openid-configuration", s.gate(route{public: true, handle: s.openIDConfiguration}))
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, notFound(r))
	})
	return s
}

// Handler is the whole HTTP API.
func (s *Server) Handler() http.Handler { return s.outer(s.mux) }

// ReadStats reports the FHIR read turns (metrics).
func (s *Server) ReadStats() admit.Stats { return s.reads.Stats() }
