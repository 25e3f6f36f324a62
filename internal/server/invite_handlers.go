package server

import (
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
	"html/template"
	"mime"
	"net/http"
)

// invitePage is a plain form: no script, no build step.
var invitePage = template.Must(template.New("invite").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Join the project - Ward</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 28rem; margin: 4rem auto">
<h1>Join the project</h1>
{{if .Error}}<p role="alert" style="color: #a00">{{.Error}}</p>{{end}}
{{if .Done}}<p>Your developer account is ready. You can close this page.</p>{{else}}
<form method="post">
<label>Choose a password (at least {{.Min}} characters)<br>
<input type="password" name="password" minlength="{{.Min}}" maxlength="72" required autocomplete="new-password"></label>
<p><button type="submit">Accept the invitation</button></p>
</form>{{end}}
</body></html>
`))

type invitePageData struct {
	Error string
	Done  bool
	Min   int
}

func (s *Server) invitePage(w http.ResponseWriter, r *http.Request, _ call) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer") // the URL holds the invitation token
	return invitePage.Execute(w, invitePageData{Min: iam.MinPasswordLength})
}

// acceptInvite takes a form post (the page) or JSON {password} (scripts).
func (s *Server) acceptInvite(w http.ResponseWriter, r *http.Request, _ call) error {
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
	d, err := s.iam.AcceptInvitation(r.Context(), r.PathValue("token"), password)
	if ct == "application/json" {
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, d)
		return nil
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		status, msg := fault.Public(err)
		w.WriteHeader(status)
		return invitePage.Execute(w, invitePageData{Error: msg, Min: iam.MinPasswordLength})
	}
	return invitePage.Execute(w, invitePageData{Done: true})
}
