package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Zambdas: a list with status, create and edit (runtime, trigger,
// schedule, memory, timeout, execution role), a zip upload, invoke with a
// JSON payload, log search, and the project's secrets (names only).
//
// The zip goes through the console server-side: the form posts it here
// (with the session's CSRF token, like every other form, and no script),
// the console asks the API for the presigned URL the SDK uses
// (POST /v1/zambda/{id}/s3-upload) and PUTs the zip to it in process. The
// presigned URL never reaches the browser; the price is that a console
// upload is bounded by the request body limit (--max-body-bytes), while
// the SDK's direct PUT is bounded by the zip limit.

var (
	zambdaRuntimes = []string{"nodejs20.x", "nodejs22.x", "provided.al2023", "provided"}
	zambdaTriggers = []string{"http_auth", "http_open", "subscription", "cron"}
)

const pageSize = 20

type zambdaFn struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Runtime       string `json:"runtime"`
	Status        string `json:"status"`
	StatusReason  string `json:"statusReason"`
	TriggerMethod string `json:"triggerMethod"`
	Schedule      *struct {
		Expression string `json:"expression"`
	} `json:"schedule"`
	FileInfo *struct {
		Name         string    `json:"name"`
		Size         int64     `json:"size"`
		LastModified time.Time `json:"lastModified"`
	} `json:"fileInfo"`
	MemorySize       int     `json:"memorySize"`
	TimeoutInSeconds int     `json:"timeoutInSeconds"`
	ExecutionRoleID  *string `json:"executionRoleId"`
}

func (z zambdaFn) ScheduleExpr() string {
	if z.Schedule == nil {
		return ""
	}
	return z.Schedule.Expression
}

func (z zambdaFn) RoleID() string {
	if z.ExecutionRoleID == nil {
		return ""
	}
	return *z.ExecutionRoleID
}

type zambdaListPage struct {
	base
	Filter     string
	Zambdas    []zambdaFn
	Prev, Next string
	CanCreate  bool
}

func (c *Console) zambdaList(w http.ResponseWriter, r *http.Request, sess session) error {
	ctx := r.Context()
	page := zambdaListPage{base: c.base(sess, "Zambdas", "zambdas"), Filter: strings.TrimSpace(r.URL.Query().Get("q"))}
	var all []zambdaFn
	if err := c.call(ctx, sess, http.MethodGet, "/v1/zambda", nil, &all); err != nil {
		return err
	}
	var match []zambdaFn
	for _, z := range all {
		if page.Filter == "" || strings.Contains(strings.ToLower(z.Name), strings.ToLower(page.Filter)) {
			match = append(match, z)
		}
	}
	page.Zambdas, page.Prev, page.Next = pageOf(match, r, "/console/zambdas", page.Filter)
	page.CanCreate = c.can(ctx, sess, "Zambda:CreateFunction", "Zambda:Function:*")
	return c.render(w, http.StatusOK, "zambdas", page)
}

// pageOf cuts one page (?page=N, from 0) out of a list the API returns
// whole, with the links to the pages around it.
func pageOf[T any](list []T, r *http.Request, path, filter string) (items []T, prev, next string) {
	n, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if n < 0 || n*pageSize >= len(list) {
		n = 0
	}
	link := func(p int) string {
		q := url.Values{"page": {strconv.Itoa(p)}}
		if filter != "" {
			q.Set("q", filter)
		}
		return path + "?" + q.Encode()
	}
	end := min((n+1)*pageSize, len(list))
	if n > 0 {
		prev = link(n - 1)
	}
	if end < len(list) {
		next = link(n + 1)
	}
	return list[n*pageSize : end], prev, next
}

type zambdaPage struct {
	base
	New                bool
	Fn                 zambdaFn
	Runtimes, Triggers []string
	Roles              []roleChoice
	CanEdit, CanInvoke bool
	CanLogs            bool
	Saved, Uploaded    bool
	Error, ErrorIn     string // ErrorIn: "form", "name", "upload", "invoke", "logs"
	Payload            string
	Invoked            *invocation
	LogFilter          string
	Logs               []logLine
	LogsSearched       bool
	LogsAfter          int64 // the newest line shown (ms), where following starts
}

type invocation struct {
	Status   int
	Output   string
	Duration string
}

type logLine struct {
	Time    string `json:"time"`
	Message string `json:"message"`
}

func (c *Console) newZambdaPage(w http.ResponseWriter, r *http.Request, sess session) error {
	if !c.can(r.Context(), sess, "Zambda:CreateFunction", "Zambda:Function:*") {
		return c.message(w, http.StatusForbidden, "Cannot create zambdas", "You may not create zambdas in this project.")
	}
	page := zambdaPage{base: c.base(sess, "New zambda", "zambdas"), New: true, Runtimes: zambdaRuntimes, Triggers: zambdaTriggers,
		Fn: zambdaFn{Runtime: "nodejs20.x", TriggerMethod: "http_auth", MemorySize: 1024, TimeoutInSeconds: 27}}
	var err error
	if page.Roles, err = c.roleChoices(r, sess, nil); err != nil {
		return err
	}
	return c.render(w, http.StatusOK, "zambda", page)
}

// zambdaInput reads the create/edit form into the API's input. A number
// that is not one is sent as is, so the API's own message names it.
func zambdaInput(f url.Values) (map[string]any, zambdaFn) {
	fn := zambdaFn{Name: strings.TrimSpace(f.Get("name")), Runtime: f.Get("runtime"), TriggerMethod: f.Get("triggerMethod")}
	in := map[string]any{"name": fn.Name, "runtime": fn.Runtime, "triggerMethod": fn.TriggerMethod}
	for _, k := range []string{"memorySize", "timeoutInSeconds"} {
		v := strings.TrimSpace(f.Get(k))
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			in[k] = v
			continue
		}
		in[k] = n
		if k == "memorySize" {
			fn.MemorySize = n
		} else {
			fn.TimeoutInSeconds = n
		}
	}
	if e := strings.TrimSpace(f.Get("schedule")); e != "" {
		in["schedule"] = map[string]string{"expression": e}
		fn.Schedule = &struct {
			Expression string `json:"expression"`
		}{e}
	} else {
		in["schedule"] = nil
	}
	if role := f.Get("executionRoleId"); role != "" {
		in["executionRoleId"] = role
		fn.ExecutionRoleID = &role
	} else {
		in["executionRoleId"] = nil
	}
	return in, fn
}

func (c *Console) createZambda(w http.ResponseWriter, r *http.Request, sess session) error {
	in, fn := zambdaInput(r.PostForm)
	var out zambdaFn
	err := c.call(r.Context(), sess, http.MethodPost, "/v1/zambda", in, &out)
	var ae *apiError
	if errors.As(err, &ae) {
		page := zambdaPage{base: c.base(sess, "New zambda", "zambdas"), New: true, Runtimes: zambdaRuntimes, Triggers: zambdaTriggers,
			Fn: fn, Error: sentence(ae.Message), ErrorIn: errorField(ae.Message)}
		if page.Roles, err = c.roleChoices(r, sess, []string{fn.RoleID()}); err != nil {
			return err
		}
		return c.render(w, ae.Status, "zambda", page)
	}
	if err != nil {
		return err
	}
	return seeOther(w, r, "/console/zambdas/"+url.PathEscape(out.ID)+"?saved=1")
}

// errorField names the form field an API message is about ("form" when
// none), so the message shows next to it.
func errorField(msg string) string {
	m := strings.ToLower(msg)
	for _, f := range []string{"name", "runtime", "triggermethod", "memorysize", "timeoutinseconds", "schedule", "executionroleid"} {
		if strings.Contains(strings.ReplaceAll(m, " ", ""), f) {
			return f
		}
	}
	return "form"
}

func seeOther(w http.ResponseWriter, r *http.Request, to string) error {
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

// loadZambda fills the page of one zambda (the API's 404 for an id that
// is not the project's).
func (c *Console) loadZambda(r *http.Request, sess session, id string) (zambdaPage, error) {
	ctx := r.Context()
	var fn zambdaFn
	if err := c.call(ctx, sess, http.MethodGet, "/v1/zambda/"+url.PathEscape(id), nil, &fn); err != nil {
		return zambdaPage{}, err
	}
	res := "Zambda:Function:" + fn.ID
	page := zambdaPage{base: c.base(sess, "Zambda "+fn.Name, "zambdas"), Fn: fn, Runtimes: zambdaRuntimes, Triggers: zambdaTriggers,
		CanEdit: c.can(ctx, sess, "Zambda:UpdateFunction", res), CanInvoke: c.can(ctx, sess, "Zambda:InvokeFunction", res),
		CanLogs: c.can(ctx, sess, "Zambda:ReadLogs", res), Payload: "{}"}
	if page.CanEdit {
		var err error
		if page.Roles, err = c.roleChoices(r, sess, []string{fn.RoleID()}); err != nil {
			return zambdaPage{}, err
		}
	}
	return page, nil
}

func (c *Console) zambdaPage(w http.ResponseWriter, r *http.Request, sess session) error {
	page, err := c.loadZambda(r, sess, r.PathValue("id"))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page.Saved, page.Uploaded = q.Get("saved") == "1", q.Get("uploaded") == "1"
	// Following starts at the newest line shown, or a few seconds back: a
	// line is stored shortly after its time (written after the answer),
	// so one stamped just before the page may not be in its search yet.
	page.LogsAfter = c.now().Add(-logLag).UnixMilli()
	if _, ok := q["logs"]; ok && page.CanLogs {
		page.LogsSearched, page.LogFilter = true, strings.TrimSpace(q.Get("logs"))
		if err := c.searchLogs(r, sess, &page); err != nil {
			return err
		}
	}
	return c.render(w, http.StatusOK, "zambda", page)
}

// searchLogs runs the log search of the last day (the API's), newest
// lines last; a refusal shows next to the search box.
func (c *Console) searchLogs(r *http.Request, sess session, page *zambdaPage) error {
	now := c.now()
	lines, last, err := c.logLines(r, sess, page.Fn.ID, page.LogFilter, now.Add(-24*time.Hour).UnixMilli())
	var ae *apiError
	if errors.As(err, &ae) {
		page.Error, page.ErrorIn = sentence(ae.Message), "logs"
		return nil
	}
	if err != nil {
		return err
	}
	page.Logs, page.LogsAfter = lines, max(last, page.LogsAfter)
	return nil
}

// logLines searches a zambda's log lines from start (ms) to now; last is
// the newest line's time (0: none).
func (c *Console) logLines(r *http.Request, sess session, id, filter string, start int64) ([]logLine, int64, error) {
	now := c.now()
	var out struct {
		LogEvents []struct {
			Message   string `json:"message"`
			Timestamp int64  `json:"timestamp"`
		} `json:"logEvents"`
	}
	in := map[string]any{"filter": filter, "start": start, "end": now.Add(time.Minute).UnixMilli()}
	if err := c.call(r.Context(), sess, http.MethodPost, "/v1/zambda/"+url.PathEscape(id)+"/logStream/search", in, &out); err != nil {
		return nil, 0, err
	}
	var lines []logLine
	var last int64
	for _, e := range out.LogEvents {
		lines = append(lines, logLine{Time: time.UnixMilli(e.Timestamp).UTC().Format("2006-01-02 15:04:05.000"), Message: e.Message})
		last = max(last, e.Timestamp)
	}
	return lines, last, nil
}

// zambdaLogTail answers the log follower (static/logtail.js): the lines
// after ?after= (ms), as JSON. A refusal is the API's status and message.
func (c *Console) zambdaLogTail(w http.ResponseWriter, r *http.Request, sess session) error {
	after, err := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	if err != nil || after < 0 {
		return writeConsoleJSON(w, http.StatusBadRequest, map[string]string{"message": "after must be a time in milliseconds"})
	}
	// Never further back than the page's own search (a day).
	after = max(after, c.now().Add(-24*time.Hour).UnixMilli())
	lines, last, err := c.logLines(r, sess, r.PathValue("id"), strings.TrimSpace(r.URL.Query().Get("logs")), after+1)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status != http.StatusUnauthorized {
		return writeConsoleJSON(w, ae.Status, map[string]string{"message": sentence(ae.Message)})
	}
	if err != nil {
		return err
	}
	if lines == nil {
		lines = []logLine{}
	}
	return writeConsoleJSON(w, http.StatusOK, map[string]any{"lines": lines, "last": max(last, after)})
}

func (c *Console) updateZambda(w http.ResponseWriter, r *http.Request, sess session) error {
	id := r.PathValue("id")
	in, fn := zambdaInput(r.PostForm)
	err := c.call(r.Context(), sess, http.MethodPatch, "/v1/zambda/"+url.PathEscape(id), in, nil)
	var ae *apiError
	if err != nil && !errors.As(err, &ae) {
		return err
	}
	if ae == nil {
		return seeOther(w, r, "/console/zambdas/"+url.PathEscape(id)+"?saved=1")
	}
	page, lerr := c.loadZambda(r, sess, id)
	if lerr != nil {
		return lerr
	}
	fn.ID, fn.Status, fn.FileInfo = page.Fn.ID, page.Fn.Status, page.Fn.FileInfo
	page.Fn, page.Error, page.ErrorIn = fn, sentence(ae.Message), errorField(ae.Message)
	if !page.CanEdit {
		page.ErrorIn = "top" // the form is not shown: the refusal is
	}
	for i := range page.Roles {
		page.Roles[i].Checked = page.Roles[i].ID == fn.RoleID()
	}
	return c.render(w, ae.Status, "zambda", page)
}

// logLag is how long after its time a log line may be stored.
const logLag = 5 * time.Second

// maxUploadForm bounds a zip upload form the console reads (the server's
// body limit is usually lower and applies first).
const maxUploadForm = 64 << 20

func (c *Console) uploadZambda(w http.ResponseWriter, r *http.Request, sess session) error {
	id := r.PathValue("id")
	err := c.upload(r, sess, id)
	var ae *apiError
	if err != nil && !errors.As(err, &ae) {
		return err
	}
	page, lerr := c.loadZambda(r, sess, id)
	if lerr != nil {
		return lerr
	}
	if ae == nil && page.Fn.Status != "Failed" {
		return seeOther(w, r, "/console/zambdas/"+url.PathEscape(id)+"?uploaded=1")
	}
	if ae == nil {
		// Stored, then refused by the code check (not a zip, no handler):
		// the reason next to the upload.
		ae = &apiError{Status: http.StatusUnprocessableEntity, Message: page.Fn.StatusReason}
	}
	page.Error, page.ErrorIn = sentence(ae.Message), "upload"
	if !page.CanEdit {
		page.ErrorIn = "top"
	}
	return c.render(w, ae.Status, "zambda", page)
}

// upload sends the form's zip to the zambda through the SDK's presigned
// upload.
func (c *Console) upload(r *http.Request, sess session, id string) error {
	if r.MultipartForm == nil || len(r.MultipartForm.File["zip"]) != 1 {
		return &apiError{Status: http.StatusBadRequest, Message: "choose one zip file to upload"}
	}
	fh := r.MultipartForm.File["zip"][0]
	f, err := fh.Open()
	if err != nil {
		return fmt.Errorf("console upload: %w", err)
	}
	defer f.Close()
	name := fh.Filename
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:] // some browsers send a path
	}
	var out struct {
		SignedURL string `json:"signedUrl"`
	}
	if err := c.call(r.Context(), sess, http.MethodPost, "/v1/zambda/"+url.PathEscape(id)+"/s3-upload",
		map[string]string{"filename": name}, &out); err != nil {
		return err
	}
	u, err := url.Parse(out.SignedURL)
	if err != nil {
		return fmt.Errorf("console upload: presigned URL: %w", err)
	}
	// The URL's signature is its credential: no token goes with it.
	status, body, err := c.do(r.Context(), http.MethodPut, u.RequestURI(), http.Header{"Content-Type": {"application/zip"}}, f)
	if err != nil {
		return err
	}
	if status >= 300 {
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &e) != nil || e.Message == "" {
			e.Message = http.StatusText(status)
		}
		return &apiError{Status: status, Message: e.Message}
	}
	return nil
}

func (c *Console) invokeZambda(w http.ResponseWriter, r *http.Request, sess session) error {
	id := r.PathValue("id")
	page, err := c.loadZambda(r, sess, id)
	if err != nil {
		return err
	}
	page.Payload = r.PostForm.Get("payload")
	payload := strings.TrimSpace(page.Payload)
	if payload == "" {
		payload = "{}"
	}
	if !json.Valid([]byte(payload)) {
		page.Error, page.ErrorIn = "The payload is not JSON.", "invoke"
		return c.render(w, http.StatusBadRequest, "zambda", page)
	}
	h := http.Header{"Authorization": {"Bearer " + sess.AccessToken}, "X-Oystehr-Project-Id": {sess.Project},
		"Content-Type": {"application/json"}}
	start := time.Now()
	status, body, err := c.do(r.Context(), http.MethodPost, "/v1/zambda/"+url.PathEscape(page.Fn.ID)+"/execute", h, strings.NewReader(payload))
	if err != nil {
		return err
	}
	took := time.Since(start)
	var out struct {
		Status  *int            `json:"status"`
		Output  json.RawMessage `json:"output"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(body, &out) != nil || out.Status == nil {
		// Not an execution: the API refused (its message) or failed.
		msg := out.Message
		if msg == "" {
			msg = http.StatusText(status)
		}
		if status == http.StatusUnauthorized {
			return &apiError{Status: status, Message: msg}
		}
		page.Error, page.ErrorIn = sentence(msg), "invoke"
		if !page.CanInvoke {
			page.ErrorIn = "top"
		}
		return c.render(w, status, "zambda", page)
	}
	page.Invoked = &invocation{Status: *out.Status, Output: canonical(out.Output), Duration: took.Round(time.Millisecond).String()}
	return c.render(w, http.StatusOK, "zambda", page)
}

type secretsPage struct {
	base
	Names             []string
	CanSet, CanDelete bool
	Saved, Deleted    string
	Name              string
	Error, ErrorIn    string // ErrorIn: "name", "value", "delete"
}

func (c *Console) secretsPage(w http.ResponseWriter, r *http.Request, sess session) error {
	page, err := c.loadSecrets(r, sess)
	if err != nil {
		return err
	}
	page.Saved, page.Deleted = r.URL.Query().Get("saved"), r.URL.Query().Get("deleted")
	return c.render(w, http.StatusOK, "secrets", page)
}

func (c *Console) loadSecrets(r *http.Request, sess session) (secretsPage, error) {
	ctx := r.Context()
	var list []struct {
		Name string `json:"name"`
	}
	if err := c.call(ctx, sess, http.MethodGet, "/v1/secret", nil, &list); err != nil {
		return secretsPage{}, err
	}
	page := secretsPage{base: c.base(sess, "Secrets", "secrets"),
		CanSet: c.can(ctx, sess, "Zambda:CreateSecret", "Zambda:Secret:*"), CanDelete: c.can(ctx, sess, "Zambda:DeleteSecret", "Zambda:Secret:*")}
	for _, s := range list {
		page.Names = append(page.Names, s.Name)
	}
	return page, nil
}

func (c *Console) setSecret(w http.ResponseWriter, r *http.Request, sess session) error {
	name, value := strings.TrimSpace(r.PostForm.Get("name")), r.PostForm.Get("value")
	// The value is never echoed back: not on success, not on an error.
	err := c.call(r.Context(), sess, http.MethodPost, "/v1/secret", map[string]string{"name": name, "value": value}, nil)
	return c.secretAnswer(w, r, sess, err, "value", "saved", name)
}

func (c *Console) deleteSecret(w http.ResponseWriter, r *http.Request, sess session) error {
	name := r.PathValue("name")
	err := c.call(r.Context(), sess, http.MethodDelete, "/v1/secret/"+url.PathEscape(name), nil, nil)
	return c.secretAnswer(w, r, sess, err, "delete", "deleted", name)
}

func (c *Console) secretAnswer(w http.ResponseWriter, r *http.Request, sess session, err error, errorIn, done, name string) error {
	var ae *apiError
	if err != nil && !errors.As(err, &ae) {
		return err
	}
	if ae == nil {
		return seeOther(w, r, "/console/secrets?"+url.Values{done: {name}}.Encode())
	}
	page, lerr := c.loadSecrets(r, sess)
	if lerr != nil {
		return lerr
	}
	page.Error, page.ErrorIn = sentence(ae.Message), errorIn
	if errorIn == "value" {
		page.Name = name
		if strings.Contains(strings.ToLower(ae.Message), "name") {
			page.ErrorIn = "name"
		}
	}
	return c.render(w, ae.Status, "secrets", page)
}

// writeConsoleJSON answers a console script.
func writeConsoleJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}
