package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// bearer extracts the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}

// projectHeader is the project a request names, from either header twin.
func projectHeader(r *http.Request) string {
	if v := r.Header.Get("x-oystehr-project-id"); v != "" {
		return v
	}
	return r.Header.Get("x-zapehr-project-id")
}

// authenticate turns the bearer token into a principal bound to a project:
// M2M tokens carry theirs; developers name it in a header and must be members.
func (s *Server) authenticate(r *http.Request) (auth.Principal, error) {
	token, ok := bearer(r)
	if !ok {
		return auth.Principal{}, fault.Unauthorized("missing bearer token: send Authorization: Bearer <access token>")
	}
	// Revocations, policies and keys changed on another replica hold here
	// from the next request on.
	if err := s.fresh(r.Context()); err != nil {
		return auth.Principal{}, err
	}
	p, err := s.verify(r.Context(), token)
	if err != nil {
		return auth.Principal{}, err
	}
	header := projectHeader(r)
	switch p.Kind {
	case auth.KindDeveloper:
		if header == "" {
			return auth.Principal{}, fault.Invalid("developer tokens need the x-oystehr-project-id header")
		}
		p.ProjectID = header
	default:
		if header != "" && header != p.ProjectID {
			return auth.Principal{}, fault.Forbidden("this token belongs to another project than %s", header)
		}
	}
	// Loading the (cached) policy proves the principal still exists and, for
	// developers, is a member of the project: no extra query per request.
	if _, err := s.iam.PolicySet(r.Context(), p); err != nil {
		return auth.Principal{}, err
	}
	return p, nil
}

// verify checks one of Ward's tokens (the authorization server reloads
// keys another replica rotated in).
func (s *Server) verify(ctx context.Context, token string) (auth.Principal, error) {
	return s.oauth.Verify(ctx, token)
}

// audit records a write or a denial. A failed audit write is logged: the
// request itself already happened.
func (s *Server) audit(r *http.Request, p auth.Principal, action, resource, outcome, detail string) {
	e := s.auditEvent(r, p, action, resource, outcome, detail)
	if err := s.iam.RecordAudit(context.WithoutCancel(r.Context()), e); err != nil {
		s.log.WarnContext(r.Context(), "audit write failed", "err", err)
	}
}

func (s *Server) auditEvent(r *http.Request, p auth.Principal, action, resource, outcome, detail string) store.AuditEvent {
	return store.AuditEvent{ProjectID: p.ProjectID, At: s.now(), RequestID: requestID(r.Context()), PrincipalKind: string(p.Kind),
		PrincipalID: p.ID, Action: action, Resource: resource, Outcome: outcome, Detail: detail}
}
