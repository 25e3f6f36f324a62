package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/wardhealth/ward/internal/fhir/schema"
)

// FHIR pages: the resource types, a search box taking Ward's own search
// syntax (the query string of GET [base]/[type]?...) with a paged results
// table, a resource's JSON (escaped by html/template), edit and create
// checked by $validate first (its issues shown next to the editor), and
// the version history with a line diff between two versions.

// fhirID is a FHIR id (R4 id datatype): anything else is no resource.
var fhirID = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// issue is one OperationOutcome issue as the page shows it.
type issue struct {
	Severity, Where, Text string
}

// outcome reads an OperationOutcome's issues.
func outcome(b []byte) []issue {
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct {
			Severity    string `json:"severity"`
			Diagnostics string `json:"diagnostics"`
			Details     *struct {
				Text string `json:"text"`
			} `json:"details"`
			Expression []string `json:"expression"`
		} `json:"issue"`
	}
	if json.Unmarshal(b, &oo) != nil || oo.ResourceType != "OperationOutcome" {
		return nil
	}
	out := make([]issue, 0, len(oo.Issue))
	for _, is := range oo.Issue {
		t := is.Diagnostics
		if is.Details != nil && is.Details.Text != "" {
			t = is.Details.Text
		}
		out = append(out, issue{Severity: is.Severity, Where: strings.Join(is.Expression, ", "), Text: t})
	}
	return out
}

// fhirErr is a refused FHIR call: the API's status and its outcome.
func fhirErr(status int, b []byte) *apiError {
	var msgs []string
	for _, is := range outcome(b) {
		if is.Where != "" {
			msgs = append(msgs, is.Where+": "+is.Text)
		} else {
			msgs = append(msgs, is.Text)
		}
	}
	if len(msgs) == 0 {
		msgs = []string{http.StatusText(status)}
	}
	return &apiError{Status: status, Message: strings.Join(msgs, "; ")}
}

// fhir sends one FHIR request as the session's developer; a status of 300
// or more is returned with its body, not as an error, so callers can show
// its issues (4xx) or turn it into a page (fhirErr).
func (c *Console) fhir(ctx context.Context, sess session, method, path string, body []byte) (int, []byte, error) {
	return c.fhirWith(ctx, sess, method, path, body, nil)
}

// fhirWith is fhir with extra request headers (If-Match).
func (c *Console) fhirWith(ctx context.Context, sess session, method, path string, body []byte, extra http.Header) (int, []byte, error) {
	h := http.Header{"Authorization": {"Bearer " + sess.AccessToken}, "X-Oystehr-Project-Id": {sess.Project},
		"Accept": {"application/fhir+json"}}
	for k, v := range extra {
		h[k] = v
	}
	var rd io.Reader
	if body != nil {
		h.Set("Content-Type", "application/fhir+json")
		rd = bytes.NewReader(body)
	}
	status, b, err := c.do(ctx, method, c.cfg.FHIRPath+path, h, rd)
	if err == nil && status == http.StatusUnauthorized {
		err = fhirErr(status, b)
	}
	return status, b, err
}

// fhirGet reads JSON from the FHIR API, any refusal an *apiError.
func (c *Console) fhirGet(ctx context.Context, sess session, path string, out any) error {
	status, b, err := c.fhir(ctx, sess, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if status >= 300 {
		return fhirErr(status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("console: decode FHIR %s: %w", path, err)
	}
	return nil
}

// fhirTarget checks the page's type (and id): a page for anything else is
// a 404 before the API is asked.
func (c *Console) fhirTarget(w http.ResponseWriter, r *http.Request, withID bool) (typ, id string, ok bool) {
	typ, id = r.PathValue("type"), r.PathValue("id")
	switch {
	case c.cfg.FHIRPath == "":
		_ = c.message(w, http.StatusNotFound, "Not found", "This Ward has no FHIR API.")
	case !schema.IsResourceType(typ):
		_ = c.message(w, http.StatusNotFound, "Not found", "There is no FHIR resource type by that name.")
	case withID && !fhirID.MatchString(id):
		_ = c.message(w, http.StatusNotFound, "Not found", "That is not a FHIR resource id.")
	default:
		return typ, id, true
	}
	return "", "", false
}

type fhirTypesPage struct {
	base
	Filter string
	Types  []string
}

func (c *Console) fhirTypes(w http.ResponseWriter, r *http.Request, sess session) error {
	if c.cfg.FHIRPath == "" {
		return c.message(w, http.StatusNotFound, "Not found", "This Ward has no FHIR API.")
	}
	page := fhirTypesPage{base: c.base(sess, "FHIR resources", "fhir"), Filter: strings.TrimSpace(r.URL.Query().Get("q"))}
	for _, t := range schema.ResourceTypes() {
		if page.Filter == "" || strings.Contains(strings.ToLower(t), strings.ToLower(page.Filter)) {
			page.Types = append(page.Types, t)
		}
	}
	return c.render(w, http.StatusOK, "fhir-types", page)
}

type fhirSearchPage struct {
	base
	Type, Query string
	Total       *int
	Rows        []fhirRow
	Next, Prev  string
	CanCreate   bool
	Error       string
}

type fhirRow struct {
	ID, Version, Updated, Summary string
}

// searchQuery is the API query of a console search: the box's text (a
// leading "?" allowed), with a page size unless it names one.
func searchQuery(q string) (url.Values, error) {
	v, err := url.ParseQuery(strings.TrimPrefix(strings.TrimSpace(q), "?"))
	if err != nil {
		return nil, err
	}
	if v.Get("_count") == "" {
		v.Set("_count", strconv.Itoa(pageSize))
	}
	return v, nil
}

func (c *Console) fhirSearch(w http.ResponseWriter, r *http.Request, sess session) error {
	typ, _, ok := c.fhirTarget(w, r, false)
	if !ok {
		return nil
	}
	ctx := r.Context()
	page := fhirSearchPage{base: c.base(sess, typ, "fhir"), Type: typ, Query: r.URL.Query().Get("q"),
		CanCreate: c.can(ctx, sess, "FHIR:Create", "FHIR:"+typ+":*")}
	q, err := searchQuery(page.Query)
	if err != nil {
		page.Error = "The search is not a query string: " + err.Error() + "."
		return c.render(w, http.StatusBadRequest, "fhir-search", page)
	}
	status, b, err := c.fhir(ctx, sess, http.MethodGet, "/"+typ+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	if status == http.StatusBadRequest {
		// The search syntax's own message, next to the box.
		page.Error = sentence(fhirErr(status, b).Message)
		return c.render(w, status, "fhir-search", page)
	}
	if status >= 300 {
		return fhirErr(status, b)
	}
	var bundle struct {
		Total *int `json:"total"`
		Link  []struct {
			Relation string `json:"relation"`
			URL      string `json:"url"`
		} `json:"link"`
		Entry []struct {
			Resource map[string]any `json:"resource"`
			Search   struct {
				Mode string `json:"mode"`
			} `json:"search"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(b, &bundle); err != nil {
		return fmt.Errorf("console: decode search bundle: %w", err)
	}
	page.Total = bundle.Total
	for _, e := range bundle.Entry {
		if e.Search.Mode == "include" || e.Resource == nil {
			continue
		}
		page.Rows = append(page.Rows, rowOf(e.Resource))
	}
	for _, l := range bundle.Link {
		u, err := url.Parse(l.URL)
		if err != nil {
			continue
		}
		link := "/console/fhir/" + typ + "?" + url.Values{"q": {u.RawQuery}}.Encode()
		switch l.Relation {
		case "next":
			page.Next = link
		case "previous", "prev":
			page.Prev = link
		}
	}
	return c.render(w, http.StatusOK, "fhir-search", page)
}

// rowOf is a resource's line in a results table.
func rowOf(res map[string]any) fhirRow {
	row := fhirRow{}
	row.ID, _ = res["id"].(string)
	if m, ok := res["meta"].(map[string]any); ok {
		row.Version, _ = m["versionId"].(string)
		row.Updated, _ = m["lastUpdated"].(string)
	}
	row.Summary = summary(res)
	return row
}

// summary is a few words naming a resource: its name, code or status.
func summary(res map[string]any) string {
	if names, ok := res["name"].([]any); ok && len(names) > 0 {
		if n, ok := names[0].(map[string]any); ok {
			if t, ok := n["text"].(string); ok {
				return t
			}
			var parts []string
			if g, ok := n["given"].([]any); ok {
				for _, x := range g {
					if s, ok := x.(string); ok {
						parts = append(parts, s)
					}
				}
			}
			if f, ok := n["family"].(string); ok {
				parts = append(parts, f)
			}
			return strings.Join(parts, " ")
		}
	}
	if n, ok := res["name"].(string); ok {
		return n
	}
	if cc, ok := res["code"].(map[string]any); ok {
		if t, ok := cc["text"].(string); ok {
			return t
		}
	}
	if s, ok := res["status"].(string); ok {
		return s
	}
	return ""
}

type fhirResourcePage struct {
	base
	Type, ID string
	New      bool
	JSON     string // the stored resource, indented
	Draft    string // the editor's text
	Version  string
	CanEdit  bool
	Saved    bool
	Issues   []issue
	Error    string
}

// canonical writes a resource with sorted keys, two-space indented (the
// same text for the same content: diffs show only changes).
func canonical(b []byte) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // numbers keep their text (no float rounding)
	if dec.Decode(&v) != nil {
		return string(b)
	}
	// The text as stored ("<" stays "<"): html/template escapes it.
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if enc.Encode(v) != nil {
		return string(b)
	}
	return strings.TrimSuffix(out.String(), "\n")
}

func (c *Console) fhirResource(w http.ResponseWriter, r *http.Request, sess session) error {
	typ, id, ok := c.fhirTarget(w, r, true)
	if !ok {
		return nil
	}
	page, err := c.loadResource(r, sess, typ, id)
	if err != nil {
		return err
	}
	page.Saved = r.URL.Query().Get("saved") == "1"
	return c.render(w, http.StatusOK, "fhir-resource", page)
}

func (c *Console) loadResource(r *http.Request, sess session, typ, id string) (fhirResourcePage, error) {
	ctx := r.Context()
	status, b, err := c.fhir(ctx, sess, http.MethodGet, "/"+typ+"/"+id, nil)
	if err != nil {
		return fhirResourcePage{}, err
	}
	if status >= 300 {
		return fhirResourcePage{}, fhirErr(status, b)
	}
	var res map[string]any
	if err := json.Unmarshal(b, &res); err != nil {
		return fhirResourcePage{}, fmt.Errorf("console: decode %s/%s: %w", typ, id, err)
	}
	page := fhirResourcePage{base: c.base(sess, typ+"/"+id, "fhir"), Type: typ, ID: id, JSON: canonical(b),
		Version: rowOf(res).Version, CanEdit: c.can(ctx, sess, "FHIR:Update", "FHIR:"+typ+":"+id)}
	page.Draft = page.JSON
	return page, nil
}

// hasErrors reports whether issues hold an error (warnings do not stop a
// save).
func hasErrors(issues []issue) bool {
	for _, is := range issues {
		if is.Severity == "error" || is.Severity == "fatal" {
			return true
		}
	}
	return false
}

// validate asks $validate about draft; nil issues and nil error: valid.
// A refusal of $validate itself (403) is an error, as it would be for the
// write.
func (c *Console) validate(ctx context.Context, sess session, typ, id, draft string) ([]issue, error) {
	path, mode := "/"+typ+"/$validate", "create"
	if id != "" {
		path, mode = "/"+typ+"/"+id+"/$validate", "update"
	}
	status, b, err := c.fhir(ctx, sess, http.MethodPost, path+"?mode="+mode, []byte(draft))
	if err != nil {
		return nil, err
	}
	switch {
	case status == http.StatusForbidden || status >= 500:
		return nil, fhirErr(status, b)
	case status >= 300:
		if is := outcome(b); len(is) > 0 {
			return is, nil
		}
		return nil, fhirErr(status, b)
	}
	if is := outcome(b); hasErrors(is) {
		return is, nil
	}
	return nil, nil
}

func (c *Console) fhirUpdate(w http.ResponseWriter, r *http.Request, sess session) error {
	typ, id, ok := c.fhirTarget(w, r, true)
	if !ok {
		return nil
	}
	ctx := r.Context()
	draft := r.PostForm.Get("resource")
	issues, err := c.validate(ctx, sess, typ, id, draft)
	if err == nil && issues == nil {
		var status int
		var b []byte
		// If-Match: the edit applies to the version the page showed (a
		// newer one is a conflict to see, not to overwrite), and never
		// creates a resource the way a PUT to a new id would.
		var ifMatch http.Header
		if v := r.PostForm.Get("version"); v != "" {
			ifMatch = http.Header{"If-Match": {`W/"` + v + `"`}}
		} else {
			ifMatch = http.Header{"If-Match": {`W/"0"`}}
		}
		status, b, err = c.fhirWith(ctx, sess, http.MethodPut, "/"+typ+"/"+id, []byte(draft), ifMatch)
		if err == nil && status < 300 {
			return seeOther(w, r, "/console/fhir/"+typ+"/"+id+"?saved=1")
		}
		if err == nil {
			issues, err = outcome(b), fhirErr(status, b)
			if status != http.StatusForbidden && len(issues) > 0 {
				err = nil
			}
		}
	}
	var ae *apiError
	if err != nil && !errors.As(err, &ae) {
		return err
	}
	page, lerr := c.loadResource(r, sess, typ, id)
	if lerr != nil {
		return lerr
	}
	page.Draft, page.Issues = draft, issues
	if ae != nil {
		page.Error = sentence(ae.Message)
		return c.render(w, ae.Status, "fhir-resource", page)
	}
	return c.render(w, http.StatusUnprocessableEntity, "fhir-resource", page)
}

// starter is a new resource's starting text.
func starter(typ string) string {
	b, _ := json.MarshalIndent(map[string]any{"resourceType": typ}, "", "  ")
	return string(b)
}

func (c *Console) fhirNewPage(w http.ResponseWriter, r *http.Request, sess session) error {
	typ, _, ok := c.fhirTarget(w, r, false)
	if !ok {
		return nil
	}
	if !c.can(r.Context(), sess, "FHIR:Create", "FHIR:"+typ+":*") {
		return c.message(w, http.StatusForbidden, "Cannot create "+typ, "You may not create "+typ+" resources in this project.")
	}
	page := fhirResourcePage{base: c.base(sess, "New "+typ, "fhir"), Type: typ, New: true, Draft: starter(typ), CanEdit: true}
	return c.render(w, http.StatusOK, "fhir-resource", page)
}

func (c *Console) fhirCreate(w http.ResponseWriter, r *http.Request, sess session) error {
	typ, _, ok := c.fhirTarget(w, r, false)
	if !ok {
		return nil
	}
	ctx := r.Context()
	draft := r.PostForm.Get("resource")
	page := fhirResourcePage{base: c.base(sess, "New "+typ, "fhir"), Type: typ, New: true, Draft: draft, CanEdit: true}
	issues, err := c.validate(ctx, sess, typ, "", draft)
	if err == nil && issues == nil {
		var status int
		var b []byte
		status, b, err = c.fhir(ctx, sess, http.MethodPost, "/"+typ, []byte(draft))
		if err == nil && status < 300 {
			var res struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(b, &res) == nil && fhirID.MatchString(res.ID) {
				return seeOther(w, r, "/console/fhir/"+typ+"/"+res.ID+"?saved=1")
			}
			return seeOther(w, r, "/console/fhir/"+typ)
		}
		if err == nil {
			issues, err = outcome(b), fhirErr(status, b)
			if status != http.StatusForbidden && len(issues) > 0 {
				err = nil
			}
		}
	}
	var ae *apiError
	if err != nil && !errors.As(err, &ae) {
		return err
	}
	page.Issues = issues
	if ae != nil {
		page.Error = sentence(ae.Message)
		return c.render(w, ae.Status, "fhir-resource", page)
	}
	return c.render(w, http.StatusUnprocessableEntity, "fhir-resource", page)
}

type fhirHistoryPage struct {
	base
	Type, ID string
	Versions []historyRow
	A, B     string
	Diff     []diffLine
	Error    string
}

type historyRow struct {
	Version, Updated, Method string
}

// maxHistory is how many versions the history page lists (newest first).
const maxHistory = 100

func (c *Console) fhirHistory(w http.ResponseWriter, r *http.Request, sess session) error {
	typ, id, ok := c.fhirTarget(w, r, true)
	if !ok {
		return nil
	}
	ctx := r.Context()
	var bundle struct {
		Entry []struct {
			Resource map[string]any `json:"resource"`
			Request  struct {
				Method string `json:"method"`
				URL    string `json:"url"`
			} `json:"request"`
		} `json:"entry"`
	}
	if err := c.fhirGet(ctx, sess, "/"+typ+"/"+id+"/_history?_count="+strconv.Itoa(maxHistory), &bundle); err != nil {
		return err
	}
	if len(bundle.Entry) == 0 {
		// The API's history of an id that was never here is empty.
		return &apiError{Status: http.StatusNotFound, Message: fmt.Sprintf("no %s/%s in this project", typ, id)}
	}
	page := fhirHistoryPage{base: c.base(sess, "History of "+typ+"/"+id, "fhir"), Type: typ, ID: id}
	for _, e := range bundle.Entry {
		row := historyRow{Method: e.Request.Method}
		if e.Resource != nil {
			fr := rowOf(e.Resource)
			row.Version, row.Updated = fr.Version, fr.Updated
		} else if i := strings.LastIndex(e.Request.URL, "/"); i >= 0 {
			row.Version = e.Request.URL[i+1:]
		}
		page.Versions = append(page.Versions, row)
	}
	q := r.URL.Query()
	page.A, page.B = q.Get("a"), q.Get("b")
	if page.A == "" && page.B == "" && len(page.Versions) >= 2 {
		page.A, page.B = page.Versions[1].Version, page.Versions[0].Version
	}
	if page.A != "" && page.B != "" {
		left, err := c.version(ctx, sess, typ, id, page.A)
		if err == nil {
			var right string
			if right, err = c.version(ctx, sess, typ, id, page.B); err == nil {
				page.Diff = lineDiff(left, right)
			}
		}
		var ae *apiError
		if errors.As(err, &ae) {
			page.Error = sentence(ae.Message)
		} else if err != nil {
			return err
		}
	}
	return c.render(w, http.StatusOK, "fhir-history", page)
}

// version reads one version's text (vread); a deleted version is empty.
func (c *Console) version(ctx context.Context, sess session, typ, id, v string) (string, error) {
	if _, err := strconv.ParseUint(v, 10, 32); err != nil {
		return "", &apiError{Status: http.StatusBadRequest, Message: fmt.Sprintf("version %q is not a version number", clipText(v))}
	}
	status, b, err := c.fhir(ctx, sess, http.MethodGet, "/"+typ+"/"+id+"/_history/"+v, nil)
	if err != nil {
		return "", err
	}
	if status == http.StatusGone {
		return "", nil
	}
	if status >= 300 {
		return "", fhirErr(status, b)
	}
	return canonical(b), nil
}

func clipText(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
