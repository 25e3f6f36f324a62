package oauth

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// Ward's own HTML pages (sign-in, patient picker, consent, errors): one
// stylesheet served by Ward, no script and no outside assets, so a strict
// Content-Security-Policy holds. The console will share the stylesheet.

//go:embed pages/*.tmpl pages/ward.css
var pageFiles embed.FS

var pageTemplates = template.Must(template.ParseFS(pageFiles, "pages/*.tmpl"))

// pageBase is what every page's layout reads.
type pageBase struct {
	Title string
	App   string // the application's name
	Host  string // where the application lives: its redirect URI's host
}

type signinPageData struct {
	pageBase
	Request       []hiddenField
	Email         string
	Given, Family string // the sign-up form, shown again after an error
	Error         string
	ErrorIn       string // "signin" or "signup": the form Error is about
	Invalid       bool   // the credentials were wrong: mark the fields
	Signup        bool   // the project lets patients register themselves
	FirstParty    bool   // Ward's own console: no consent step follows
	Min           int
}

type pickerPageData struct {
	pageBase
	Interaction, Error, Query string
	Account                   string
	SignOut                   bool // offer "Not you? Sign out"
	Patients                  []patientChoice
	More                      bool // there are more than the page shows
}

type patientChoice struct{ ID, Name, Detail string }

type consentPageData struct {
	pageBase
	Heading                string
	Interaction            string
	Patient, PatientDetail string
	Account                string
	SignOut                bool // offer "Not you? Sign out"
	Items                  []consentItem
	Stay                   string // how long staying signed in lasts and how to end it
}

type messagePageData struct {
	pageBase
	Heading, Message string
}

// render writes a page. redirectURI is where its forms may end up: the
// application's redirect URI, which Chrome checks against form-action
// after the POST redirects ("" when the page has no form).
func render(w http.ResponseWriter, status int, name, redirectURI string, data any) error {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		return err
	}
	pageHeaders(w)
	// The pages post credentials: never inside another site's frame.
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", pageCSP(redirectURI))
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// pageCSP allows the stylesheet and form posts to Ward (and on to the
// application's redirect), nothing else.
func pageCSP(redirectURI string) string {
	action := "'none'"
	if redirectURI != "" {
		action = "'self'"
		if o := cspSource(redirectURI); o != "" {
			action += " " + o
		}
	}
	return "default-src 'none'; style-src 'self'; img-src 'self'; form-action " + action +
		"; frame-ancestors 'none'; base-uri 'none'"
}

var (
	cspScheme = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)
	cspHost   = regexp.MustCompile(`^[A-Za-z0-9.\-]+(:[0-9]+)?$|^\[[0-9A-Fa-f:.]+\](:[0-9]+)?$`)
)

// cspSource is a redirect URI's origin as a CSP source ("" if it cannot be
// written safely: a policy must never be widened by a crafted URI).
func cspSource(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	if !cspScheme.MatchString(scheme) {
		return ""
	}
	if u.Host == "" { // a private-use scheme (com.example.app:/callback)
		return scheme + ":"
	}
	if !cspHost.MatchString(u.Host) {
		return ""
	}
	return scheme + "://" + u.Host
}

// redirectHost is what the pages show of where the app lives.
func redirectHost(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return ""
	}
	if u.Host == "" {
		return u.Scheme + ":"
	}
	return u.Host
}

// pageHeaders are the headers of every page: never cached, and no referrer
// (the URL holds the authorization request).
func pageHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
}

func errorPage(w http.ResponseWriter, status int, msg string) error {
	return render(w, status, "message", "", messagePageData{pageBase: pageBase{Title: "Cannot sign in"},
		Heading: "Cannot sign in", Message: msg})
}

// sentence writes a service message as a sentence on a page.
func sentence(msg string) string {
	msg = capitalize(strings.TrimSpace(msg))
	if msg != "" && !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

// Stylesheet serves /static/ward.css.
func (s *Server) Stylesheet(w http.ResponseWriter, r *http.Request) error {
	b, err := pageFiles.ReadFile("pages/ward.css")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, err = w.Write(b)
	return err
}
