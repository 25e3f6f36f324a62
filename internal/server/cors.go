package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/wardhealth/ward/internal/store"
)

// CORS: a browser app on another origin may read Ward's answers when its
// origin is listed in allowedCORSOriginsUrls by an application of the
// project it calls, or by the operator (--cors-origins). A preflight comes
// before the project is known: it passes when any project lists the origin,
// and the actual request loses its CORS headers once the caller's project
// turns out not to list it. The origin "null" (sandboxed frames, file:
// pages, some redirects) is never allowed.

const (
	// corsFresh is how long a loaded origin list serves without reloading:
	// a backstop, as every IAM change applied here (any replica's, package
	// replica) reloads it at once. A preflight confirms no change version
	// of its own, so there it rests on the change listener (milliseconds).
	corsFresh = 5 * time.Second
	// corsMissReload is how old the list must be before an origin it lacks
	// makes it reload: an app registered a moment ago works at once, while
	// a stream of unknown origins reloads it at most this often.
	corsMissReload = 250 * time.Millisecond
)

type ctxKey int

// corsKey holds the request's corsDecision in its context.
const corsKey ctxKey = 100

// corsDecision is what the preflight-time check found for an origin.
type corsDecision struct {
	everywhere bool                // the operator or Ward itself allows it
	projects   map[string]struct{} // projects whose applications list it
}

func (d corsDecision) allowed() bool { return d.everywhere || len(d.projects) > 0 }

// wildOrigin is "scheme://*.suffix[:port]": one label in place of the star.
type wildOrigin struct {
	scheme, suffix, port, project string
}

// originIndex caches every application's allowed origins.
type originIndex struct {
	load     func(ctx context.Context) ([]store.ProjectOrigins, error)
	now      func() time.Time
	operator map[string]struct{}

	// changes moves with every IAM change applied here, this replica's or
	// another's (iam.Service.Changes): the list then reloads at once.
	changes func() uint64

	mu     sync.Mutex
	gen    uint64 // changes() when the list was read
	loaded time.Time
	exact  map[string]map[string]struct{} // origin -> projects
	wild   []wildOrigin
}

func newOriginIndex(load func(context.Context) ([]store.ProjectOrigins, error), now func() time.Time, operator []string) *originIndex {
	ix := &originIndex{load: load, now: now, operator: map[string]struct{}{}, changes: func() uint64 { return 0 }}
	for _, o := range operator {
		if n, ok := normalOrigin(o); ok {
			ix.operator[n] = struct{}{}
		}
	}
	return ix
}

// normalOrigin lower-cases scheme and host and drops a default port, so
// "HTTPS://App.example:443" and "https://app.example" are one origin.
func normalOrigin(raw string) (string, bool) {
	u, err := url.Parse(strings.TrimSuffix(raw, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		return scheme + "://" + host + ":" + port, true
	}
	return scheme + "://" + host, true
}

// decide finds who allows origin.
func (ix *originIndex) decide(ctx context.Context, origin string) (corsDecision, error) {
	n, ok := normalOrigin(origin)
	if !ok {
		return corsDecision{}, nil // "null" and anything else not an origin
	}
	if _, ok := ix.operator[n]; ok {
		return corsDecision{everywhere: true}, nil
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	age := ix.now().Sub(ix.loaded)
	if ix.exact == nil || age > corsFresh || ix.changes() != ix.gen {
		if err := ix.reload(ctx); err != nil {
			return corsDecision{}, err
		}
		age = 0
	}
	d := ix.match(n)
	if !d.allowed() && age > corsMissReload {
		if err := ix.reload(ctx); err != nil {
			return corsDecision{}, err
		}
		d = ix.match(n)
	}
	return d, nil
}

func (ix *originIndex) reload(ctx context.Context) error {
	gen := ix.changes() // before the read: a change meanwhile reloads again
	all, err := ix.load(ctx)
	if err != nil {
		return err
	}
	exact := map[string]map[string]struct{}{}
	var wild []wildOrigin
	for _, po := range all {
		for _, o := range po.Origins {
			if w, ok := parseWild(o); ok {
				w.project = po.ProjectID
				wild = append(wild, w)
				continue
			}
			n, ok := normalOrigin(o)
			if !ok {
				continue
			}
			if exact[n] == nil {
				exact[n] = map[string]struct{}{}
			}
			exact[n][po.ProjectID] = struct{}{}
		}
	}
	ix.exact, ix.wild, ix.loaded, ix.gen = exact, wild, ix.now(), gen
	return nil
}

// parseWild reads "https://*.example.com[:port]".
func parseWild(o string) (wildOrigin, bool) {
	scheme, rest, ok := strings.Cut(strings.TrimSuffix(o, "/"), "://*.")
	if !ok {
		return wildOrigin{}, false
	}
	n, ok := normalOrigin(scheme + "://x." + rest)
	if !ok {
		return wildOrigin{}, false
	}
	u, _ := url.Parse(n)
	return wildOrigin{scheme: u.Scheme, suffix: "." + strings.TrimPrefix(u.Hostname(), "x."), port: u.Port()}, true
}

func (ix *originIndex) match(n string) corsDecision {
	d := corsDecision{projects: map[string]struct{}{}}
	for p := range ix.exact[n] {
		d.projects[p] = struct{}{}
	}
	if len(ix.wild) > 0 {
		u, _ := url.Parse(n)
		host := u.Hostname()
		for _, w := range ix.wild {
			label, ok := strings.CutSuffix(host, w.suffix)
			if ok && u.Scheme == w.scheme && u.Port() == w.port && label != "" && !strings.Contains(label, ".") {
				d.projects[w.project] = struct{}{}
			}
		}
	}
	return d
}

// cors sets the CORS headers for an allowed origin and returns the request
// with the decision in its context; false: a preflight it refused (403).
func (s *Server) cors(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return r, true
	}
	w.Header().Add("Vary", "Origin")
	d := corsDecision{everywhere: origin == s.publicOrigin}
	if !d.everywhere {
		var err error
		if d, err = s.origins.decide(r.Context(), origin); err != nil {
			s.log.ErrorContext(r.Context(), "CORS origins", "err", err)
		}
	}
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if !d.allowed() {
		return r, !preflight
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match, If-None-Exist, If-None-Match, Prefer, x-oystehr-project-id, x-zapehr-project-id, x-oystehr-request-id")
	h.Set("Access-Control-Expose-Headers", "ETag, Location, Last-Modified, Content-Location, x-oystehr-request-id")
	h.Set("Access-Control-Max-Age", "600")
	return r.WithContext(context.WithValue(r.Context(), corsKey, d)), true
}

// corsProject withdraws the CORS headers when the project the request
// turned out to act in does not list its origin.
func corsProject(w http.ResponseWriter, r *http.Request, projectID string) {
	d, ok := r.Context().Value(corsKey).(corsDecision)
	if !ok || d.everywhere {
		return
	}
	if _, ok := d.projects[projectID]; ok {
		return
	}
	h := w.Header()
	for _, k := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Expose-Headers", "Access-Control-Max-Age"} {
		h.Del(k)
	}
}
