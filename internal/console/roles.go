package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
)

// IAM roles: the list with a filter, create and edit with a policy editor
// that shows the API's own validation message (and the rule it names) next
// to the field, and an explain box.

type rolesPage struct {
	base
	Filter     string
	Roles      []iam.Role // this page's
	Total      int        // all roles
	Matching   int        // roles the filter matches
	From       int        // 1-based index of this page's first role
	Prev, Next string     // the other pages' URLs
	CanCreate  bool
}

// rolesPerPage is how many roles a page of the list shows.
const rolesPerPage = 50

func (c *Console) rolesPage(w http.ResponseWriter, r *http.Request, sess session) error {
	ctx := r.Context()
	var roles []iam.Role
	if err := c.call(ctx, sess, http.MethodGet, "/v1/iam/role", nil, &roles); err != nil {
		return err
	}
	page := rolesPage{base: c.base(sess, "Roles", "roles"), Filter: strings.TrimSpace(r.URL.Query().Get("q")), Total: len(roles)}
	f := strings.ToLower(page.Filter)
	var match []iam.Role
	for _, ro := range roles {
		if f == "" || strings.Contains(strings.ToLower(ro.Name), f) || strings.Contains(strings.ToLower(ro.Description), f) {
			match = append(match, ro)
		}
	}
	page.Matching = len(match)
	n, _ := strconv.Atoi(r.URL.Query().Get("page"))
	n = max(1, min(n, (len(match)+rolesPerPage-1)/rolesPerPage))
	start := (n - 1) * rolesPerPage
	page.Roles = match[start:min(start+rolesPerPage, len(match))]
	page.From = start + 1
	link := func(p int) string {
		q := url.Values{"page": {strconv.Itoa(p)}}
		if page.Filter != "" {
			q.Set("q", page.Filter)
		}
		return "/console/roles?" + q.Encode()
	}
	if n > 1 {
		page.Prev = link(n - 1)
	}
	if start+rolesPerPage < len(match) {
		page.Next = link(n + 1)
	}
	page.CanCreate = c.can(ctx, sess, "IAM:CreateRole", "IAM:Role:*")
	return c.render(w, http.StatusOK, "roles", page)
}

// rolePage is the create/edit form and, for a saved role, the explain box.
type rolePage struct {
	base
	New                bool
	ID, Name, Desc     string
	Policy             string
	CanEdit            bool
	Saved              bool
	Error, ErrorIn     string // ErrorIn: "name", "policy" or "form"
	Rule               int    // the rule the policy error is about, 1-based; 0: none
	Action, Resource   string // the explain box
	Explained          *explanation
	ExplainError       string
	DecidingRuleSource string
}

const starterPolicy = `{
  "rule": [
    {
      "action": ["FHIR:Read", "FHIR:Search"],
      "resource": ["FHIR:Patient"],
      "effect": "Allow"
    }
  ]
}`

func (c *Console) newRolePage(w http.ResponseWriter, r *http.Request, sess session) error {
	page := rolePage{base: c.base(sess, "New role", "roles"), New: true, Policy: starterPolicy,
		CanEdit: c.can(r.Context(), sess, "IAM:CreateRole", "IAM:Role:*")}
	if !page.CanEdit {
		return c.message(w, http.StatusForbidden, "Cannot create roles", "You may not create roles in this project.")
	}
	return c.render(w, http.StatusOK, "role", page)
}

func (c *Console) loadRole(r *http.Request, sess session, id string) (rolePage, error) {
	var ro iam.Role
	if err := c.call(r.Context(), sess, http.MethodGet, "/v1/iam/role/"+url.PathEscape(id), nil, &ro); err != nil {
		return rolePage{}, err
	}
	return rolePage{base: c.base(sess, "Role "+ro.Name, "roles"), ID: ro.ID, Name: ro.Name, Desc: ro.Description,
		Policy: indent(ro.AccessPolicy), CanEdit: c.can(r.Context(), sess, "IAM:UpdateRole", "IAM:Role:"+ro.ID)}, nil
}

func (c *Console) rolePage(w http.ResponseWriter, r *http.Request, sess session) error {
	page, err := c.loadRole(r, sess, r.PathValue("id"))
	if err != nil {
		return err
	}
	page.Saved = r.URL.Query().Get("saved") == "1"
	return c.render(w, http.StatusOK, "role", page)
}

// roleInput reads the form. A policy that is not JSON at all cannot be
// sent as one: it gets the message the API's own parser gives.
func roleInput(f url.Values) (map[string]any, string, error) {
	text := f.Get("policy")
	in := map[string]any{"name": f.Get("name"), "description": f.Get("description")}
	if !json.Valid([]byte(text)) {
		return nil, text, policyError(text)
	}
	in["accessPolicy"] = json.RawMessage(text)
	return in, text, nil
}

func (c *Console) createRole(w http.ResponseWriter, r *http.Request, sess session) error {
	page := rolePage{base: c.base(sess, "New role", "roles"), New: true, CanEdit: true,
		Name: r.PostForm.Get("name"), Desc: r.PostForm.Get("description")}
	in, text, err := roleInput(r.PostForm)
	page.Policy = text
	var ro iam.Role
	if err == nil {
		err = c.call(r.Context(), sess, http.MethodPost, "/v1/iam/role", in, &ro)
	}
	if failed(&page, err) {
		return c.render(w, page.status(err), "role", page)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/console/roles/"+url.PathEscape(ro.ID)+"?saved=1", http.StatusSeeOther)
	return nil
}

func (c *Console) updateRole(w http.ResponseWriter, r *http.Request, sess session) error {
	id := r.PathValue("id")
	page := rolePage{base: c.base(sess, "Role", "roles"), ID: id, CanEdit: true,
		Name: r.PostForm.Get("name"), Desc: r.PostForm.Get("description")}
	in, text, err := roleInput(r.PostForm)
	page.Policy = text
	if err == nil {
		err = c.call(r.Context(), sess, http.MethodPatch, "/v1/iam/role/"+url.PathEscape(id), in, nil)
	}
	if failed(&page, err) {
		return c.render(w, page.status(err), "role", page)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/console/roles/"+url.PathEscape(id)+"?saved=1", http.StatusSeeOther)
	return nil
}

// explainRole answers the explain box: the saved role's decision on one
// action and resource, and the rule that decided.
func (c *Console) explainRole(w http.ResponseWriter, r *http.Request, sess session) error {
	page, err := c.loadRole(r, sess, r.PathValue("id"))
	if err != nil {
		return err
	}
	page.Action, page.Resource = strings.TrimSpace(r.PostForm.Get("action")), strings.TrimSpace(r.PostForm.Get("resource"))
	in := map[string]any{"action": page.Action, "resource": page.Resource,
		"principal": map[string]any{"roleIds": []string{page.ID}}}
	var ex explanation
	err = c.call(r.Context(), sess, http.MethodPost, "/v1/iam/explain", in, &ex)
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		page.ExplainError = sentence(ae.Message)
		return c.render(w, ae.Status, "role", page)
	case err != nil:
		return err
	}
	page.Explained = &ex
	if d := ex.DecidingRule; d != nil {
		page.DecidingRuleSource = "rule " + strconv.Itoa(d.Index+1)
		if d.Source != nil && d.Source.Name != "" {
			page.DecidingRuleSource += " of role " + d.Source.Name
		}
	}
	return c.render(w, http.StatusOK, "role", page)
}

// ruleIndex finds the rule an API policy message names ("rule[1]...").
var ruleIndex = regexp.MustCompile(`\brule\[(\d+)\]`)

// failed puts an API refusal next to its field; false for other errors.
func failed(page *rolePage, err error) bool {
	var ae *apiError
	if !errors.As(err, &ae) {
		return false
	}
	page.Error, page.ErrorIn = sentence(ae.Message), "form"
	msg := strings.ToLower(ae.Message)
	switch {
	case strings.HasPrefix(msg, "accesspolicy"):
		page.ErrorIn = "policy"
		if m := ruleIndex.FindStringSubmatch(ae.Message); m != nil {
			if i, err := strconv.Atoi(m[1]); err == nil {
				page.Rule = i + 1
			}
		}
	case strings.Contains(msg, "name"):
		page.ErrorIn = "name"
	}
	return true
}

func (p rolePage) status(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return http.StatusInternalServerError
}

func indent(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

// policyError is the API's refusal of a policy text (the same validation
// iam runs on create); nil when it is valid.
func policyError(text string) error {
	if _, err := iam.ValidatePolicy(json.RawMessage(text)); err != nil {
		status, msg := fault.Public(err)
		return &apiError{Status: status, Message: msg}
	}
	return nil
}

// validatePolicy answers the editor's script: the API's message and the
// rule it names, as JSON. It reads nothing of the project.
func (c *Console) validatePolicy(w http.ResponseWriter, r *http.Request, sess session) error {
	text := r.PostForm.Get("policy")
	out := map[string]any{"ok": true}
	if ws, err := iam.ValidatePolicy(json.RawMessage(text)); err != nil {
		var page rolePage
		failed(&page, policyError(text))
		out = map[string]any{"ok": false, "message": page.Error, "rule": page.Rule}
	} else if len(ws) > 0 {
		out["warnings"] = ws
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, err = w.Write(b)
	return err
}
