package oauth

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store"
)

// Remembered sign-in: a session cookie for Ward's own pages, so a second
// launch skips the password, and consent remembered per user and
// application, so the same application asking for no more than was
// allowed skips the consent page. The apps page lists what is remembered
// and withdraws it.

const (
	sessionCookie = "ward_session"
	sessionTTL    = 12 * time.Hour
)

// session is the signed-in user of a request's session cookie; ok is false
// without a valid session (none, expired, signed out, forged, or its user
// deleted since).
func (s *Server) session(ctx context.Context, r *http.Request) (tok string, sess store.OAuthSession, u iam.User, ok bool, err error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return "", store.OAuthSession{}, iam.User{}, false, nil
	}
	sess, err = s.store.GetOAuthSession(ctx, secretHash("session", c.Value), s.now())
	if errors.Is(err, store.ErrNotFound) {
		return "", store.OAuthSession{}, iam.User{}, false, nil
	}
	if err != nil {
		return "", store.OAuthSession{}, iam.User{}, false, err
	}
	u, err = s.iam.GetUser(ctx, sess.ProjectID, sess.UserID)
	if errors.Is(err, fault.ErrNotFound) {
		return "", store.OAuthSession{}, iam.User{}, false, nil
	}
	if err != nil {
		return "", store.OAuthSession{}, iam.User{}, false, err
	}
	return c.Value, sess, u, true, nil
}

// startSession remembers a user's sign-in under a fresh cookie.
func (s *Server) startSession(ctx context.Context, w http.ResponseWriter, projectID, userID string) error {
	tok, err := randomToken()
	if err != nil {
		return err
	}
	now := s.now()
	if err := s.store.PutOAuthSession(ctx, secretHash("session", tok), store.OAuthSession{ProjectID: projectID, UserID: userID,
		CreatedAt: now, ExpiresAt: now.Add(sessionTTL)}); err != nil {
		return err
	}
	http.SetCookie(w, s.sessionCookie(tok, int(sessionTTL.Seconds())))
	return nil
}

// endSession signs the request's session out and clears its cookie.
func (s *Server) endSession(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		if err := s.store.DeleteOAuthSession(ctx, secretHash("session", c.Value)); err != nil {
			return err
		}
	}
	http.SetCookie(w, s.sessionCookie("", -1))
	return nil
}

// sessionCookie is only sent to Ward's own pages, never to scripts, and
// not on cross-site POSTs (Lax: a launch is a top-level GET from the app).
func (s *Server) sessionCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: sessionCookie, Value: value, Path: "/oauth", MaxAge: maxAge, HttpOnly: true,
		Secure: strings.HasPrefix(s.cfg.PublicURL, "https://"), SameSite: http.SameSiteLaxMode}
}

// formToken ties the apps page's forms to the session (CSRF).
func formToken(sessionToken string) string { return secretHash("form", sessionToken) }

// consented reports whether the user allowed the application at least the
// grant's scopes before and has not withdrawn it.
func (s *Server) consented(ctx context.Context, g smartGrant) (bool, error) {
	if g.Developer {
		return false, nil
	}
	c, err := s.store.GetConsent(ctx, g.ProjectID, g.UserID, g.ClientID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, sc := range g.Scopes {
		if !slices.Contains(c.Scopes, sc) {
			return false, nil
		}
	}
	return true, nil
}

// rememberConsent records what the user allowed, replacing what was
// remembered for the application.
func (s *Server) rememberConsent(ctx context.Context, g smartGrant) error {
	if g.Developer {
		return nil
	}
	scopes := slices.Clone(g.Scopes)
	slices.Sort(scopes)
	return s.store.PutConsent(ctx, g.ProjectID, g.UserID, store.Consent{ClientID: g.ClientID, Scopes: scopes, GrantedAt: s.now()})
}

type appsPageData struct {
	pageBase
	Account   string // "": not signed in
	SignedOut bool
	Form      string // the CSRF token of the forms
	Apps      []grantedApp
	MFA       bool // two-step sign-in is set up
	NoMFA     bool // the server cannot offer it (no secrets key)
}

type grantedApp struct {
	ClientID, Name, Granted string
	Items                   []consentItem
}

// Apps is /oauth/apps, GET and POST: the applications the signed-in user
// has allowed, each with a Withdraw button (which forgets the consent and
// revokes the application's refresh tokens of the user), and Sign out.
// The session cookie authenticates; the forms carry a token tied to it.
func (s *Server) Apps(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	tok, sess, u, ok, err := s.session(ctx, r)
	if err != nil {
		return err
	}
	page := appsPageData{pageBase: pageBase{Title: "Your applications"}}
	if !ok {
		if r.Method == http.MethodPost && r.PostFormValue("action") == "signout" {
			http.SetCookie(w, s.sessionCookie("", -1))
			page.SignedOut = true
			return render(w, http.StatusOK, "apps", "", page)
		}
		return render(w, http.StatusUnauthorized, "apps", "", page)
	}
	if r.Method == http.MethodPost {
		if subtle.ConstantTimeCompare([]byte(r.PostFormValue("form")), []byte(formToken(tok))) != 1 {
			return errorPage(w, http.StatusForbidden, "This form has expired. Open the list of your applications again.")
		}
		switch r.PostForm.Get("action") {
		case "withdraw":
			fams, err := s.store.WithdrawConsent(ctx, sess.ProjectID, sess.UserID, r.PostForm.Get("client_id"), s.now())
			if err != nil {
				return err
			}
			for _, f := range fams {
				if err := s.revokeFamily(ctx, f); err != nil {
					return err
				}
			}
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, "/oauth/apps", http.StatusSeeOther)
			return nil
		case "mfa-start", "mfa-verify":
			account := u.ID
			if u.Email != nil && *u.Email != "" {
				account = *u.Email
			}
			return s.enrolFromApps(w, r, sess.ProjectID, sess.UserID, account, formToken(tok))
		case "signout":
			if err := s.endSession(ctx, w, r); err != nil {
				return err
			}
			page.SignedOut = true
			return render(w, http.StatusOK, "apps", "", page)
		default:
			return errorPage(w, http.StatusBadRequest, "Unknown action.")
		}
	}
	page.Account, page.Form = u.ID, formToken(tok)
	if u.Email != nil && *u.Email != "" {
		page.Account = *u.Email
	}
	page.NoMFA = !s.iam.MFAAvailable()
	if page.MFA, err = s.mfaState(r, sess.ProjectID, sess.UserID); err != nil {
		return err
	}
	list, err := s.store.ListConsents(ctx, sess.ProjectID, sess.UserID)
	if err != nil {
		return err
	}
	for _, c := range list {
		a := grantedApp{ClientID: c.ClientID, Name: c.ClientID, Granted: c.GrantedAt.UTC().Format("2 January 2006"),
			Items: describeScopes(c.Scopes, "")}
		if app, projectID, err := s.iam.ApplicationByClientID(ctx, c.ClientID); err == nil && projectID == sess.ProjectID {
			a.Name = app.Name
		}
		page.Apps = append(page.Apps, a)
	}
	return render(w, http.StatusOK, "apps", s.cfg.PublicURL+"/oauth/apps", page)
}
