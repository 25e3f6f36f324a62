package console

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Sign-in: /console/signin sends the browser to Ward's authorization
// endpoint as the ward-console client (PKCE S256, a fresh state), the
// developer signs in on Ward's own page, and /console/callback trades the
// code for the developer's token and starts a session.

type welcomePage struct{ base }

// home is the welcome page (signed out) or the dashboard.
func (c *Console) home(w http.ResponseWriter, r *http.Request) error {
	if _, err := c.session(r); err == nil {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, "/console/dashboard", http.StatusSeeOther)
		return nil
	} else if !errors.Is(err, errNoSession) {
		return err
	}
	return c.render(w, http.StatusOK, "welcome", welcomePage{base{Title: "Console"}})
}

func (c *Console) signin(w http.ResponseWriter, r *http.Request) error {
	state, err := randomToken()
	if err != nil {
		return err
	}
	verifier, err := randomToken() // 43 characters: RFC 7636's minimum
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {ClientID}, "redirect_uri": {c.callbackURL()},
		"state": {state}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	// The verifier stays in this browser (HttpOnly, only sent to /console)
	// and the state ties the callback to this browser's sign-in.
	http.SetCookie(w, c.cookie(loginCookie, state+"."+verifier, int(loginTTL.Seconds())))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/oauth/authorize?"+q.Encode(), http.StatusSeeOther)
	return nil
}

func (c *Console) callback(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	var state, verifier string
	if ck, err := r.Cookie(loginCookie); err == nil {
		state, verifier, _ = parseLogin(ck.Value)
	}
	http.SetCookie(w, c.cookie(loginCookie, "", -1))
	if state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(q.Get("state"))) != 1 {
		return c.message(w, http.StatusBadRequest, "Cannot sign in", "This sign-in was not started here or has expired. Sign in again from the console.")
	}
	if e := q.Get("error"); e != "" {
		msg := q.Get("error_description")
		if e == "access_denied" {
			msg = "You cancelled the sign-in"
		}
		return c.message(w, http.StatusOK, "Not signed in", sentence(msg))
	}
	token, expiresIn, err := c.exchange(ctx, q.Get("code"), verifier)
	if err != nil {
		return err
	}
	p, err := c.verify(ctx, token)
	if err != nil {
		return err
	}
	projects, err := c.projects(ctx, p.ID)
	if err != nil {
		return err
	}
	if len(projects) == 0 {
		return c.message(w, http.StatusForbidden, "No project", "You are not a member of any project. Ask a project's admin to invite you.")
	}
	tok, err := c.sessions.start(ctx, p.ID, token, projects[0].ID, projects[0].Name, c.now().Add(time.Duration(expiresIn)*time.Second))
	if err != nil {
		return err
	}
	http.SetCookie(w, c.cookie(sessionCookie, tok, expiresIn))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/console/dashboard", http.StatusSeeOther)
	return nil
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, sess session) error {
	if err := c.sessions.end(r.Context(), sess.key); err != nil {
		return err
	}
	c.revoke(r.Context(), sess.AccessToken)
	http.SetCookie(w, c.cookie(sessionCookie, "", -1))
	return c.render(w, http.StatusOK, "welcome", welcomePage{base{Title: "Signed out"}})
}

// parseLogin reads the login cookie, "state.verifier": both are base64url
// tokens (no dots); ok is false for anything else.
func parseLogin(v string) (state, verifier string, ok bool) {
	state, verifier, found := strings.Cut(v, ".")
	if !found || state == "" || len(verifier) < 43 || len(verifier) > 128 || strings.Contains(verifier, ".") {
		return "", "", false
	}
	return state, verifier, true
}
