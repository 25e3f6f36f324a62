package oauth

import (
	"errors"
	"html/template"
	"net/http"
	"strconv"

	"github.com/wardhealth/ward/internal/fault"
)

// Two-step sign-in (TOTP): after the password, a user who has enrolled
// enters a code from an authenticator app; an application with mfaEnabled
// makes a user who has not enrolled do so first. The session starts only
// after the code. Users may also enrol from their applications page.

const (
	stepCode  = "code"  // an enrolled user's code after the password
	stepEnrol = "enrol" // enrolment the application requires, then its first code
)

type mfaPageData struct {
	pageBase
	Enrol       bool         // show the secret: setting up, not signing in
	Key         string       // the secret, to type
	URI         template.URL // otpauth://, built by Ward from the secret
	Account     string
	Action      string // where the form posts: /oauth/authorize or /oauth/apps
	Interaction string // a sign-in's step (/oauth/authorize)
	Form        string // the apps page's CSRF token (/oauth/apps)
	Required    bool   // the application requires two-step sign-in
	Error       string
}

// secondStep is the step a sign-in needs after the password, "" for none.
// fresh says the user has just typed a password (not a remembered
// session, which only began after any second step).
func (s *Server) secondStep(r *http.Request, projectID, userID string, required, fresh bool) (string, error) {
	enrolled, err := s.iam.MFAEnrolled(r.Context(), projectID, userID)
	switch {
	case err != nil:
		return "", err
	case enrolled && fresh:
		return stepCode, nil
	case !enrolled && required:
		return stepEnrol, nil
	}
	return "", nil
}

// askCode keeps the sign-in under a fresh interaction and shows the page
// for its step: the code, or the secret then its first code.
func (s *Server) askCode(w http.ResponseWriter, r *http.Request, status int, p pending, msg string) error {
	ctx := r.Context()
	page := mfaPageData{pageBase: p.page("Two-step sign-in"), Account: p.Account, Action: "/oauth/authorize", Error: msg}
	if p.Step == stepEnrol {
		e, err := s.iam.PendingMFA(ctx, p.Grant.ProjectID, p.Grant.UserID, p.Account)
		if errors.Is(err, fault.ErrNotFound) {
			e, err = s.iam.StartMFA(ctx, p.Grant.ProjectID, p.Grant.UserID, p.Account)
		}
		if err != nil {
			return err
		}
		page.Enrol, page.Required, page.Key, page.URI = true, true, e.Key, template.URL(e.URI)
		page.Title = "Set up two-step sign-in"
	}
	tok, err := s.keep(ctx, p)
	if err != nil {
		return err
	}
	page.Interaction = tok
	return render(w, status, "mfa", p.Grant.RedirectURI, page)
}

// checkCode takes the code form of a sign-in: a good code starts the
// session and goes on to the picker or consent; a wrong one asks again.
func (s *Server) checkCode(w http.ResponseWriter, r *http.Request, p pending) error {
	err := s.iam.CheckMFA(r.Context(), p.Grant.ProjectID, p.Grant.UserID, r.PostForm.Get("code"), s.cfg.Proxies.Client(r))
	if err != nil {
		status, msg := codeFailed(w, err)
		if status >= 500 {
			return err
		}
		return s.askCode(w, r, status, p, msg)
	}
	if err := s.startSession(r.Context(), w, p.Grant.ProjectID, p.Grant.UserID); err != nil {
		return err
	}
	return s.afterSignIn(w, r, p, p.NeedPatient)
}

// codeFailed is a wrong code's status and sentence (with Retry-After when
// throttled).
func codeFailed(w http.ResponseWriter, err error) (int, string) {
	status, msg := fault.Public(err)
	if ra := fault.RetryAfter(err); ra > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ra))
	}
	return status, sentence(msg)
}

// enrolFromApps is the applications page's "Set up two-step sign-in" and
// its code form: the session is the credential, the form token its CSRF
// check (done by Apps).
func (s *Server) enrolFromApps(w http.ResponseWriter, r *http.Request, projectID, userID, account, form string) error {
	ctx := r.Context()
	page := mfaPageData{pageBase: pageBase{Title: "Set up two-step sign-in"}, Enrol: true, Account: account, Action: "/oauth/apps", Form: form}
	status := http.StatusOK
	switch r.PostForm.Get("action") {
	case "mfa-verify":
		err := s.iam.CheckMFA(ctx, projectID, userID, r.PostForm.Get("code"), s.cfg.Proxies.Client(r))
		if err == nil {
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, "/oauth/apps", http.StatusSeeOther)
			return nil
		}
		if status, page.Error = codeFailed(w, err); status >= 500 {
			return err
		}
		fallthrough
	default:
		e, err := s.iam.PendingMFA(ctx, projectID, userID, account)
		if errors.Is(err, fault.ErrNotFound) {
			e, err = s.iam.StartMFA(ctx, projectID, userID, account)
		}
		if errors.Is(err, fault.ErrConflict) {
			return errorPage(w, http.StatusConflict, "Two-step sign-in is already set up for your account.")
		}
		if err != nil {
			return err
		}
		page.Key, page.URI = e.Key, template.URL(e.URI)
	}
	return render(w, status, "mfa", s.cfg.PublicURL+"/oauth/apps", page)
}

// mfaState is what the applications page says of two-step sign-in.
func (s *Server) mfaState(r *http.Request, projectID, userID string) (bool, error) {
	return s.iam.MFAEnrolled(r.Context(), projectID, userID)
}
