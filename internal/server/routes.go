package server

import (
	"fmt"
	"net/http"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// call is what the gate hands a handler: who is calling, in which project.
type call struct {
	p auth.Principal // ProjectID is resolved (header for developers)
}

// route declares an endpoint and the action and resource it needs. Every
// non-public route goes through the policy gate; public ones say so.
type route struct {
	method, path string
	action       string                       // catalog action, e.g. "IAM:GetRole"
	resource     func(r *http.Request) string // e.g. "IAM:Role:<id>"
	public       bool                         // no token, no policy (health, discovery, OAuth)
	authOnly     bool                         // a valid token suffices (e.g. introspection of self)
	// authz, when set, names the action and resource from the request
	// itself (Z3: the body's action, paths that must be checked first).
	authz  func(r *http.Request) (action, resource string, err error)
	handle func(w http.ResponseWriter, r *http.Request, c call) error
}

func fixed(res string) func(*http.Request) string { return func(*http.Request) string { return res } }

func withID(prefix string) func(*http.Request) string {
	return func(r *http.Request) string { return prefix + r.PathValue("id") }
}

func notFound(r *http.Request) error {
	return fault.NotFound("no such endpoint: %s %s", r.Method, r.URL.Path)
}

func (s *Server) routes() []route {
	return append([]route{
		{method: "GET", path: "/healthz", public: true, handle: s.health},
		{method: "GET", path: "/readyz", public: true, handle: s.readiness},
		{method: "GET", path: "/.well-known/jwks.json", public: true, handle: s.jwks},
		{method: "POST", path: "/oauth/token", public: true, handle: s.token},
		{method: "POST", path: "/oauth/introspect", public: true, handle: s.introspect},
		{method: "POST", path: "/oauth/revoke", public: true, handle: s.revoke},
		// SMART App Launch: discovery and the authorization endpoint (its
		// login form is the credential check).
		{method: "GET", path: "/.well-known/smart-configuration", public: true, handle: s.smartConfiguration},
		{method: "GET", path: "/.well-known/openid-configuration", public: true, handle: s.openIDConfiguration},
		{method: "GET", path: "/oauth/authorize", public: true, handle: s.authorize},
		{method: "POST", path: "/oauth/authorize", public: true, handle: s.authorize},
		// The signed-in user's applications: the session cookie is the
		// credential, its forms carry a token tied to it.
		{method: "GET", path: "/oauth/apps", public: true, handle: s.oauthApps},
		{method: "POST", path: "/oauth/apps", public: true, handle: s.oauthApps},
		{method: "GET", path: "/static/ward.css", public: true, handle: s.stylesheet},
		{method: "GET", path: "/v1/version", public: true, handle: s.version},
		// The one-time token in the path is the credential.
		{method: "GET", path: "/invite/{token}", public: true, handle: s.invitePage},
		{method: "POST", path: "/invite/{token}", public: true, handle: s.acceptInvite},

		// The SDK's terminology service (terminologyApiUrl = projectApiUrl).
		{method: "GET", path: "/v1/cpt/search", action: "Terminology:SearchCodes", resource: fixed("Terminology:Code:*"), handle: s.searchCodes("cpt")},
		{method: "GET", path: "/v1/hcpcs/search", action: "Terminology:SearchCodes", resource: fixed("Terminology:Code:*"), handle: s.searchCodes("hcpcs")},
		{method: "GET", path: "/v1/icd-10/search", action: "Terminology:SearchCodes", resource: fixed("Terminology:Code:*"), handle: s.searchCodes("icd-10")},
		{method: "GET", path: "/v1/project", action: "Project:GetProjectInfo", resource: fixed("Project:Settings"), handle: ofProject(s.iam.GetProject)},
		{method: "PATCH", path: "/v1/project", action: "Project:UpdateProjectInfo", resource: fixed("Project:Settings"), handle: s.updateProject},

		{method: "GET", path: "/v1/iam/role", action: "IAM:ListAllRoles", resource: fixed("IAM:Role:*"), handle: ofProject(s.iam.ListRoles)},
		{method: "POST", path: "/v1/iam/role", action: "IAM:CreateRole", resource: fixed("IAM:Role:*"), handle: withBody(s.iam.CreateRole)},
		{method: "GET", path: "/v1/iam/role/{id}", action: "IAM:GetRole", resource: withID("IAM:Role:"), handle: byID(s.iam.GetRole)},
		{method: "PATCH", path: "/v1/iam/role/{id}", action: "IAM:UpdateRole", resource: withID("IAM:Role:"), handle: byIDWithBody(s.iam.UpdateRole)},
		{method: "DELETE", path: "/v1/iam/role/{id}", action: "IAM:DeleteRole", resource: withID("IAM:Role:"), handle: deleteByID(s.iam.DeleteRole)},
		// Explaining reads role policies, so it needs what listing roles needs.
		{method: "POST", path: "/v1/iam/explain", action: "IAM:ListAllRoles", resource: fixed("IAM:Role:*"), handle: withBody(s.iam.Explain)},

		{method: "GET", path: "/v1/m2m", action: "IAM:ListAllM2MClients", resource: fixed("IAM:M2MClient:*"), handle: s.listM2M},
		{method: "GET", path: "/v1/m2m/v2/list", action: "IAM:ListAllM2MClients", resource: fixed("IAM:M2MClient:*"), handle: s.listM2MV2},
		{method: "POST", path: "/v1/m2m", action: "IAM:CreateM2MClient", resource: fixed("IAM:M2MClient:*"), handle: withBody(s.iam.CreateM2M)},
		{method: "GET", path: "/v1/m2m/me", action: "IAM:GetM2MClient", resource: nil, handle: s.me},
		{method: "GET", path: "/v1/m2m/{id}", action: "IAM:GetM2MClient", resource: withID("IAM:M2MClient:"), handle: byID(s.iam.GetM2M)},
		{method: "PATCH", path: "/v1/m2m/{id}", action: "IAM:UpdateM2MClient", resource: withID("IAM:M2MClient:"), handle: byIDWithBody(s.iam.UpdateM2M)},
		{method: "DELETE", path: "/v1/m2m/{id}", action: "IAM:DeleteM2MClient", resource: withID("IAM:M2MClient:"), handle: deleteByID(s.iam.DeleteM2M)},
		{method: "POST", path: "/v1/m2m/{id}/rotate-secret", action: "IAM:RotateM2MClientSecret", resource: withID("IAM:M2MClient:"), handle: rotateByID(s.iam.RotateM2MSecret)},

		{method: "GET", path: "/v1/developer", action: "IAM:ListAllDevelopers", resource: fixed("IAM:Developer:*"), handle: ofProject(s.iam.ListDevelopers)},
		{method: "GET", path: "/v1/developer/v2/list", action: "IAM:ListAllDevelopers", resource: fixed("IAM:Developer:*"), handle: s.listDevelopersV2},
		{method: "POST", path: "/v1/developer/invite", action: "IAM:InviteDeveloper", resource: fixed("IAM:Developer:*"), handle: withBody(s.iam.InviteDeveloper)},
		{method: "GET", path: "/v1/developer/{id}", action: "IAM:GetDeveloper", resource: withID("IAM:Developer:"), handle: byID(s.iam.GetDeveloper)},
		{method: "PATCH", path: "/v1/developer/{id}", action: "IAM:UpdateDeveloper", resource: withID("IAM:Developer:"), handle: byIDWithBody(s.iam.UpdateDeveloper)},
		{method: "DELETE", path: "/v1/developer/{id}", action: "IAM:RemoveDeveloper", resource: withID("IAM:Developer:"), handle: deleteByID(s.iam.RemoveDeveloper)},
	}, s.userRoutes()...)
}

// gate authenticates, resolves the project, checks the route's action on
// its resource, runs the handler and audits writes and denials.
func (s *Server) gate(rt route) http.Handler {
	if !rt.public && rt.action == "" && rt.authz == nil && !rt.authOnly {
		panic(fmt.Sprintf("route %s %s declares no action", rt.method, rt.path))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.public {
			// Public routes answer from the same state (the JWKS, a
			// revoked refresh token, a deleted client's credentials).
			if err := s.fresh(r.Context()); err != nil {
				s.writeError(w, r, err)
				return
			}
			if err := rt.handle(w, r, call{}); err != nil {
				s.writeError(w, r, err)
			}
			return
		}
		p, err := s.authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			s.writeError(w, r, err)
			return
		}
		corsProject(w, r, p.ProjectID)
		countFor(w, p.ProjectID)
		if err := s.rateLimit(w, r, p); err != nil {
			s.writeError(w, r, err)
			return
		}
		action, resource := rt.action, ""
		switch {
		case rt.authz != nil:
			if action, resource, err = rt.authz(r); err != nil {
				s.writeError(w, r, err)
				return
			}
		case rt.resource != nil:
			resource = rt.resource(r)
		default:
			resource = selfResource(p)
		}
		if !rt.authOnly {
			if _, err := s.iam.Authorize(r.Context(), p, action, resource); err != nil {
				s.audit(r, p, action, resource, "denied", err.Error())
				s.writeError(w, r, err)
				return
			}
		}
		sw, _ := w.(*statusWriter)
		var pending *store.PendingAudit
		if r.Method != http.MethodGet {
			// The write's own transaction records it, as for FHIR writes:
			// no write commits without its audit row.
			pending = &store.PendingAudit{Event: s.auditEvent(r, p, action, resource, "allowed", "")}
			r = r.WithContext(store.WithAudit(r.Context(), pending))
		}
		if err := rt.handle(w, r, call{p: p}); err != nil {
			s.writeError(w, r, err)
			return
		}
		if pending != nil && !pending.Written() && (sw == nil || sw.status < 400) {
			// No transaction ran (a single statement): audit on its own.
			s.audit(r, p, action, resource, "allowed", "")
		}
	})
}

// selfResource names the caller itself, for /m2m/me.
func selfResource(p auth.Principal) string {
	if p.Kind == auth.KindM2M {
		return "IAM:M2MClient:" + p.ID
	}
	return "IAM:Developer:" + p.ID
}
