package oauth

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
)

// The password reset page: an administrator's one-time link
// (POST /v1/user/{id}/reset-password-link) opens it, the user chooses a
// new password. The token in the path is the credential; the form also
// carries a token tied to a cookie the page set (double submit), so
// another site cannot post a password of its choosing through a link it
// holds into the user's browser.

const resetCookie = "ward_reset"

type resetPageData struct {
	pageBase
	Account, Form, Error string
	Min                  int
	Done, Gone           bool
	Continue             string // where the application asked the user be sent afterwards
}

func resetFormToken(nonce, token string) string { return secretHash("reset-form", nonce+"\x00"+token) }

// ResetPassword is /oauth/reset/{token}, GET (the form) and POST (the new
// password). Using the link ends the user's sessions and revokes their
// refresh tokens with the access tokens issued with them.
func (s *Server) ResetPassword(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	token := r.PathValue("token")
	page := resetPageData{pageBase: pageBase{Title: "Reset your password"}, Min: iam.MinPasswordLength}
	gone := func(err error) error {
		_, msg := fault.Public(err)
		page.Gone, page.Error = true, sentence(msg)
		return render(w, http.StatusNotFound, "reset", "", page)
	}
	reset, err := s.iam.PasswordReset(ctx, token)
	if errors.Is(err, fault.ErrNotFound) {
		return gone(err)
	}
	if err != nil {
		return err
	}
	if u, err := s.iam.GetUser(ctx, reset.ProjectID, reset.UserID); err == nil && u.Email != nil {
		page.Account = *u.Email
	}
	if r.Method != http.MethodPost {
		nonce, err := randomToken()
		if err != nil {
			return err
		}
		http.SetCookie(w, s.resetCookie(nonce, 3600))
		page.Form = resetFormToken(nonce, token)
		return render(w, http.StatusOK, "reset", s.cfg.PublicURL, page)
	}
	if err := r.ParseForm(); err != nil {
		return errorPage(w, http.StatusBadRequest, "The request is not valid form encoding.")
	}
	c, err := r.Cookie(resetCookie)
	form := r.PostForm.Get("form")
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(form), []byte(resetFormToken(c.Value, token))) != 1 {
		return errorPage(w, http.StatusForbidden, "This form has expired. Open the password reset link again.")
	}
	reset, families, err := s.iam.ResetPassword(ctx, token, r.PostForm.Get("password"))
	if errors.Is(err, fault.ErrNotFound) {
		return gone(err)
	}
	if err != nil {
		status, msg := fault.Public(err)
		if status >= 500 {
			return err
		}
		page.Error, page.Form = sentence(msg), form
		return render(w, status, "reset", s.cfg.PublicURL, page)
	}
	for _, f := range families {
		if err := s.revokeFamily(ctx, f); err != nil {
			return err
		}
	}
	http.SetCookie(w, s.resetCookie("", -1))
	http.SetCookie(w, s.sessionCookie("", -1))
	page.Done, page.Continue = true, reset.RedirectURL
	return render(w, http.StatusOK, "reset", "", page)
}

// resetCookie is sent only back to the reset page, never cross-site.
func (s *Server) resetCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: resetCookie, Value: value, Path: iam.PasswordResetPath, MaxAge: maxAge, HttpOnly: true,
		Secure: strings.HasPrefix(s.cfg.PublicURL, "https://"), SameSite: http.SameSiteStrictMode}
}
