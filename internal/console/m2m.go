package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/wardhealth/ward/internal/iam"
)

// M2M clients: a list with a name filter and pages, create (with roles),
// and rotate the secret, which is shown once, on the answer to the rotate
// form (never stored by the console, never on a page a GET can fetch).

type m2mListPage struct {
	base
	Filter    string
	Clients   []m2mItem
	Next      string // the next page's URL, "" on the last page
	CanCreate bool
}

type m2mItem struct{ ID, Name, Description string }

func (c *Console) m2mList(w http.ResponseWriter, r *http.Request, sess session) error {
	ctx := r.Context()
	page := m2mListPage{base: c.base(sess, "M2M clients", "m2m"), Filter: strings.TrimSpace(r.URL.Query().Get("q"))}
	q := url.Values{"sort": {"name"}, "limit": {"20"}}
	if page.Filter != "" {
		q.Set("name", page.Filter)
	}
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		q.Set("cursor", cur)
	}
	var out struct {
		Data     []m2mItem `json:"data"`
		Metadata struct {
			NextCursor *string `json:"nextCursor"`
		} `json:"metadata"`
	}
	if err := c.call(ctx, sess, http.MethodGet, "/v1/m2m/v2/list?"+q.Encode(), nil, &out); err != nil {
		return err
	}
	page.Clients = out.Data
	if n := out.Metadata.NextCursor; n != nil {
		next := url.Values{"cursor": {*n}}
		if page.Filter != "" {
			next.Set("q", page.Filter)
		}
		page.Next = "/console/m2m?" + next.Encode()
	}
	page.CanCreate = c.can(ctx, sess, "IAM:CreateM2MClient", "IAM:M2MClient:*")
	return c.render(w, http.StatusOK, "m2m-list", page)
}

type m2mPage struct {
	base
	New            bool
	Client         iam.M2M
	Roles          []roleChoice // the form's choices (new) or the client's roles
	CanRotate      bool
	Secret         string // just rotated: shown this once
	Created        bool
	Error, ErrorIn string // ErrorIn: "name", "form" or "rotate"
}

type roleChoice struct {
	ID, Name string
	Checked  bool
}

func (c *Console) newM2MPage(w http.ResponseWriter, r *http.Request, sess session) error {
	if !c.can(r.Context(), sess, "IAM:CreateM2MClient", "IAM:M2MClient:*") {
		return c.message(w, http.StatusForbidden, "Cannot create M2M clients", "You may not create M2M clients in this project.")
	}
	page := m2mPage{base: c.base(sess, "New M2M client", "m2m"), New: true}
	var err error
	page.Roles, err = c.roleChoices(r, sess, nil)
	if err != nil {
		return err
	}
	return c.render(w, http.StatusOK, "m2m", page)
}

// roleChoices lists the project's roles, checking those in checked. A
// developer who may not list roles gets no choices (and no error).
func (c *Console) roleChoices(r *http.Request, sess session, checked []string) ([]roleChoice, error) {
	var roles []iam.Role
	err := c.call(r.Context(), sess, http.MethodGet, "/v1/iam/role", nil, &roles)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusForbidden {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]roleChoice, 0, len(roles))
	for _, ro := range roles {
		out = append(out, roleChoice{ID: ro.ID, Name: ro.Name, Checked: contains(checked, ro.ID)})
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (c *Console) createM2M(w http.ResponseWriter, r *http.Request, sess session) error {
	f := r.PostForm
	name, desc, roles := f.Get("name"), f.Get("description"), f["role"]
	if roles == nil {
		roles = []string{}
	}
	var m iam.M2M
	err := c.call(r.Context(), sess, http.MethodPost, "/v1/m2m", map[string]any{"name": name, "description": desc, "roles": roles}, &m)
	var ae *apiError
	if errors.As(err, &ae) {
		page := m2mPage{base: c.base(sess, "New M2M client", "m2m"), New: true, Client: iam.M2M{Name: name, Description: desc},
			Error: sentence(ae.Message), ErrorIn: "form"}
		if strings.Contains(strings.ToLower(ae.Message), "name") {
			page.ErrorIn = "name"
		}
		if page.Roles, err = c.roleChoices(r, sess, roles); err != nil {
			return err
		}
		return c.render(w, ae.Status, "m2m", page)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/console/m2m/"+url.PathEscape(m.ID)+"?created=1", http.StatusSeeOther)
	return nil
}

func (c *Console) loadM2M(r *http.Request, sess session, id string) (m2mPage, error) {
	var m iam.M2M
	if err := c.call(r.Context(), sess, http.MethodGet, "/v1/m2m/"+url.PathEscape(id), nil, &m); err != nil {
		return m2mPage{}, err
	}
	page := m2mPage{base: c.base(sess, "M2M client "+m.Name, "m2m"), Client: m,
		CanRotate: c.can(r.Context(), sess, "IAM:RotateM2MClientSecret", "IAM:M2MClient:"+m.ID)}
	for _, ro := range m.Roles {
		page.Roles = append(page.Roles, roleChoice{ID: ro.ID, Name: ro.Name, Checked: true})
	}
	return page, nil
}

func (c *Console) m2mPage(w http.ResponseWriter, r *http.Request, sess session) error {
	page, err := c.loadM2M(r, sess, r.PathValue("id"))
	if err != nil {
		return err
	}
	page.Created = r.URL.Query().Get("created") == "1"
	return c.render(w, http.StatusOK, "m2m", page)
}

func (c *Console) rotateM2M(w http.ResponseWriter, r *http.Request, sess session) error {
	id := r.PathValue("id")
	var out struct {
		Secret string `json:"secret"`
	}
	err := c.call(r.Context(), sess, http.MethodPost, "/v1/m2m/"+url.PathEscape(id)+"/rotate-secret", nil, &out)
	var ae *apiError
	if err != nil && !errors.As(err, &ae) {
		return err
	}
	page, lerr := c.loadM2M(r, sess, id)
	if lerr != nil {
		return lerr
	}
	if ae != nil {
		page.Error, page.ErrorIn = sentence(ae.Message), "rotate"
		return c.render(w, ae.Status, "m2m", page)
	}
	page.Secret = out.Secret
	return c.render(w, http.StatusOK, "m2m", page)
}
