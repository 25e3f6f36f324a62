package console

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/wardhealth/ward/internal/iam"
)

// The project page: its settings (edited when the developer may), and a
// switcher among the developer's projects.

type projectPage struct {
	base
	Settings iam.Project
	Projects []iam.ProjectStub
	Roles    []roleChoice // the default patient role's choices; nil: not listable
	// Authorizers are the authorizer zambda's choices (the project's
	// zambdas); nil: not listable, or zambdas not enabled.
	Authorizers []roleChoice
	CanEdit     bool
	Saved       bool
	// Error is the API's message about ErrorIn ("name" or "form").
	Error, ErrorIn string
}

func (c *Console) projectData(r *http.Request, sess session) (projectPage, error) {
	ctx := r.Context()
	page := projectPage{base: c.base(sess, "Project", "project")}
	projects, err := c.projects(ctx, sess.DeveloperID)
	if err != nil {
		return page, err
	}
	page.Projects = projects
	if err := c.call(ctx, sess, http.MethodGet, "/v1/project", nil, &page.Settings); err != nil {
		return page, err
	}
	page.Project = page.Settings.Name
	page.CanEdit = c.can(ctx, sess, "Project:UpdateProjectInfo", "Project:Settings")
	if page.CanEdit {
		var current []string
		if r := page.Settings.DefaultPatientRole; r != nil {
			current = []string{r.ID}
		}
		if page.Roles, err = c.roleChoices(r, sess, current); err != nil {
			return page, err
		}
		if page.Authorizers, err = c.authorizerChoices(r, sess, page.Settings.AuthorizerZambdaID); err != nil {
			return page, err
		}
	}
	return page, nil
}

// authorizerChoices are the project's zambdas, for the authorizer
// function (seed 001): the one whose id is current is checked. A developer
// who may not list zambdas, or a server without them, gets none (the
// current id is still shown).
func (c *Console) authorizerChoices(r *http.Request, sess session, current string) ([]roleChoice, error) {
	var fns []zambdaFn
	err := c.call(r.Context(), sess, http.MethodGet, "/v1/zambda", nil, &fns)
	var ae *apiError
	if errors.As(err, &ae) && (ae.Status == http.StatusForbidden || ae.Status == http.StatusNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]roleChoice, 0, len(fns))
	for _, z := range fns {
		out = append(out, roleChoice{ID: z.ID, Name: z.Name, Checked: z.ID == current})
	}
	return out, nil
}

func (c *Console) projectPage(w http.ResponseWriter, r *http.Request, sess session) error {
	page, err := c.projectData(r, sess)
	if err != nil {
		return err
	}
	page.Saved = r.URL.Query().Get("saved") == "1"
	return c.render(w, http.StatusOK, "project", page)
}

func (c *Console) updateProject(w http.ResponseWriter, r *http.Request, sess session) error {
	f := r.PostForm
	name, desc, signup := f.Get("name"), f.Get("description"), f.Get("signupEnabled") == "on"
	in := map[string]any{"name": name, "description": desc, "signupEnabled": signup}
	patientRole, setRole := f.Get("defaultPatientRoleId"), f.Has("defaultPatientRoleId")
	if setRole {
		in["defaultPatientRoleId"] = nil // none
		if patientRole != "" {
			in["defaultPatientRoleId"] = patientRole
		}
	}
	authorizer, setAuthorizer := f.Get("authorizerZambdaId"), f.Has("authorizerZambdaId")
	if setAuthorizer {
		in["authorizerZambdaId"] = nil // none
		if authorizer != "" {
			in["authorizerZambdaId"] = authorizer
		}
	}
	err := c.call(r.Context(), sess, http.MethodPatch, "/v1/project", in, nil)
	var ae *apiError
	if errors.As(err, &ae) {
		page, perr := c.projectData(r, sess)
		if perr != nil {
			return perr
		}
		// Show what was typed, with the API's message where it belongs.
		page.Settings.Name, page.Settings.Description, page.Settings.SignupEnabled = name, desc, signup
		if setRole {
			for i := range page.Roles {
				page.Roles[i].Checked = page.Roles[i].ID == patientRole
			}
		}
		if setAuthorizer {
			for i := range page.Authorizers {
				page.Authorizers[i].Checked = page.Authorizers[i].ID == authorizer
			}
		}
		page.Error, page.ErrorIn = sentence(ae.Message), "form"
		switch msg := strings.ToLower(ae.Message); {
		case strings.Contains(msg, "defaultpatientrole"):
			page.ErrorIn = "patientRole"
		case strings.Contains(msg, "authorizerzambda"):
			page.ErrorIn = "authorizer"
		case strings.Contains(msg, "name"):
			page.ErrorIn = "name"
		}
		return c.render(w, ae.Status, "project", page)
	}
	if err != nil {
		return err
	}
	if err := c.sessions.setProject(r.Context(), sess.key, sess.Project, name); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/console/project?saved=1", http.StatusSeeOther)
	return nil
}

// switchProject changes the session's project to another the developer
// belongs to; any other id is refused (the API would refuse it anyway).
func (c *Console) switchProject(w http.ResponseWriter, r *http.Request, sess session) error {
	id := r.PostForm.Get("project")
	projects, err := c.projects(r.Context(), sess.DeveloperID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(projects, func(p iam.ProjectStub) bool { return p.ID == id })
	if i < 0 {
		return c.message(w, http.StatusForbidden, "Cannot switch", "You are not a member of that project.")
	}
	if err := c.sessions.setProject(r.Context(), sess.key, id, projects[i].Name); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/console/project", http.StatusSeeOther)
	return nil
}
