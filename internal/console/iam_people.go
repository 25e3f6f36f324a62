package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/wardhealth/ward/internal/iam"
)

// Developers and users: lists with a filter and pages, invite (the
// invitation link shown once, on the answer to the invite form), a detail
// page with the roles to edit, and remove. Every read and write is the
// API's, as the developer; controls show only when the gate would allow
// them.

type developersPage struct {
	base
	listPage[iam.Developer]
	CanInvite bool
	Done      string
}

func (c *Console) developersList(w http.ResponseWriter, r *http.Request, sess session) error {
	var all []iam.Developer
	if err := c.call(r.Context(), sess, http.MethodGet, "/v1/developer", nil, &all); err != nil {
		return err
	}
	page := developersPage{base: c.base(sess, "Developers", "developers"),
		listPage: pageList(all, r.URL.Query(), "/console/developers", func(d iam.Developer, f string) bool {
			return has(f, d.Name, d.Email, d.ID)
		}),
		CanInvite: c.can(r.Context(), sess, "IAM:InviteDeveloper", "IAM:Developer:*"), Done: r.URL.Query().Get("done")}
	return c.render(w, http.StatusOK, "developers", page)
}

// personPage is a developer's or a user's page, and the invite form of
// either (New).
type personPage struct {
	base
	Kind       string // "developer" or "user"
	New        bool
	ID         string
	Email      string
	Name       string
	Phone      string
	Method     string // a user's authentication method
	Profile    string // "Patient/<id>"
	ProfileURL string // its console page
	ProfileAs  string // invite form: the user's profile type
	App        string // invite form: the user's application
	Apps       []appChoice
	Roles      []roleChoice
	CanEdit    bool
	CanRemove  bool
	CanReset   bool   // a user's password reset link
	CanMFA     bool   // a user's two-step sign-in reset
	ResetLink  string // just made: the password reset link, shown this once
	Invitation string // just invited: the link, shown this once
	Saved      bool
	Done       string
	Error      string
	ErrorIn    string // "email", "roles", "app", "form", "remove", "reset", "mfa"
}

type appChoice struct {
	ID, Name string
	Selected bool
}

func (c *Console) inviteDeveloperPage(w http.ResponseWriter, r *http.Request, sess session) error {
	if !c.can(r.Context(), sess, "IAM:InviteDeveloper", "IAM:Developer:*") {
		return c.message(w, http.StatusForbidden, "Cannot invite developers", "You may not invite developers to this project.")
	}
	page := personPage{base: c.base(sess, "Invite a developer", "developers"), Kind: "developer", New: true}
	var err error
	if page.Roles, err = c.roleChoices(r, sess, nil); err != nil {
		return err
	}
	return c.render(w, http.StatusOK, "person", page)
}

func (c *Console) inviteDeveloper(w http.ResponseWriter, r *http.Request, sess session) error {
	f := r.PostForm
	email, name, roles := strings.TrimSpace(f.Get("email")), strings.TrimSpace(f.Get("name")), nonNil(f["role"])
	practitioner := map[string]any{"resourceType": "Practitioner"}
	if name != "" {
		practitioner["name"] = []map[string]string{{"text": name}}
	}
	var inv iam.Invitation
	err := c.call(r.Context(), sess, http.MethodPost, "/v1/developer/invite",
		map[string]any{"email": email, "practitioner": practitioner, "roles": roles}, &inv)
	page := personPage{base: c.base(sess, "Invite a developer", "developers"), Kind: "developer", New: true, Email: email, Name: name}
	return c.invited(w, r, sess, page, err, roles, inv.InvitationURL)
}

// invited answers an invite form: the link once, or the API's refusal
// next to the field it names.
func (c *Console) invited(w http.ResponseWriter, r *http.Request, sess session, page personPage, err error, roles []string, link string) error {
	var ae *apiError
	if err != nil && !errors.As(err, &ae) {
		return err
	}
	if ae == nil {
		page.Invitation = link
		page.Title = "Invitation sent"
		page.New = false
		return c.render(w, http.StatusOK, "invited", page)
	}
	page.Error, page.ErrorIn = sentence(ae.Message), messageField(ae.Message, "email", "phone", "role", "application", "profile")
	if page.Roles, err = c.roleChoices(r, sess, roles); err != nil {
		return err
	}
	if page.Kind == "user" {
		if page.Apps, err = c.appChoices(r, sess, page.App); err != nil {
			return err
		}
	}
	return c.render(w, ae.Status, "person", page)
}

// messageField names the form field an API message is about ("form" when
// none).
func messageField(msg string, fields ...string) string {
	m := strings.ToLower(msg)
	for _, f := range fields {
		if strings.Contains(m, f) {
			return f
		}
	}
	return "form"
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func (c *Console) loadDeveloper(r *http.Request, sess session, id string) (personPage, error) {
	var d iam.Developer
	if err := c.call(r.Context(), sess, http.MethodGet, "/v1/developer/"+url.PathEscape(id), nil, &d); err != nil {
		return personPage{}, err
	}
	page := personPage{base: c.base(sess, "Developer "+d.Email, "developers"), Kind: "developer", ID: d.ID, Email: d.Email,
		Name: d.Name, Profile: d.Profile, ProfileURL: profileURL(d.Profile),
		CanEdit:   c.can(r.Context(), sess, "IAM:UpdateDeveloper", "IAM:Developer:"+d.ID),
		CanRemove: c.can(r.Context(), sess, "IAM:RemoveDeveloper", "IAM:Developer:"+d.ID)}
	return page, c.personRoles(r, sess, &page, d.Roles)
}

// personRoles fills the page's roles: every role to choose from when the
// roles may be edited, else the holder's.
func (c *Console) personRoles(r *http.Request, sess session, page *personPage, held []iam.RoleStub) error {
	ids := make([]string, 0, len(held))
	for _, ro := range held {
		ids = append(ids, ro.ID)
	}
	if page.CanEdit {
		var err error
		if page.Roles, err = c.roleChoices(r, sess, ids); err != nil || page.Roles != nil {
			return err
		}
	}
	page.Roles = nil
	for _, ro := range held {
		page.Roles = append(page.Roles, roleChoice{ID: ro.ID, Name: ro.Name, Checked: true})
	}
	return nil
}

// profileURL is a profile reference's console page ("" for anything but
// Type/id).
func profileURL(ref string) string {
	typ, id, ok := strings.Cut(ref, "/")
	if !ok || typ == "" || id == "" || strings.Contains(id, "/") {
		return ""
	}
	return "/console/fhir/" + url.PathEscape(typ) + "/" + url.PathEscape(id)
}

func (c *Console) developerPage(w http.ResponseWriter, r *http.Request, sess session) error {
	page, err := c.loadDeveloper(r, sess, r.PathValue("id"))
	if err != nil {
		return err
	}
	page.Saved = r.URL.Query().Get("saved") == "1"
	return c.render(w, http.StatusOK, "person", page)
}

func (c *Console) developerRoles(w http.ResponseWriter, r *http.Request, sess session) error {
	id := r.PathValue("id")
	err := c.call(r.Context(), sess, http.MethodPatch, "/v1/developer/"+url.PathEscape(id), map[string]any{"roles": nonNil(r.PostForm["role"])}, nil)
	return c.personAnswer(w, r, sess, err, "roles", "/console/developers/"+url.PathEscape(id)+"?saved=1", func() (personPage, error) {
		return c.loadDeveloper(r, sess, id)
	})
}

func (c *Console) removeDeveloper(w http.ResponseWriter, r *http.Request, sess session) error {
	id := r.PathValue("id")
	err := c.call(r.Context(), sess, http.MethodDelete, "/v1/developer/"+url.PathEscape(id), nil, nil)
	return c.personAnswer(w, r, sess, err, "remove", "/console/developers?"+url.Values{"done": {"Developer removed."}}.Encode(), func() (personPage, error) {
		return c.loadDeveloper(r, sess, id)
	})
}

// personAnswer redirects after a write that worked, or shows the page
// again with the API's refusal next to the control (in).
func (c *Console) personAnswer(w http.ResponseWriter, r *http.Request, sess session, err error, in, done string, load func() (personPage, error)) error {
	var ae *apiError
	if err != nil && !errors.As(err, &ae) {
		return err
	}
	if ae == nil {
		return seeOther(w, r, done)
	}
	if ae.Status == http.StatusNotFound {
		return err
	}
	page, lerr := load()
	if lerr != nil {
		return lerr
	}
	page.Error, page.ErrorIn = sentence(ae.Message), in
	return c.render(w, ae.Status, "person", page)
}

// Users.

type usersPage struct {
	base
	Filter    string
	Users     []userRow
	Next      string
	CanInvite bool
	Done      string
}

type userRow struct {
	ID, Name, Profile string
	Email             *string
}

func (c *Console) usersList(w http.ResponseWriter, r *http.Request, sess session) error {
	page := usersPage{base: c.base(sess, "Users", "users"), Filter: strings.TrimSpace(r.URL.Query().Get("q")), Done: r.URL.Query().Get("done")}
	// The API filters by name or by email (a contains match each); a
	// filter with an @ is an email.
	q := url.Values{"sort": {"name"}, "limit": {"50"}}
	if page.Filter != "" {
		if strings.Contains(page.Filter, "@") {
			q.Set("email", page.Filter)
		} else {
			q.Set("name", page.Filter)
		}
	}
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		q.Set("cursor", cur)
	}
	var out struct {
		Data     []userRow `json:"data"`
		Metadata struct {
			NextCursor *string `json:"nextCursor"`
		} `json:"metadata"`
	}
	if err := c.call(r.Context(), sess, http.MethodGet, "/v1/user/v2/list?"+q.Encode(), nil, &out); err != nil {
		return err
	}
	page.Users = out.Data
	if n := out.Metadata.NextCursor; n != nil {
		next := url.Values{"cursor": {*n}}
		if page.Filter != "" {
			next.Set("q", page.Filter)
		}
		page.Next = "/console/users?" + next.Encode()
	}
	page.CanInvite = c.can(r.Context(), sess, "App:CreateUser", "App:User:*")
	return c.render(w, http.StatusOK, "users", page)
}

// appChoices lists the project's applications for the user invite form.
func (c *Console) appChoices(r *http.Request, sess session, selected string) ([]appChoice, error) {
	var apps []struct{ ID, Name string }
	if err := c.call(r.Context(), sess, http.MethodGet, "/v1/application", nil, &apps); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusForbidden {
			return nil, nil
		}
		return nil, err
	}
	out := make([]appChoice, 0, len(apps))
	for _, a := range apps {
		out = append(out, appChoice{ID: a.ID, Name: a.Name, Selected: a.ID == selected})
	}
	return out, nil
}

func (c *Console) inviteUserPage(w http.ResponseWriter, r *http.Request, sess session) error {
	if !c.can(r.Context(), sess, "App:CreateUser", "App:User:*") {
		return c.message(w, http.StatusForbidden, "Cannot invite users", "You may not invite users to this project.")
	}
	page := personPage{base: c.base(sess, "Invite a user", "users"), Kind: "user", New: true, ProfileAs: "Patient"}
	var err error
	if page.Roles, err = c.roleChoices(r, sess, nil); err != nil {
		return err
	}
	if page.Apps, err = c.appChoices(r, sess, r.URL.Query().Get("app")); err != nil {
		return err
	}
	return c.render(w, http.StatusOK, "person", page)
}

func (c *Console) inviteUser(w http.ResponseWriter, r *http.Request, sess session) error {
	f := r.PostForm
	page := personPage{base: c.base(sess, "Invite a user", "users"), Kind: "user", New: true, Email: strings.TrimSpace(f.Get("email")),
		Phone: strings.TrimSpace(f.Get("phone")), Name: strings.TrimSpace(f.Get("name")), ProfileAs: f.Get("profileAs"), App: f.Get("app"),
		Profile: strings.TrimSpace(f.Get("profile"))}
	if page.ProfileAs != "Practitioner" {
		page.ProfileAs = "Patient"
	}
	roles := nonNil(f["role"])
	resource := map[string]any{"resourceType": page.ProfileAs}
	if page.Name != "" {
		resource["name"] = []map[string]string{{"text": page.Name}}
	}
	body := map[string]any{"applicationId": page.App, "roles": roles}
	if page.Profile != "" {
		body["profile"] = page.Profile
	} else {
		body["resource"] = resource
	}
	if page.Name != "" {
		body["username"] = page.Name
	}
	if page.Email != "" {
		body["email"] = page.Email
	}
	if page.Phone != "" {
		body["phoneNumber"] = page.Phone
	}
	var inv iam.UserInvitation
	err := c.call(r.Context(), sess, http.MethodPost, "/v1/user/invite", body, &inv)
	return c.invited(w, r, sess, page, err, roles, inv.InvitationURL)
}

func (c *Console) loadUser(r *http.Request, sess session, id string) (personPage, error) {
	var u iam.User
	if err := c.call(r.Context(), sess, http.MethodGet, "/v1/user/"+url.PathEscape(id), nil, &u); err != nil {
		return personPage{}, err
	}
	page := personPage{base: c.base(sess, "User "+u.Name, "users"), Kind: "user", ID: u.ID, Name: u.Name,
		Method: u.AuthenticationMethod, Profile: u.Profile, ProfileURL: profileURL(u.Profile),
		CanEdit:   c.can(r.Context(), sess, "App:UpdateUser", "App:User:"+u.ID),
		CanRemove: c.can(r.Context(), sess, "App:DeleteUser", "App:User:"+u.ID),
		CanReset:  c.can(r.Context(), sess, "App:GetUserPasswordResetLink", "App:User:"+u.ID),
		CanMFA:    c.can(r.Context(), sess, "App:ResetUserMFA", "App:User:"+u.ID)}
	if u.Email != nil {
		page.Email = *u.Email
	}
	if u.PhoneNumber != nil {
		page.Phone = *u.PhoneNumber
	}
	return page, c.personRoles(r, sess, &page, u.Roles)
}

func (c *Console) userPage(w http.ResponseWriter, r *http.Request, sess session) error {
	page, err := c.loadUser(r, sess, r.PathValue("id"))
	if err != nil {
		return err
	}
	page.Saved = r.URL.Query().Get("saved") == "1"
	page.Done = r.URL.Query().Get("done")
	return c.render(w, http.StatusOK, "person", page)
}

// userResetLink makes a password reset link for the user (Ward sends no
// email): shown once, on the answer to the form.
func (c *Console) userResetLink(w http.ResponseWriter, r *http.Request, sess session) error {
	id := r.PathValue("id")
	var out struct {
		Link string `json:"link"`
	}
	err := c.call(r.Context(), sess, http.MethodPost, "/v1/user/"+url.PathEscape(id)+"/reset-password-link", map[string]any{}, &out)
	var ae *apiError
	if err != nil && (!errors.As(err, &ae) || ae.Status == http.StatusNotFound) {
		return err
	}
	page, lerr := c.loadUser(r, sess, id)
	if lerr != nil {
		return lerr
	}
	if ae != nil {
		page.Error, page.ErrorIn = sentence(ae.Message), "reset"
		return c.render(w, ae.Status, "person", page)
	}
	page.ResetLink = out.Link
	return c.render(w, http.StatusOK, "person", page)
}

// userResetMFA removes the user's two-step sign-in enrolment.
func (c *Console) userResetMFA(w http.ResponseWriter, r *http.Request, sess session) error {
	id := r.PathValue("id")
	err := c.call(r.Context(), sess, http.MethodPost, "/v1/user/"+url.PathEscape(id)+"/reset-mfa", map[string]any{}, nil)
	return c.personAnswer(w, r, sess, err, "mfa", "/console/users/"+url.PathEscape(id)+"?"+url.Values{"done": {"Two-step sign-in reset: the user signs in with the password alone and may enrol again."}}.Encode(),
		func() (personPage, error) { return c.loadUser(r, sess, id) })
}

func (c *Console) userRoles(w http.ResponseWriter, r *http.Request, sess session) error {
	id := r.PathValue("id")
	err := c.call(r.Context(), sess, http.MethodPatch, "/v1/user/"+url.PathEscape(id), map[string]any{"roles": nonNil(r.PostForm["role"])}, nil)
	return c.personAnswer(w, r, sess, err, "roles", "/console/users/"+url.PathEscape(id)+"?saved=1", func() (personPage, error) {
		return c.loadUser(r, sess, id)
	})
}

func (c *Console) removeUser(w http.ResponseWriter, r *http.Request, sess session) error {
	id := r.PathValue("id")
	err := c.call(r.Context(), sess, http.MethodDelete, "/v1/user/"+url.PathEscape(id), nil, nil)
	return c.personAnswer(w, r, sess, err, "remove", "/console/users?"+url.Values{"done": {"User removed."}}.Encode(), func() (personPage, error) {
		return c.loadUser(r, sess, id)
	})
}
