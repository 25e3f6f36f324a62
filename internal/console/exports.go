package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Exports: start a FHIR bulk $export (system, Patient or Group level, with
// _type and _since), list the developer's jobs with their progress (the
// API's GET $export-poll), follow one (its status URL; exports.js polls
// while it runs), download its files through the console (the manifest's
// file URLs, fetched with the session's token) and cancel it. A job
// answers only the principal that started it, so the list is the
// developer's own jobs.

// jobID is an export job's id (a UUID): anything else is no job.
var jobID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

type exportJob struct {
	ID              string `json:"id"`
	Status          string `json:"status"`
	Request         string `json:"request"`
	TransactionTime string `json:"transactionTime"`
	Progress        string `json:"progress"`
	Written         int64  `json:"written"`
	Error           string `json:"error"`
}

// Started is the job's kick-off time, for people.
func (j exportJob) Started() string {
	t, err := time.Parse(time.RFC3339Nano, j.TransactionTime)
	if err != nil {
		return j.TransactionTime
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// Query is the kick-off's request without Ward's address: what was asked.
func (j exportJob) Query() string {
	if i := strings.Index(j.Request, "$export"); i >= 0 {
		if k := strings.LastIndex(j.Request[:i], "/fhir/"); k >= 0 {
			return j.Request[k+len("/fhir/"):]
		}
		return j.Request[i:]
	}
	return j.Request
}

type exportsPage struct {
	base
	listPage[exportJob]
	CanStart       bool
	Level, Group   string // the start form
	Types, Since   string
	Done           string
	Error, ErrorIn string // ErrorIn: "types", "since", "group", "form"
}

func (c *Console) loadExports(r *http.Request, sess session) (exportsPage, error) {
	if c.cfg.FHIRPath == "" {
		return exportsPage{}, &apiError{Status: http.StatusNotFound, Message: "this Ward has no FHIR API"}
	}
	page := exportsPage{base: c.base(sess, "Exports", "exports"), Level: "system",
		CanStart: c.can(r.Context(), sess, "FHIR:Search", "FHIR:Patient:*")}
	q := r.URL.Query()
	var err error
	if strings.TrimSpace(q.Get("q")) != "" {
		// A filter reads the newest 1,000 and pages what matches.
		var out exportList
		if err = c.fhirGet(r.Context(), sess, "/$export-poll", &out); err == nil {
			page.listPage = pageList(out.Jobs, q, "/console/exports", func(j exportJob, f string) bool {
				return has(f, j.Status, j.Request, j.ID)
			})
		}
	} else {
		page.listPage, err = c.exportJobsPage(r, sess)
	}
	return page, err
}

type exportList struct {
	Total int         `json:"total"`
	Jobs  []exportJob `json:"jobs"`
}

// exportJobsPage reads one page of the developer's jobs (the API's
// _count and _offset); a page past the end shows the last.
func (c *Console) exportJobsPage(r *http.Request, sess session) (listPage[exportJob], error) {
	n, _ := strconv.Atoi(r.URL.Query().Get("page"))
	n = max(n, 1)
	var out exportList
	for {
		q := url.Values{"_count": {strconv.Itoa(perPage)}, "_offset": {strconv.Itoa((n - 1) * perPage)}}
		if err := c.fhirGet(r.Context(), sess, "/$export-poll?"+q.Encode(), &out); err != nil {
			return listPage[exportJob]{}, err
		}
		if len(out.Jobs) > 0 || n == 1 || out.Total == 0 {
			break
		}
		n = (out.Total + perPage - 1) / perPage
	}
	p := listPage[exportJob]{Items: out.Jobs, Total: out.Total, Matching: out.Total, From: (n-1)*perPage + 1}
	if n > 1 {
		p.Prev = "/console/exports?page=" + strconv.Itoa(n-1)
	}
	if n*perPage < out.Total {
		p.Next = "/console/exports?page=" + strconv.Itoa(n+1)
	}
	return p, nil
}

func (c *Console) exportsPage(w http.ResponseWriter, r *http.Request, sess session) error {
	page, err := c.loadExports(r, sess)
	if err != nil {
		return err
	}
	page.Done = r.URL.Query().Get("done")
	return c.render(w, http.StatusOK, "exports", page)
}

// kickoffPath is the $export request the start form asks for.
func kickoffPath(level, group, types, since string) (string, *apiError) {
	var path string
	switch level {
	case "system":
		path = "/$export"
	case "patient":
		path = "/Patient/$export"
	case "group":
		if !fhirID.MatchString(group) {
			return "", &apiError{Status: http.StatusBadRequest, Message: "group: a Group export needs the Group's id"}
		}
		path = "/Group/" + group + "/$export"
	default:
		return "", &apiError{Status: http.StatusBadRequest, Message: "choose system, Patient or Group export"}
	}
	q := url.Values{}
	if types = strings.ReplaceAll(types, " ", ""); types != "" {
		q.Set("_type", types)
	}
	if since != "" {
		q.Set("_since", since)
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return path, nil
}

func (c *Console) startExport(w http.ResponseWriter, r *http.Request, sess session) error {
	f := r.PostForm
	level, group := f.Get("level"), strings.TrimSpace(f.Get("group"))
	types, since := strings.TrimSpace(f.Get("types")), strings.TrimSpace(f.Get("since"))
	path, ae := kickoffPath(level, group, types, since)
	if ae == nil && c.cfg.FHIRPath != "" {
		rec, err := c.send(r.Context(), http.MethodGet, c.cfg.FHIRPath+path, http.Header{
			"Authorization": {"Bearer " + sess.AccessToken}, "X-Oystehr-Project-Id": {sess.Project},
			"Accept": {"application/fhir+json"}, "Prefer": {"respond-async"}}, nil)
		if err != nil {
			return err
		}
		loc := rec.header.Get("Content-Location")
		if rec.status == http.StatusAccepted {
			job := loc[strings.LastIndexByte(loc, '/')+1:]
			return seeOther(w, r, "/console/exports/"+url.PathEscape(job))
		}
		ae = fhirErr(rec.status, rec.body.Bytes())
	}
	if ae == nil {
		ae = &apiError{Status: http.StatusNotFound, Message: "this Ward has no FHIR API"}
	}
	if ae.Status == http.StatusUnauthorized {
		return ae
	}
	page, err := c.loadExports(r, sess)
	if err != nil {
		return err
	}
	page.Level, page.Group, page.Types, page.Since = level, group, types, since
	page.Error, page.ErrorIn = sentence(ae.Message), exportField(ae.Message)
	return c.render(w, ae.Status, "exports", page)
}

// exportField names the start form's field a refusal is about.
func exportField(msg string) string {
	switch m := strings.ToLower(msg); {
	case strings.Contains(m, "_since"):
		return "since"
	case strings.Contains(m, "_type"):
		return "types"
	case strings.Contains(m, "group"):
		return "group"
	}
	return "form"
}

type exportPage struct {
	base
	Job      string
	Status   string // running, done, failed
	Progress string
	Files    []exportFileRow
	Manifest string // the manifest's JSON, as the API sent it
	Error    string
	Canceled bool
}

type exportFileRow struct {
	N, Type string
	Count   int
}

// loadExport polls the job's status URL.
func (c *Console) loadExport(r *http.Request, sess session, job string) (exportPage, error) {
	if !jobID.MatchString(job) || c.cfg.FHIRPath == "" {
		return exportPage{}, &apiError{Status: http.StatusNotFound, Message: "no such export job"}
	}
	rec, err := c.send(r.Context(), http.MethodGet, c.cfg.FHIRPath+"/$export-poll/"+job, http.Header{
		"Authorization": {"Bearer " + sess.AccessToken}, "X-Oystehr-Project-Id": {sess.Project}, "Accept": {"application/json"}}, nil)
	if err != nil {
		return exportPage{}, err
	}
	page := exportPage{base: c.base(sess, "Export "+job, "exports"), Job: job}
	switch {
	case rec.status == http.StatusAccepted:
		page.Status, page.Progress = "running", rec.header.Get("X-Progress")
	case rec.status == http.StatusOK:
		var m struct {
			Output []struct {
				Type  string `json:"type"`
				URL   string `json:"url"`
				Count int    `json:"count"`
			} `json:"output"`
		}
		if err := json.Unmarshal(rec.body.Bytes(), &m); err != nil {
			return exportPage{}, err
		}
		page.Status, page.Manifest = "done", canonical(rec.body.Bytes())
		for _, o := range m.Output {
			n := o.URL[strings.LastIndexByte(o.URL, '/')+1:]
			if _, err := strconv.Atoi(n); err == nil {
				page.Files = append(page.Files, exportFileRow{N: n, Type: o.Type, Count: o.Count})
			}
		}
	case rec.status == http.StatusNotFound || rec.status == http.StatusUnauthorized:
		return exportPage{}, fhirErr(rec.status, rec.body.Bytes())
	default:
		page.Status, page.Error = "failed", sentence(fhirErr(rec.status, rec.body.Bytes()).Message)
	}
	return page, nil
}

func (c *Console) exportPage(w http.ResponseWriter, r *http.Request, sess session) error {
	page, err := c.loadExport(r, sess, r.PathValue("job"))
	if err != nil {
		return err
	}
	if r.Header.Get("Accept") == "application/json" {
		// exports.js following a running job.
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		return json.NewEncoder(w).Encode(map[string]string{"status": page.Status, "progress": page.Progress})
	}
	return c.render(w, http.StatusOK, "export", page)
}

func (c *Console) cancelExport(w http.ResponseWriter, r *http.Request, sess session) error {
	job := r.PathValue("job")
	if !jobID.MatchString(job) || c.cfg.FHIRPath == "" {
		return &apiError{Status: http.StatusNotFound, Message: "no such export job"}
	}
	status, b, err := c.fhir(r.Context(), sess, http.MethodDelete, "/$export-poll/"+job, nil)
	if err != nil {
		return err
	}
	if status != http.StatusAccepted {
		return fhirErr(status, b)
	}
	return seeOther(w, r, "/console/exports?"+url.Values{"done": {"Export cancelled and its files deleted."}}.Encode())
}

// exportFile sends one output file, fetched from the manifest's file URL
// with the session's token (the browser never holds the token).
func (c *Console) exportFile(w http.ResponseWriter, r *http.Request, sess session) error {
	job, n := r.PathValue("job"), r.PathValue("n")
	if _, err := strconv.Atoi(n); !jobID.MatchString(job) || err != nil || c.cfg.FHIRPath == "" {
		return &apiError{Status: http.StatusNotFound, Message: "no such export file"}
	}
	rec, err := c.send(r.Context(), http.MethodGet, c.cfg.FHIRPath+"/$export-file/"+job+"/"+n, http.Header{
		"Authorization": {"Bearer " + sess.AccessToken}, "X-Oystehr-Project-Id": {sess.Project}, "Accept": {"application/fhir+ndjson"}}, nil)
	if err != nil {
		return err
	}
	if rec.status != http.StatusOK {
		return fhirErr(rec.status, rec.body.Bytes())
	}
	h := w.Header()
	h.Set("Content-Type", "application/fhir+ndjson")
	h.Set("Content-Disposition", `attachment; filename="export-`+job[:8]+`-`+n+`.ndjson"`)
	h.Set("Content-Length", strconv.Itoa(rec.body.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", csp)
	_, err = w.Write(rec.body.Bytes())
	return err
}
