// Package console is Ward's web console at /console: html/template pages
// embedded in the binary, the sign-in pages' stylesheet, one small script
// of its own (pages work without it) and no outside assets, so a strict
// Content-Security-Policy holds. A developer
// signs in through Ward's own authorization server (the ward-console
// client: authorization code + PKCE, the developer password check of
// package oauth); every page then calls Ward's API in process with the
// developer's token, so the API's policy gate decides everything.
package console

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/seal"
)

// ClientID is the console's OAuth client (oauth.ConsoleClientID).
const ClientID = "ward-console"

const (
	sessionCookie = "ward_console"
	loginCookie   = "ward_console_login" // state and PKCE verifier between sign-in and callback
	loginTTL      = 10 * time.Minute
)

//go:embed pages/*.tmpl static/*.js
var pageFiles embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"add":       func(a, b, c int) int { return a + b + c },
	"rules":     ruleCount,
	"folderURL": folderLink,
	"tableRows": tableRows,
	"json":      highlightJSON,
	"fieldError": func(in, field, msg string) fieldErr {
		return fieldErr{In: in, Field: field, Error: msg}
	},
}).ParseFS(pageFiles, "pages/*.tmpl"))

// fieldErr is what a form field's error line reads: the error shows when
// In names Field.
type fieldErr struct{ In, Field, Error string }

// Config is the console's tunables.
type Config struct {
	PublicURL string // Ward's public URL, no trailing slash
	FHIRPath  string // the FHIR API's path (e.g. /fhir); "": no FHIR pages
}

// Deps are what the console calls.
type Deps struct {
	Log *slog.Logger
	// API is Ward's HTTP API (its routes behind the policy gate, and the
	// token endpoint): the console's every action is a request to it.
	API http.Handler
	// Verify checks one of Ward's access tokens (the developer's id).
	Verify func(ctx context.Context, token string) (auth.Principal, error)
	// Projects lists the projects a developer belongs to (the switcher).
	Projects func(ctx context.Context, developerID string) ([]iam.ProjectStub, error)
	// Decide is the policy decision the API's gate makes (iam's), asked
	// about the developer's own permissions only to hide controls it would
	// refuse; nil: ask the API's explain endpoint instead.
	Decide func(ctx context.Context, p auth.Principal, action, resource string) error
	Now    func() time.Time
	// Sessions keeps console sessions (the database); nil: in memory.
	Sessions SessionStore
	// Sealer seals the access token a session keeps (the master key);
	// nil: a key of this process only.
	Sealer *seal.Sealer
}

// Console serves /console. Construct with New.
type Console struct {
	cfg      Config
	log      *slog.Logger
	api      http.Handler
	verify   func(ctx context.Context, token string) (auth.Principal, error)
	projects func(ctx context.Context, developerID string) ([]iam.ProjectStub, error)
	decide   func(ctx context.Context, p auth.Principal, action, resource string) error
	now      func() time.Time
	sessions *sessions
	mux      *http.ServeMux
}

// New builds the console.
func New(cfg Config, d Deps) *Console {
	now := d.Now
	if now == nil {
		now = time.Now
	}
	c := &Console{cfg: cfg, log: d.Log, api: d.API, verify: d.Verify, projects: d.Projects, decide: d.Decide, now: now,
		mux: http.NewServeMux()}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	st, sealer := d.Sessions, d.Sealer
	if st == nil {
		st = newMemSessions()
	}
	if sealer == nil {
		sealer, _ = seal.New(seal.NewKey()) // a fresh key of the right size: no error
	}
	c.sessions = newSessions(st, sealer, now, c.log)
	for path, h := range map[string]func(http.ResponseWriter, *http.Request) error{
		"GET /console":                                  c.home,
		"GET /console/{$}":                              c.home,
		"GET /console/signin":                           c.signin,
		"GET /console/callback":                         c.callback,
		"POST /console/signout":                         c.signed(c.signout),
		"GET /console/dashboard":                        c.signed(c.dashboard),
		"GET /console/project":                          c.signed(c.projectPage),
		"POST /console/project":                         c.signed(c.updateProject),
		"POST /console/project/switch":                  c.signed(c.switchProject),
		"GET /console/roles":                            c.signed(c.rolesPage),
		"GET /console/roles/new":                        c.signed(c.newRolePage),
		"POST /console/roles/new":                       c.signed(c.createRole),
		"GET /console/roles/{id}":                       c.signed(c.rolePage),
		"POST /console/roles/{id}":                      c.signed(c.updateRole),
		"POST /console/roles/{id}/explain":              c.signed(c.explainRole),
		"POST /console/roles/validate":                  c.signed(c.validatePolicy),
		"GET /console/static/{name}":                    c.script,
		"GET /console/m2m":                              c.signed(c.m2mList),
		"GET /console/m2m/new":                          c.signed(c.newM2MPage),
		"POST /console/m2m/new":                         c.signed(c.createM2M),
		"GET /console/m2m/{id}":                         c.signed(c.m2mPage),
		"POST /console/m2m/{id}/rotate-secret":          c.signed(c.rotateM2M),
		"GET /console/zambdas":                          c.signed(c.zambdaList),
		"GET /console/zambdas/new":                      c.signed(c.newZambdaPage),
		"POST /console/zambdas/new":                     c.signed(c.createZambda),
		"GET /console/zambdas/{id}":                     c.signed(c.zambdaPage),
		"POST /console/zambdas/{id}":                    c.signed(c.updateZambda),
		"POST /console/zambdas/{id}/upload":             c.signed(c.uploadZambda),
		"POST /console/zambdas/{id}/invoke":             c.signed(c.invokeZambda),
		"GET /console/zambdas/{id}/logs":                c.signed(c.zambdaLogTail),
		"GET /console/secrets":                          c.signed(c.secretsPage),
		"POST /console/secrets":                         c.signed(c.setSecret),
		"POST /console/secrets/{name}/delete":           c.signed(c.deleteSecret),
		"GET /console/subscriptions":                    c.signed(c.subscriptionsPage),
		"GET /console/subscriptions/{id}":               c.signed(c.subscriptionPage),
		"POST /console/subscriptions/{id}/replay":       c.signed(c.replaySubscription),
		"POST /console/subscriptions/{id}/resume":       c.signed(c.resumeSubscription),
		"GET /console/z3":                               c.signed(c.z3Buckets),
		"POST /console/z3":                              c.signed(c.z3CreateBucket),
		"POST /console/z3/{bucket}/delete-bucket":       c.signed(c.z3DeleteBucket),
		"GET /console/z3/{bucket}/{path...}":            c.signed(c.z3Folder),
		"POST /console/z3-upload/{bucket}/{path...}":    c.signed(c.z3Upload),
		"POST /console/z3-presign/{bucket}/{path...}":   c.signed(c.z3Presign),
		"POST /console/z3-delete/{bucket}/{path...}":    c.signed(c.z3DeleteObject),
		"GET /console/z3-download/{bucket}/{path...}":   c.signed(c.z3Download),
		"GET /console/fhir":                             c.signed(c.fhirTypes),
		"GET /console/fhir/{type}":                      c.signed(c.fhirSearch),
		"GET /console/fhir/{type}/new":                  c.signed(c.fhirNewPage),
		"POST /console/fhir/{type}/new":                 c.signed(c.fhirCreate),
		"GET /console/fhir/{type}/{id}":                 c.signed(c.fhirResource),
		"POST /console/fhir/{type}/{id}":                c.signed(c.fhirUpdate),
		"GET /console/fhir/{type}/{id}/_history":        c.signed(c.fhirHistory),
		"GET /console/developers":                       c.signed(c.developersList),
		"GET /console/developers/invite":                c.signed(c.inviteDeveloperPage),
		"POST /console/developers/invite":               c.signed(c.inviteDeveloper),
		"GET /console/developers/{id}":                  c.signed(c.developerPage),
		"POST /console/developers/{id}/roles":           c.signed(c.developerRoles),
		"POST /console/developers/{id}/remove":          c.signed(c.removeDeveloper),
		"GET /console/users":                            c.signed(c.usersList),
		"GET /console/users/invite":                     c.signed(c.inviteUserPage),
		"POST /console/users/invite":                    c.signed(c.inviteUser),
		"GET /console/users/{id}":                       c.signed(c.userPage),
		"POST /console/users/{id}/roles":                c.signed(c.userRoles),
		"POST /console/users/{id}/reset-password-link":  c.signed(c.userResetLink),
		"POST /console/users/{id}/reset-mfa":            c.signed(c.userResetMFA),
		"POST /console/users/{id}/remove":               c.signed(c.removeUser),
		"GET /console/applications":                     c.signed(c.applicationsList),
		"GET /console/applications/new":                 c.signed(c.newApplicationPage),
		"POST /console/applications/new":                c.signed(c.createApplication),
		"GET /console/applications/{id}":                c.signed(c.applicationPage),
		"POST /console/applications/{id}":               c.signed(c.updateApplication),
		"POST /console/applications/{id}/rotate-secret": c.signed(c.rotateApplication),
		"POST /console/applications/{id}/delete":        c.signed(c.deleteApplication),
		"GET /console/exports":                          c.signed(c.exportsPage),
		"POST /console/exports":                         c.signed(c.startExport),
		"GET /console/exports/{job}":                    c.signed(c.exportPage),
		"POST /console/exports/{job}/cancel":            c.signed(c.cancelExport),
		"GET /console/exports/{job}/file/{n}":           c.signed(c.exportFile),
	} {
		c.mux.Handle(path, c.handle(h))
	}
	c.mux.Handle("/console/", c.handle(func(w http.ResponseWriter, r *http.Request) error {
		return c.message(w, http.StatusNotFound, "Not found", "There is no console page at "+r.URL.Path+".")
	}))
	return c
}

// Handler serves /console and everything under it.
func (c *Console) Handler() http.Handler { return c.mux }

// URL is where a developer opens the console.
func (c *Console) URL() string { return c.cfg.PublicURL + "/console" }

func (c *Console) callbackURL() string { return c.cfg.PublicURL + "/console/callback" }

// secure reports whether cookies must be Secure (Ward is served over TLS).
func (c *Console) secure() bool { return strings.HasPrefix(c.cfg.PublicURL, "https://") }

// handle turns a handler's error into a page: an API refusal shows its
// status and message, anything else is logged and a 500.
func (c *Console) handle(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized || errors.Is(err, errNoSession) {
			// The developer's token no longer works (revoked, the account
			// removed), or the session ended meanwhile: it is over.
			if sess, err := c.session(r); err == nil {
				if err := c.sessions.end(r.Context(), sess.key); err != nil {
					c.log.ErrorContext(r.Context(), "console session not ended", "err", err)
				}
			}
			http.SetCookie(w, c.cookie(sessionCookie, "", -1))
			_ = c.message(w, http.StatusUnauthorized, "Signed out", "Your sign-in is no longer valid. Sign in again.")
			return
		}
		if errors.As(err, &ae) {
			_ = c.message(w, ae.Status, "Cannot do that", sentence(ae.Message))
			return
		}
		c.log.ErrorContext(r.Context(), "console request failed", "err", err, "path", r.URL.Path)
		_ = c.message(w, http.StatusInternalServerError, "Something went wrong", "Ward could not show this page. Try again.")
	})
}

// signed runs h for a signed-in developer; a POST must also carry the
// session's CSRF token (403 otherwise, before anything is done). Without a
// session a GET goes to the welcome page and a POST is refused.
func (c *Console) signed(h func(http.ResponseWriter, *http.Request, session) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		sess, err := c.session(r)
		if err != nil && !errors.Is(err, errNoSession) {
			return err
		}
		if err != nil {
			if r.Method == http.MethodGet {
				w.Header().Set("Cache-Control", "no-store")
				http.Redirect(w, r, "/console", http.StatusSeeOther)
				return nil
			}
			return c.message(w, http.StatusForbidden, "Signed out", "Your console session has ended. Sign in again.")
		}
		if r.Method == http.MethodPost {
			var err error
			if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "multipart/form-data") {
				// A zip upload: files past 8 MiB wait on disk, not in memory.
				r.Body = http.MaxBytesReader(w, r.Body, maxUploadForm)
				err = r.ParseMultipartForm(8 << 20)
				if r.MultipartForm != nil {
					defer r.MultipartForm.RemoveAll()
				}
			} else {
				r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
				err = r.ParseForm()
			}
			if err != nil {
				return c.message(w, http.StatusBadRequest, "Cannot do that", "The form could not be read.")
			}
			if !validCSRF(sess, r.PostForm.Get("csrf")) {
				return c.message(w, http.StatusForbidden, "This form has expired",
					"The form was not sent from this console session. Open the page again and retry.")
			}
		}
		return h(w, r, sess)
	}
}

// session is the request's console session. Errors: errNoSession, or
// the database's.
func (c *Console) session(r *http.Request) (session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, errNoSession
	}
	return c.sessions.get(r.Context(), ck.Value)
}

func (c *Console) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/console", MaxAge: maxAge, HttpOnly: true,
		Secure: c.secure(), SameSite: http.SameSiteLaxMode}
}

// csp allows the stylesheet, the console's own scripts (and their calls
// back to it) and form posts to the console, nothing else: no inline
// script, no frames, no outside host.
const csp = "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// render writes a page with the console's headers.
func (c *Console) render(w http.ResponseWriter, status int, name string, data any) error {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", csp)
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// base is what every page's layout reads.
type base struct {
	Title   string
	Nav     string // the current section: "dashboard", "project", "roles", "m2m", "zambdas", "secrets", "fhir", "subscriptions", "z3"
	Project string // the current project's name
	CSRF    string
	Exports bool // the exports page is there (Ward has a FHIR API)
}

func (c *Console) base(sess session, title, nav string) base {
	return base{Title: title, Nav: nav, Project: sess.ProjectName, CSRF: sess.CSRF, Exports: c.cfg.FHIRPath != ""}
}

type messagePage struct {
	base
	Heading, Message string
}

func (c *Console) message(w http.ResponseWriter, status int, heading, msg string) error {
	return c.render(w, status, "message", messagePage{base: base{Title: heading}, Heading: heading, Message: msg})
}

// sentence writes an API message as a sentence.
func sentence(msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return msg
	}
	msg = strings.ToUpper(msg[:1]) + msg[1:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

// scripts are the console's own scripts, each optional to its page.
var scripts = map[string]bool{"policy.js": true, "logtail.js": true, "z3drop.js": true, "exports.js": true}

// script serves one of the console's scripts.
func (c *Console) script(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if !scripts[name] {
		return c.message(w, http.StatusNotFound, "Not found", "There is no console script by that name.")
	}
	b, err := pageFiles.ReadFile("static/" + name)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, err = w.Write(b)
	return err
}

// ruleCount is how many rules a stored policy has.
func ruleCount(raw json.RawMessage) int {
	var p struct {
		Rule []json.RawMessage `json:"rule"`
	}
	_ = json.Unmarshal(raw, &p) // a stored policy was validated
	return len(p.Rule)
}
