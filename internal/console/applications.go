package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/wardhealth/ward/internal/iam"
)

// Applications (SMART apps and sign-in clients): a list with a filter and
// pages, create, edit (name, description, redirect URIs), rotate the
// secret (shown once, on the answer to the rotate form) and delete.

type applicationsPage struct {
	base
	listPage[iam.Application]
	CanCreate bool
	Done      string
}

func (c *Console) applicationsList(w http.ResponseWriter, r *http.Request, sess session) error {
	var all []iam.Application
	if err := c.call(r.Context(), sess, http.MethodGet, "/v1/application", nil, &all); err != nil {
		return err
	}
	page := applicationsPage{base: c.base(sess, "Applications", "applications"),
		listPage: pageList(all, r.URL.Query(), "/console/applications", func(a iam.Application, f string) bool {
			return has(f, a.Name, a.Description, a.ClientID, a.ID)
		}),
		CanCreate: c.can(r.Context(), sess, "App:CreateApplication", "App:Application:*"), Done: r.URL.Query().Get("done")}
	return c.render(w, http.StatusOK, "applications", page)
}

type applicationPage struct {
	base
	New       bool
	App       iam.Application
	Callbacks string // the form's allowed callback URLs, one a line
	Logouts   string // allowed logout URLs, one a line
	CanEdit   bool
	CanRotate bool
	CanDelete bool
	Secret    string // just rotated: shown this once
	Saved     bool
	Error     string
	ErrorIn   string // "name", "callbacks", "logouts", "loginRedirectUri", "form", "rotate", "delete"
}

func (c *Console) newApplicationPage(w http.ResponseWriter, r *http.Request, sess session) error {
	if !c.can(r.Context(), sess, "App:CreateApplication", "App:Application:*") {
		return c.message(w, http.StatusForbidden, "Cannot create applications", "You may not create applications in this project.")
	}
	return c.render(w, http.StatusOK, "application", applicationPage{base: c.base(sess, "New application", "applications"), New: true, CanEdit: true})
}

// appInput is the application form as the API's body.
func appInput(f url.Values) map[string]any {
	return map[string]any{"name": strings.TrimSpace(f.Get("name")), "description": strings.TrimSpace(f.Get("description")),
		"loginRedirectUri": strings.TrimSpace(f.Get("loginRedirectUri")), "allowedCallbackUrls": lines(f.Get("callbacks")),
		"allowedLogoutUrls": lines(f.Get("logouts"))}
}

// appError names the form field an application's refusal is about.
func appError(msg string) string {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "callback"):
		return "callbacks"
	case strings.Contains(m, "logout"):
		return "logouts"
	case strings.Contains(m, "loginredirect") || strings.Contains(m, "login redirect"):
		return "loginRedirectUri"
	case strings.Contains(m, "name"):
		return "name"
	}
	return "form"
}

func (c *Console) createApplication(w http.ResponseWriter, r *http.Request, sess session) error {
	var a iam.Application
	err := c.call(r.Context(), sess, http.MethodPost, "/v1/application", appInput(r.PostForm), &a)
	var ae *apiError
	if errors.As(err, &ae) {
		f := r.PostForm
		page := applicationPage{base: c.base(sess, "New application", "applications"), New: true, CanEdit: true,
			App:       iam.Application{Name: f.Get("name"), Description: f.Get("description"), LoginRedirectURI: f.Get("loginRedirectUri")},
			Callbacks: f.Get("callbacks"), Logouts: f.Get("logouts"), Error: sentence(ae.Message), ErrorIn: appError(ae.Message)}
		return c.render(w, ae.Status, "application", page)
	}
	if err != nil {
		return err
	}
	return seeOther(w, r, "/console/applications/"+url.PathEscape(a.ID)+"?saved=1")
}

func (c *Console) loadApplication(r *http.Request, sess session, id string) (applicationPage, error) {
	var a iam.Application
	if err := c.call(r.Context(), sess, http.MethodGet, "/v1/application/"+url.PathEscape(id), nil, &a); err != nil {
		return applicationPage{}, err
	}
	res := "App:Application:" + a.ID
	return applicationPage{base: c.base(sess, "Application "+a.Name, "applications"), App: a,
		Callbacks: strings.Join(a.AllowedCallbackURLs, "\n"), Logouts: strings.Join(a.AllowedLogoutURLs, "\n"),
		CanEdit:   c.can(r.Context(), sess, "App:UpdateApplication", res),
		CanRotate: c.can(r.Context(), sess, "App:RotateApplicationSecret", res),
		CanDelete: c.can(r.Context(), sess, "App:DeleteApplication", res)}, nil
}

func (c *Console) applicationPage(w http.ResponseWriter, r *http.Request, sess session) error {
	page, err := c.loadApplication(r, sess, r.PathValue("id"))
	if err != nil {
		return err
	}
	page.Saved = r.URL.Query().Get("saved") == "1"
	return c.render(w, http.StatusOK, "application", page)
}

func (c *Console) updateApplication(w http.ResponseWriter, r *http.Request, sess session) error {
	id := r.PathValue("id")
	err := c.call(r.Context(), sess, http.MethodPatch, "/v1/application/"+url.PathEscape(id), appInput(r.PostForm), nil)
	var ae *apiError
	if err != nil && (!errors.As(err, &ae) || ae.Status == http.StatusNotFound) {
		return err
	}
	if ae == nil {
		return seeOther(w, r, "/console/applications/"+url.PathEscape(id)+"?saved=1")
	}
	page, lerr := c.loadApplication(r, sess, id)
	if lerr != nil {
		return lerr
	}
	// The form as sent, so the developer can fix it.
	f := r.PostForm
	page.App.Name, page.App.Description, page.App.LoginRedirectURI = f.Get("name"), f.Get("description"), f.Get("loginRedirectUri")
	page.Callbacks, page.Logouts = f.Get("callbacks"), f.Get("logouts")
	page.Error, page.ErrorIn = sentence(ae.Message), appError(ae.Message)
	return c.render(w, ae.Status, "application", page)
}

func (c *Console) rotateApplication(w http.ResponseWriter, r *http.Request, sess session) error {
	id := r.PathValue("id")
	var out struct {
		Secret string `json:"secret"`
	}
	err := c.call(r.Context(), sess, http.MethodPost, "/v1/application/"+url.PathEscape(id)+"/rotate-secret", nil, &out)
	var ae *apiError
	if err != nil && (!errors.As(err, &ae) || ae.Status == http.StatusNotFound) {
		return err
	}
	page, lerr := c.loadApplication(r, sess, id)
	if lerr != nil {
		return lerr
	}
	if ae != nil {
		page.Error, page.ErrorIn = sentence(ae.Message), "rotate"
		return c.render(w, ae.Status, "application", page)
	}
	page.Secret = out.Secret
	return c.render(w, http.StatusOK, "application", page)
}

func (c *Console) deleteApplication(w http.ResponseWriter, r *http.Request, sess session) error {
	id := r.PathValue("id")
	err := c.call(r.Context(), sess, http.MethodDelete, "/v1/application/"+url.PathEscape(id), nil, nil)
	var ae *apiError
	if err != nil && (!errors.As(err, &ae) || ae.Status == http.StatusNotFound) {
		return err
	}
	if ae == nil {
		return seeOther(w, r, "/console/applications?"+url.Values{"done": {"Application deleted."}}.Encode())
	}
	page, lerr := c.loadApplication(r, sess, id)
	if lerr != nil {
		return lerr
	}
	page.Error, page.ErrorIn = sentence(ae.Message), "delete"
	return c.render(w, ae.Status, "application", page)
}
