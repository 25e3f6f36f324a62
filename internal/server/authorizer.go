package server

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/smart/authorizer"
)

// projectAuthorizers caches each project's authorizer settings (and its
// rate limit), so a request with a cached token decision costs no
// database read. An entry
// holds while the project's IAM generation is the one it was read at: a
// change here or on another replica (once applied) moves it.
type projectAuthorizers struct {
	mu      sync.Mutex
	entries map[string]authorizerSetting
}

type authorizerSetting struct {
	zambdaID string
	issuers  []string
	// rateLimit is the project's requests per minute per principal (0:
	// the server's default, < 0: none); cached here with the authorizer
	// so that limiting costs no read per request.
	rateLimit int
	gen       uint64
}

func (c *projectAuthorizers) forget(projectID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, projectID)
}

func (s *Server) authorizerOf(ctx context.Context, projectID string) (authorizerSetting, error) {
	gen := s.iam.Generation(projectID) // before the read: a change meanwhile makes the entry stale
	c := &s.authorizers
	c.mu.Lock()
	e, ok := c.entries[projectID]
	c.mu.Unlock()
	if ok && e.gen == gen {
		return e, nil
	}
	p, err := s.iam.GetProject(ctx, projectID)
	if err != nil {
		return authorizerSetting{}, err
	}
	e = authorizerSetting{zambdaID: p.AuthorizerZambdaID, issuers: p.AuthorizerIssuers, rateLimit: p.RateLimitPerMinute, gen: gen}
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]authorizerSetting{}
	}
	c.entries[projectID] = e
	c.mu.Unlock()
	return e, nil
}

// foreignPrincipal validates a bearer token Ward did not issue through the
// project's authorizer function. handled is false when the token is not a
// candidate (Ward's own, or the project has no authorizer): the caller
// then reports its original error.
func (s *Server) foreignPrincipal(r *http.Request, token string) (p auth.Principal, handled bool, err error) {
	if s.authorizer == nil {
		return auth.Principal{}, false, nil
	}
	iss, isJWT := auth.UnverifiedIssuer(token)
	if isJWT && iss == s.cfg.PublicURL {
		return auth.Principal{}, false, nil // Ward's own token that failed to verify
	}
	projectID := projectHeader(r)
	if projectID == "" {
		return auth.Principal{}, false, nil
	}
	setting, err := s.authorizerOf(r.Context(), projectID)
	if err != nil || setting.zambdaID == "" {
		return auth.Principal{}, false, nil
	}
	if len(setting.issuers) > 0 && (!isJWT || !slices.Contains(setting.issuers, iss)) {
		return auth.Principal{}, true, fault.Unauthorized("this project's authorizer accepts tokens of %s only", strings.Join(setting.issuers, ", "))
	}
	d, err := s.authorizer.Decide(r.Context(), projectID, setting.zambdaID, s.fhir.Base(), operationName(r, s.fhir.Path()), token)
	if err != nil {
		if errors.Is(err, authorizer.ErrRejected) {
			return auth.Principal{}, true, fault.Unauthorized("%v", err)
		}
		return auth.Principal{}, true, err
	}
	return auth.Principal{ProjectID: projectID, Kind: auth.KindRole, ID: d.RoleID, ClientID: d.Subject, Scopes: d.Scopes,
		Patient: d.Patient, FHIRUser: d.FHIRUser, ExpiresAt: d.ExpiresAt}, true, nil
}

// operationName names a FHIR request for the authorizer function: the
// HealthLake names where they exist (CreateResource, ReadResource,
// UpdateResource, DeleteResource, SearchWithGet, SearchWithPost,
// StartFHIRExportJobWithPost) and, for the rest, PatchResource,
// ReadHistory, ProcessBundle, StartFHIRExportJobWithGet, InvokeOperation
// and ReadMetadata (see docs/smart.md).
func operationName(r *http.Request, base string) string {
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, base), "/")
	var segs []string
	if rest != "" {
		segs = strings.Split(rest, "/")
	}
	for _, s := range segs {
		switch {
		case s == "$export":
			if r.Method == http.MethodPost {
				return "StartFHIRExportJobWithPost"
			}
			return "StartFHIRExportJobWithGet"
		case strings.HasPrefix(s, "$"):
			return "InvokeOperation"
		case s == "_history":
			if r.Method == http.MethodGet && len(segs) == 4 {
				return "ReadResource" // vread
			}
			return "ReadHistory"
		case s == "_search":
			return "SearchWithPost"
		case s == "metadata":
			return "ReadMetadata"
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if len(segs) == 2 {
			return "ReadResource"
		}
		return "SearchWithGet"
	case http.MethodPost:
		if len(segs) == 0 {
			return "ProcessBundle"
		}
		return "CreateResource"
	case http.MethodPut:
		return "UpdateResource"
	case http.MethodPatch:
		return "PatchResource"
	case http.MethodDelete:
		return "DeleteResource"
	}
	return "InvokeOperation"
}
