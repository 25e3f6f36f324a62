package server

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// userRoutes are the users and applications of a project, and the page
// where an invited user sets a password.
func (s *Server) userRoutes() []route {
	app, apps := withID("App:Application:"), fixed("App:Application:*")
	user, users := withID("App:User:"), fixed("App:User:*")
	return []route{
		{method: "GET", path: "/v1/application", action: "App:ListAllApplications", resource: apps, handle: s.listApplications},
		{method: "POST", path: "/v1/application", action: "App:CreateApplication", resource: apps, handle: withBody(s.iam.CreateApplication)},
		{method: "GET", path: "/v1/application/{id}", action: "App:GetApplication", resource: app, handle: byID(s.iam.GetApplication)},
		{method: "PATCH", path: "/v1/application/{id}", action: "App:UpdateApplication", resource: app, handle: byIDWithBody(s.iam.UpdateApplication)},
		{method: "DELETE", path: "/v1/application/{id}", action: "App:DeleteApplication", resource: app, handle: deleteByID(s.iam.DeleteApplication)},
		{method: "POST", path: "/v1/application/{id}/rotate-secret", action: "App:RotateApplicationSecret", resource: app, handle: rotateByID(s.iam.RotateApplicationSecret)},
		{method: "POST", path: "/v1/application/{id}/revoke-refresh-token", action: "App:RevokeRefreshToken", resource: app, handle: s.revokeApplicationToken(true)},
		{method: "POST", path: "/v1/application/{id}/revoke-access-token", action: "App:RevokeAccessToken", resource: app, handle: s.revokeApplicationToken(false)},

		{method: "GET", path: "/v1/user", action: "App:ListAllUsers", resource: users, handle: s.listUsers},
		{method: "GET", path: "/v1/user/v2/list", action: "App:ListAllUsers", resource: users, handle: s.listUsersV2},
		{method: "POST", path: "/v1/user/invite", action: "App:CreateUser", resource: users, handle: withBody(s.iam.InviteUser)},
		// Any user may read itself; the action names what it amounts to.
		{method: "GET", path: "/v1/user/me", action: "App:GetUser", authOnly: true, handle: s.userMe},
		{method: "GET", path: "/v1/user/{id}", action: "App:GetUser", resource: user, handle: byID(s.iam.GetUser)},
		{method: "PATCH", path: "/v1/user/{id}", action: "App:UpdateUser", resource: user, handle: byIDWithBody(s.iam.UpdateUser)},
		{method: "DELETE", path: "/v1/user/{id}", action: "App:DeleteUser", resource: user, handle: deleteByID(s.iam.DeleteUser)},
		{method: "POST", path: "/v1/user/{id}/reset-mfa", action: "App:ResetUserMFA", resource: user, handle: s.resetUserMFA},
		{method: "POST", path: "/v1/user/{id}/reset-password-link", action: "App:GetUserPasswordResetLink", resource: user, handle: s.userPasswordResetLink},

		// The one-time token in the path is the credential.
		{method: "GET", path: "/user-invite/{token}", public: true, handle: s.userInvitePage},
		{method: "POST", path: "/user-invite/{token}", public: true, handle: s.acceptUserInvite},
		// A password reset link's page: the one-time token is the
		// credential, the form carries a token tied to a cookie (CSRF).
		{method: "GET", path: "/oauth/reset/{token}", public: true, handle: s.passwordResetPage},
		{method: "POST", path: "/oauth/reset/{token}", public: true, handle: s.passwordResetPage},
	}
}

func (s *Server) listApplications(w http.ResponseWriter, r *http.Request, c call) error {
	apps, err := s.iam.ListApplications(r.Context(), c.p.ProjectID)
	if err != nil {
		return err
	}
	type item struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		ClientID    string `json:"clientId"`
		Description string `json:"description,omitempty"`
	}
	out := make([]item, 0, len(apps))
	for _, a := range apps {
		out = append(out, item{ID: a.ID, Name: a.Name, ClientID: a.ClientID, Description: a.Description})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) revokeApplicationToken(refresh bool) func(http.ResponseWriter, *http.Request, call) error {
	return func(w http.ResponseWriter, r *http.Request, c call) error {
		var in struct {
			Token string `json:"token"`
		}
		if err := decodeJSON(r, &in); err != nil {
			return err
		}
		if err := s.oauth.RevokeApplicationToken(r.Context(), c.p.ProjectID, r.PathValue("id"), in.Token, refresh); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]string{"message": "token revoked"})
		return nil
	}
}

// userItem is a user in lists.
type userItem struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Email   *string `json:"email"`
	Profile string  `json:"profile"`
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, c call) error {
	users, _, err := s.iam.ListUsers(r.Context(), c.p.ProjectID, store.UserFilter{})
	if err != nil {
		return err
	}
	out := make([]userItem, 0, len(users))
	for _, u := range users {
		out = append(out, userItem{ID: u.ID, Name: u.Name, Email: u.Email, Profile: u.Profile})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) listUsersV2(w http.ResponseWriter, r *http.Request, c call) error {
	l, err := parseListV2(r, "id", "name", "email", "phoneNumber", "createdAt")
	if err != nil {
		return err
	}
	f := store.UserFilter{Name: query(r, "name"), Email: query(r, "email"), ID: query(r, "id"), Profile: query(r, "profile"),
		RoleID: query(r, "roleId"), Sort: store.UserSort(l.sort), Descending: l.descending, Limit: l.limit, After: l.cursor}
	if l.cursor != "" {
		// A cursor carries its sort's key: another sort's is refused.
		key, _, found := strings.Cut(l.cursor, "\x00")
		if _, err := strconv.ParseInt(key, 10, 64); !found || f.Sort == store.UserSortCreatedAt && err != nil {
			return fault.Invalid("cursor is not one this server issued for this sort")
		}
	}
	users, next, err := s.iam.ListUsers(r.Context(), c.p.ProjectID, f)
	if err != nil {
		return err
	}
	var page listPage[userItem]
	page.Data = make([]userItem, 0, len(users))
	for _, u := range users {
		page.Data = append(page.Data, userItem{ID: u.ID, Name: u.Name, Email: u.Email, Profile: u.Profile})
	}
	if next != "" {
		cur := base64.RawURLEncoding.EncodeToString([]byte(next))
		page.Metadata.NextCursor = &cur
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) userMe(w http.ResponseWriter, r *http.Request, c call) error {
	u, err := s.iam.UserMe(r.Context(), c.p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

func (s *Server) userInvitePage(w http.ResponseWriter, r *http.Request, _ call) error {
	return showInvitePage(w, userInvite)
}

func (s *Server) acceptUserInvite(w http.ResponseWriter, r *http.Request, _ call) error {
	return s.acceptWithPassword(w, r, userInvite, func(ctx context.Context, token, password string) (any, error) {
		return s.iam.AcceptUserInvitation(ctx, token, password)
	})
}

// resetUserMFA removes the user's two-step sign-in enrolment (recovery:
// the user signs in with the password alone, and may enrol again).
func (s *Server) resetUserMFA(w http.ResponseWriter, r *http.Request, c call) error {
	if err := decodeJSON(r, &struct{}{}); err != nil {
		return err
	}
	if err := s.iam.ResetMFA(r.Context(), c.p.ProjectID, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// userPasswordResetLink returns a one-time link to Ward's page where the
// user chooses a new password (Ward sends no email: the caller delivers it).
func (s *Server) userPasswordResetLink(w http.ResponseWriter, r *http.Request, c call) error {
	var in struct {
		RedirectURL string `json:"redirectUrl"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	link, err := s.iam.CreatePasswordResetLink(r.Context(), c.p.ProjectID, r.PathValue("id"), in.RedirectURL)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, link)
	return nil
}

func (s *Server) passwordResetPage(w http.ResponseWriter, r *http.Request, _ call) error {
	return s.oauth.ResetPassword(w, r)
}
