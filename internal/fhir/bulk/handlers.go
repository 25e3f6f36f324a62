package bulk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/store"
)

// Paths under the FHIR base: kick-off at $export, Patient/$export and
// Group/[id]/$export; a job's status at $export-poll/[job]; its files at
// $export-file/[job]/[n].
const (
	pollPath = "$export-poll"
	filePath = "$export-file"
)

var errNoJob = fault.NotFound("no such export job")

// Register mounts the export endpoints on h.
func (s *Service) Register(h *fhir.Handler) {
	base := h.Base()
	h.Endpoint("$export", func(w http.ResponseWriter, r *http.Request, p auth.Principal, rest []string) error {
		if len(rest) > 0 {
			return fault.NotFound("no FHIR interaction %s %s", r.Method, r.URL.Path)
		}
		return s.kickoff(w, r, p, base, LevelSystem, "")
	})
	h.Endpoint("Patient/$export", func(w http.ResponseWriter, r *http.Request, p auth.Principal, rest []string) error {
		if len(rest) > 0 {
			return fault.NotFound("no FHIR interaction %s %s", r.Method, r.URL.Path)
		}
		return s.kickoff(w, r, p, base, LevelPatient, "")
	})
	h.Operation("Group", "$export", func(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
		return s.kickoff(w, r, p, base, LevelGroup, id)
	})
	h.Endpoint(pollPath, func(w http.ResponseWriter, r *http.Request, p auth.Principal, rest []string) error {
		if len(rest) == 0 && r.Method == http.MethodGet {
			return s.list(w, r, p, base)
		}
		if len(rest) != 1 {
			return errNoJob
		}
		switch r.Method {
		case http.MethodGet:
			return s.status(w, r, p, base, rest[0])
		case http.MethodDelete:
			return s.cancel(w, r, p, rest[0])
		}
		return fault.NotSupported("%s is not allowed on an export status URL (GET polls, DELETE cancels)", r.Method)
	})
	h.Endpoint(filePath, func(w http.ResponseWriter, r *http.Request, p auth.Principal, rest []string) error {
		if len(rest) != 2 || r.Method != http.MethodGet {
			return errNoJob
		}
		return s.download(w, r, p, rest[0], rest[1])
	})
}

// maxKickoffBody bounds a POST kick-off's Parameters body: 1,000 patient
// references and 50 filters fit with room to spare.
const maxKickoffBody = 1 << 20

// kickoff starts an export (IG "Bulk Data Kick-off Request"), by GET with
// its parameters in the query or by POST with a Parameters body: 202 and
// the status URL in Content-Location.
func (s *Service) kickoff(w http.ResponseWriter, r *http.Request, p auth.Principal, base, level, group string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return fault.NotSupported("$export is started with GET (parameters in the URL) or POST (a Parameters body)")
	}
	if !strings.Contains(r.Header.Get("Prefer"), "respond-async") {
		return fault.Invalid("$export needs the header Prefer: respond-async")
	}
	if !acceptsFHIRJSON(r.Header.Get("Accept")) {
		return fault.Invalid("$export needs the header Accept: application/fhir+json")
	}
	lenient := strings.Contains(r.Header.Get("Prefer"), "handling=lenient")
	q, patients, err := kickoffParams(w, r, lenient)
	if err != nil {
		return err
	}
	params, err := ParseParams(level, group, q, lenient)
	if err != nil {
		return err
	}
	if params, err = s.resolve(r.Context(), p, params); err != nil {
		return err
	}
	if patients != nil {
		if params, err = s.restrictPatients(r.Context(), p, params, patients); err != nil {
			return err
		}
	}
	// A POST's request URL is without its parameters (IG manifest
	// "request").
	id, err := s.start(r.Context(), p, base+strings.TrimPrefix(r.URL.RequestURI(), pathOf(base)), params)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Location", base+"/"+pollPath+"/"+id)
	fhir.WriteOutcome(w, http.StatusAccepted, "information", "informational", "the export has started; poll the Content-Location URL")
	return nil
}

// kickoffParams reads a kick-off's parameters: a GET's query, or a POST's
// Parameters body (FHIR JSON, at most maxKickoffBody bytes; query
// parameters beside it are a 400 unless lenient, which ignores them) with
// its patient references apart (nil when none).
func kickoffParams(w http.ResponseWriter, r *http.Request, lenient bool) (url.Values, []string, error) {
	if r.Method == http.MethodGet {
		return r.URL.Query(), nil, nil
	}
	if ct := r.Header.Get("Content-Type"); !fhir.JSONMediaType(ct) {
		return nil, nil, fhir.UnsupportedMediaType("a POST $export takes a FHIR Parameters resource as application/fhir+json, not %q", clip(ct))
	}
	if r.URL.RawQuery != "" && !lenient {
		return nil, nil, fault.Invalid("a POST $export takes its parameters in the Parameters body, not the URL (Prefer: handling=lenient ignores the URL's)")
	}
	body, err := fault.ReadBody(http.MaxBytesReader(w, r.Body, maxKickoffBody))
	if err != nil {
		return nil, nil, err
	}
	q, patients, err := ParseParameters(body)
	if err != nil {
		return nil, nil, err
	}
	if len(patients) == 0 {
		patients = nil
	}
	return q, patients, nil
}

// restrictPatients applies a POST kick-off's patient parameter: only
// below system level; each patient must be one the caller could find by
// searching Patient (unknown, another project's and unreadable ones alike
// are a 400 naming it) and, at Group level, a member of the Group.
func (s *Service) restrictPatients(ctx context.Context, p auth.Principal, params Params, patients []string) (Params, error) {
	if params.Level == LevelSystem {
		return Params{}, fault.Invalid("patient applies to Patient and Group exports only, not to a system-level $export")
	}
	if err := s.fhir.ExportPatients(ctx, p, patients); err != nil {
		return Params{}, err
	}
	if params.Level == LevelGroup {
		for _, id := range patients {
			if !slices.Contains(params.Patients, id) {
				return Params{}, fault.Invalid("patient Patient/%s is not an active member of Group/%s", id, params.Group)
			}
		}
	}
	params.Patients = slices.Sorted(slices.Values(patients))
	return params, nil
}

// pathOf is the path part of the public base URL.
func pathOf(base string) string {
	if i := strings.Index(base, "://"); i >= 0 {
		if j := strings.IndexByte(base[i+3:], '/'); j >= 0 {
			return base[i+3+j:]
		}
		return ""
	}
	return base
}

// acceptsFHIRJSON reports whether an Accept header lists
// application/fhir+json (the IG requires it on kick-off).
func acceptsFHIRJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "application/fhir+json" {
			return true
		}
	}
	return false
}

// resolve checks p's access for params and fixes its types: every type
// _type names must be searchable by p (403 otherwise) and, below system
// level, in the Patient compartment (400); without _type, the types p may
// search. Group export needs FHIR:Export on the Group and takes its
// Patient members now.
func (s *Service) resolve(ctx context.Context, p auth.Principal, params Params) (Params, error) {
	var candidates []string
	switch params.Level {
	case LevelSystem:
		candidates = search.ResourceTypes()
	default:
		candidates = fhir.PatientCompartmentTypes()
	}
	if params.Types != nil {
		for _, t := range params.Types {
			if !slices.Contains(candidates, t) {
				return Params{}, fault.Invalid("_type %s is not in the Patient compartment, so a %s-level export has none", t, params.Level)
			}
			if err := s.fhir.MaySearch(ctx, p, t); err != nil {
				return Params{}, err
			}
		}
	} else {
		params.Types = []string{}
		for _, t := range candidates {
			if s.fhir.MaySearch(ctx, p, t) == nil {
				params.Types = append(params.Types, t)
			} else if _, filtered := params.Filters[t]; filtered {
				return Params{}, fault.Forbidden("access denied: _typeFilter names %s, which this principal may not search", t)
			}
		}
	}
	for typ, qs := range params.Filters {
		if !slices.Contains(candidates, typ) {
			return Params{}, fault.Invalid("_typeFilter names %s, which a %s-level export does not hold", typ, params.Level)
		}
		for _, q := range qs {
			if err := s.fhir.CheckExportFilter(ctx, typ, q); err != nil {
				return Params{}, err
			}
		}
	}
	if params.Level == LevelGroup {
		members, err := s.fhir.GroupPatients(ctx, p, params.Group)
		if err != nil {
			return Params{}, err
		}
		params.Patients = members
	}
	return params, nil
}

// manifest is the IG's "Complete Status" body.
type manifest struct {
	TransactionTime     string       `json:"transactionTime"`
	Request             string       `json:"request"`
	RequiresAccessToken bool         `json:"requiresAccessToken"`
	Output              []outputFile `json:"output"`
	Error               []outputFile `json:"error"`
}

type outputFile struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Count int    `json:"count"`
}

// status answers a poll: 202 with X-Progress while running, the manifest
// when done, the failure's OperationOutcome when failed.
func (s *Service) status(w http.ResponseWriter, r *http.Request, p auth.Principal, base, id string) error {
	j, err := s.lookup(r.Context(), p, id)
	if err != nil {
		return err
	}
	switch j.Status {
	case store.ExportRunning:
		w.Header().Set("X-Progress", progress(j))
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusAccepted)
		return nil
	case store.ExportFailed:
		status := j.ErrorStatus
		if status < 400 || status > 599 {
			status = http.StatusInternalServerError
		}
		fhir.WriteOutcome(w, status, "error", "exception", "the export failed: "+j.Error)
		return nil
	}
	files, err := s.st.ExportFiles(r.Context(), j.ProjectID, j.ID)
	if err != nil {
		return err
	}
	m := manifest{TransactionTime: j.TransactionTime.UTC().Format(time.RFC3339Nano), Request: j.Request, RequiresAccessToken: true,
		Output: []outputFile{}, Error: []outputFile{}}
	for _, f := range files {
		m.Output = append(m.Output, outputFile{Type: f.Type, URL: base + "/" + filePath + "/" + j.ID + "/" + strconv.Itoa(f.Seq), Count: f.Count})
	}
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Expires", j.UpdatedAt.Add(s.cfg.Keep).UTC().Format(http.TimeFormat))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(body)
	return err
}

// progress is a running job's X-Progress.
func progress(j job) string {
	typ := "finishing"
	if j.cur.Type < len(j.params.Types) {
		typ = "exporting " + j.params.Types[j.cur.Type]
	}
	return fmt.Sprintf("%s: %d resources in %d files (type %d of %d)", typ, j.Written, j.cur.Files,
		min(j.cur.Type+1, len(j.params.Types)), len(j.params.Types))
}

// maxListCount bounds a page of the job list.
const maxListCount = 1000

// jobItem is a job in the list.
type jobItem struct {
	ID              string `json:"id"`
	Status          string `json:"status"` // running, done, failed
	Request         string `json:"request"`
	TransactionTime string `json:"transactionTime"`
	StatusURL       string `json:"statusUrl"`
	Progress        string `json:"progress,omitempty"`
	Written         int64  `json:"written"`
	Error           string `json:"error,omitempty"`
}

// list answers GET $export-poll (a Ward extension, not in the IG): a page
// of the caller's own jobs, newest first, as JSON with their total;
// _count (1 to 1,000, default 1,000) and _offset choose the page. Another
// principal's jobs are never in it, as the status URL hides them.
func (s *Service) list(w http.ResponseWriter, r *http.Request, p auth.Principal, base string) error {
	count, offset := maxListCount, 0
	for name, dst := range map[string]*int{"_count": &count, "_offset": &offset} {
		v := r.URL.Query().Get(name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || (name == "_count" && (n < 1 || n > maxListCount)) {
			return fault.Invalid("%s must be a whole number (_count 1 to %d, _offset 0 or more)", name, maxListCount)
		}
		*dst = n
	}
	all, total, err := s.st.ListExportJobs(r.Context(), p.ProjectID, owner(p), count, offset)
	if err != nil {
		return err
	}
	out := struct {
		Total int       `json:"total"`
		Jobs  []jobItem `json:"jobs"`
	}{Total: total, Jobs: []jobItem{}}
	for _, sj := range all {
		j, err := decode(sj)
		if err != nil {
			return err
		}
		if !j.who.same(p) {
			continue
		}
		it := jobItem{ID: j.ID, Status: j.Status, Request: j.Request, TransactionTime: j.TransactionTime.UTC().Format(time.RFC3339Nano),
			StatusURL: base + "/" + pollPath + "/" + j.ID, Written: j.Written}
		switch j.Status {
		case store.ExportRunning:
			it.Progress = progress(j)
		case store.ExportFailed:
			it.Error = j.Error
		}
		out.Jobs = append(out.Jobs, it)
	}
	body, err := json.Marshal(out)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(body)
	return err
}

// cancel deletes a job and its files (IG "Delete a Bulk Data Request"); a
// runner holding it stops at its next checkpoint.
func (s *Service) cancel(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
	j, err := s.lookup(r.Context(), p, id)
	if err != nil {
		return err
	}
	if _, err := s.st.DeleteExportJob(r.Context(), j.ProjectID, j.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errNoJob
		}
		return err
	}
	if err := s.files.DeleteExports(r.Context(), j.ProjectID, j.ID+"/"); err != nil {
		// The rows are gone, so nothing serves the files: a leftover is
		// only space.
		s.log.WarnContext(r.Context(), "export: delete a cancelled job's files", "job", j.ID, "err", err)
	}
	fhir.WriteOutcome(w, http.StatusAccepted, "information", "informational", "the export was cancelled and its files deleted")
	return nil
}

// download streams one output file to the principal that started the job,
// which must still be allowed to search its type.
func (s *Service) download(w http.ResponseWriter, r *http.Request, p auth.Principal, id, seq string) error {
	j, err := s.lookup(r.Context(), p, id)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(seq)
	if err != nil {
		return fault.NotFound("no such export file")
	}
	files, err := s.st.ExportFiles(r.Context(), j.ProjectID, j.ID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(files, func(f store.ExportFile) bool { return f.Seq == n })
	if i < 0 {
		return fault.NotFound("no such export file")
	}
	f := files[i]
	if err := s.fhir.MaySearch(r.Context(), p, f.Type); err != nil {
		return err
	}
	rc, size, err := s.files.OpenExport(r.Context(), j.ProjectID, f.Path)
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/fhir+ndjson")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	_, err = io.Copy(w, rc)
	if err != nil {
		// Headers are out: the client sees a short body.
		s.log.WarnContext(r.Context(), "export: download cut", "job", j.ID, "err", err)
	}
	return nil
}
