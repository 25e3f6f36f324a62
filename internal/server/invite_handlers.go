package server

import (
	"context"
	"html/template"
	"mime"
	"net/http"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
)

// invitePage is a plain form: no script, no build step. Developers and
// users accept their invitations on it, with their own wording.
var invitePage = template.Must(template.New("invite").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Kind.Title}} - Ward</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 28rem; margin: 4rem auto">
<h1>{{.Kind.Title}}</h1>
{{if .Error}}<p role="alert" style="color: #a00">{{.Error}}</p>{{end}}
{{if .Done}}<p>{{.Kind.Done}}</p>{{else}}
<form method="post">
<label>Choose a password (at least {{.Min}} characters)<br>
<input type="password" name="password" minlength="{{.Min}}" maxlength="72" required autocomplete="new-password"></label>
<p><button type="submit">Accept the invitation</button></p>
</form>{{end}}
</body></html>
`))

// inviteKind is the wording of one kind of invitation page.
type inviteKind struct{ Title, Done string }

var (
	developerInvite = inviteKind{Title: "Join the project", Done: "Your developer account is ready. You can close this page."}
	userInvite      = inviteKind{Title: "Set your password", Done: "Your account is ready. You can close this page and sign in to the application."}
)

type invitePageData struct {
	Kind  inviteKind
	Error string
	Done  bool
	Min   int
}

func pageHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer") // the URL holds the invitation token
}

func showInvitePage(w http.ResponseWriter, kind inviteKind) error {
	pageHeaders(w)
	return invitePage.Execute(w, invitePageData{Kind: kind, Min: iam.MinPasswordLength})
}

// acceptWithPassword takes a form post (the page) or JSON {password}
// (scripts) and hands the invitation token and password to accept.
func (s *Server) acceptWithPassword(w http.ResponseWriter, r *http.Request, kind inviteKind,
	accept func(ctx context.Context, token, password string) (any, error)) error {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var password string
	if ct == "application/json" {
		var in struct {
			Password string `json:"password"`
		}
		if err := decodeJSON(r, &in); err != nil {
			return err
		}
		password = in.Password
	} else {
		if err := r.ParseForm(); err != nil {
			return decodeJSON(r, &struct{}{}) // reports an oversize body as 413
		}
		password = r.PostForm.Get("password")
	}
	out, err := accept(r.Context(), r.PathValue("token"), password)
	if ct == "application/json" {
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	pageHeaders(w)
	if err != nil {
		status, msg := fault.Public(err)
		if status >= 500 {
			s.log.ErrorContext(r.Context(), "request failed", "err", err, "path", logPath(r.URL.Path))
		}
		w.WriteHeader(status)
		return invitePage.Execute(w, invitePageData{Kind: kind, Error: msg, Min: iam.MinPasswordLength})
	}
	return invitePage.Execute(w, invitePageData{Kind: kind, Done: true})
}

func (s *Server) invitePage(w http.ResponseWriter, r *http.Request, _ call) error {
	return showInvitePage(w, developerInvite)
}

func (s *Server) acceptInvite(w http.ResponseWriter, r *http.Request, _ call) error {
	return s.acceptWithPassword(w, r, developerInvite, func(ctx context.Context, token, password string) (any, error) {
		return s.iam.AcceptInvitation(ctx, token, password)
	})
}
