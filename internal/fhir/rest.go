package fhir

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/search"
)

// Handler serves the FHIR REST API under a base path for authenticated
// principals; the server authenticates and hands over the principal.
type Handler struct {
	svc  *Service
	base string // public base URL, e.g. http://127.0.0.1:8080/fhir
	path string // base path, e.g. /fhir
	log  *slog.Logger
	ops  map[string]Operation // "Type/$name" -> instance operation
	// endpoints serve whole paths: "$name" (system) or "Type/$name" (type
	// level) and what follows them.
	endpoints map[string]Endpoint
}

// Endpoint serves every request, any method, whose path under the base
// starts with the name it was registered under ("$export",
// "Patient/$export", "$export-poll"); rest is the path's segments after
// it. It checks its own access and answers in its own formats.
type Endpoint func(w http.ResponseWriter, r *http.Request, p auth.Principal, rest []string) error

// Endpoint registers e at name: "$op" or "Type/$op".
func (h *Handler) Endpoint(name string, e Endpoint) {
	if h.endpoints == nil {
		h.endpoints = map[string]Endpoint{}
	}
	h.endpoints[name] = e
}

// endpoint finds the endpoint a path belongs to.
func (h *Handler) endpoint(path string) (Endpoint, []string) {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	if e := h.endpoints[seg[0]]; e != nil && strings.HasPrefix(seg[0], "$") {
		return e, seg[1:]
	}
	if len(seg) >= 2 && strings.HasPrefix(seg[1], "$") {
		if e := h.endpoints[seg[0]+"/"+seg[1]]; e != nil {
			return e, seg[2:]
		}
	}
	return nil, nil
}

// Operation serves an instance-level operation, GET or POST
// [base]/[type]/[id]/$[name]. It checks its own access.
type Operation func(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error

// Operation registers an instance operation ("$events" on "Subscription").
func (h *Handler) Operation(typ, name string, op Operation) {
	if h.ops == nil {
		h.ops = map[string]Operation{}
	}
	h.ops[typ+"/"+name] = op
}

// Base is the public base URL.
func (h *Handler) Base() string { return h.base }

// NewHandler returns the REST handler for svc at publicBase (its URL path is
// the mount point).
func NewHandler(svc *Service, publicBase string, log *slog.Logger) *Handler {
	u, _ := url.Parse(publicBase)
	h := &Handler{svc: svc, base: strings.TrimSuffix(publicBase, "/"), path: strings.TrimSuffix(u.Path, "/"), log: log}
	h.Operation("Patient", "$everything", h.everything)
	h.registerTerminology()
	return h
}

// Path is the mount point.
func (h *Handler) Path() string { return h.path }

// Service is the FHIR service behind the handler, for callers that act on
// resources outside a FHIR request (the SMART patient picker).
func (h *Handler) Service() *Service { return h.svc }

// Fail writes err as an OperationOutcome (for errors before ServeFHIR, such
// as authentication).
func (h *Handler) Fail(w http.ResponseWriter, r *http.Request, err error) {
	if fault.ClientGone(r.Context(), err) {
		// Nobody reads the answer and nothing failed here.
		h.log.DebugContext(r.Context(), "client went away", "err", err, "where", r.Method+" "+r.URL.Path)
		w.WriteHeader(fault.StatusClientGone)
		return
	}
	status, oo := errorOutcome(r.Context(), h.log, r.Method+" "+r.URL.Path, err)
	if secs := fault.RetryAfter(err); secs > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	writeFHIR(w, status, oo)
}

// ServeFHIR routes one FHIR request for principal p.
func (h *Handler) ServeFHIR(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if err := h.route(w, r, p); err != nil {
		h.Fail(w, r, err)
	}
}

func (h *Handler) route(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if e, rest := h.endpoint(strings.TrimPrefix(r.URL.Path, h.path)); e != nil {
		return e(w, r, p, rest)
	}
	in := parseInteraction(r.Method, strings.TrimPrefix(r.URL.Path, h.path), r.URL.RawQuery)
	if err := negotiate(r, in); err != nil {
		return err
	}
	switch in.kind {
	case kindBatch:
		return h.bundle(w, r, p)
	case kindCapabilities:
		return h.metadata(w, r)
	case kindHistorySystem, kindHistoryType, kindHistoryInstance:
		return h.history(w, r, p, in.typ, in.id)
	case kindSearch:
		return h.search(w, r, p, in.typ, r.URL.Query())
	case kindSearchPost:
		vals, err := formValues(r)
		if err != nil {
			return err
		}
		return h.search(w, r, p, in.typ, vals)
	case kindSearchSystem, kindSearchSystemPost, kindSearchCompartment, kindSearchCompartmentPost:
		vals := r.URL.Query()
		if in.kind == kindSearchSystemPost || in.kind == kindSearchCompartmentPost {
			var err error
			if vals, err = formValues(r); err != nil {
				return err
			}
		}
		page, err := h.searchIn(r.Context(), h.svc, p, in, vals, preferLenient(r))
		if err != nil {
			return err
		}
		return h.sendBundle(w, h.searchBundle(page), "the search result", "fewer results with _count or fewer elements with _elements")
	case kindValidate:
		return h.validateOp(w, r, p, in.typ, in.id)
	case kindCreate:
		if nativeBinary(r, in) {
			return h.putBinary(w, r, p, "")
		}
		return h.create(w, r, p, in.typ)
	case kindConditionalUpdate:
		body, err := readBody(r)
		if err != nil {
			return err
		}
		res, created, err := h.svc.ConditionalUpdate(r.Context(), p, in.typ, in.query, body, r.Header.Get("If-Match"))
		if err != nil {
			return err
		}
		return h.sendWrite(w, r, map[bool]int{true: http.StatusCreated, false: http.StatusOK}[created], res)
	case kindConditionalPatch:
		body, err := readBody(r)
		if err != nil {
			return err
		}
		res, err := h.svc.ConditionalPatch(r.Context(), p, in.typ, in.query, body, r.Header.Get("If-Match"))
		if err != nil {
			return err
		}
		return h.sendWrite(w, r, http.StatusOK, res)
	case kindConditionalDelete:
		if _, err := h.svc.ConditionalDelete(r.Context(), p, in.typ, in.query); err != nil {
			return err
		}
		writeFHIR(w, http.StatusOK, outcome("information", "informational", "conditional delete done"))
		return nil
	case kindRead:
		res, err := h.svc.Read(r.Context(), p, in.typ, in.id)
		if err != nil {
			return err
		}
		if in.typ == "Binary" {
			return h.sendBinary(w, r, p, res, wantsNativeBinary(r, in))
		}
		return h.sendResource(w, r, http.StatusOK, res)
	case kindUpdate:
		if nativeBinary(r, in) {
			return h.putBinary(w, r, p, in.id)
		}
		return h.update(w, r, p, in.typ, in.id)
	case kindPatch:
		body, err := readBody(r)
		if err != nil {
			return err
		}
		res, err := h.svc.Patch(r.Context(), p, in.typ, in.id, body, r.Header.Get("If-Match"))
		if err != nil {
			return err
		}
		return h.sendWrite(w, r, http.StatusOK, res)
	case kindDelete:
		if err := h.svc.Delete(r.Context(), p, in.typ, in.id); err != nil {
			return err
		}
		writeFHIR(w, http.StatusOK, outcome("information", "informational", fmt.Sprintf("%s/%s deleted", in.typ, in.id)))
		return nil
	case kindOperation:
		op := h.ops[in.typ+"/"+in.op]
		if op == nil {
			return fault.NotSupported("operation %s is not supported on %s", in.op, in.typ)
		}
		return op(w, r, p, in.id)
	case kindVRead:
		res, err := h.svc.VRead(r.Context(), p, in.typ, in.id, in.version)
		if err != nil {
			return err
		}
		if in.typ == "Binary" {
			return h.sendBinary(w, r, p, res, wantsNativeBinary(r, in))
		}
		return h.sendResource(w, r, http.StatusOK, res)
	}
	return fault.NotFound("no FHIR interaction %s %s", r.Method, r.URL.Path)
}

func readBody(r *http.Request) ([]byte, error) { return fault.ReadBody(r.Body) }

// formValues merges the URL query and a form body (POST _search).
func formValues(r *http.Request) (url.Values, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fault.Invalid("the _search body must be application/x-www-form-urlencoded")
	}
	for k, v := range r.URL.Query() {
		vals[k] = append(vals[k], v...)
	}
	return vals, nil
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request, p auth.Principal, typ string) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	res, created, err := h.svc.Create(r.Context(), p, typ, body, r.Header.Get("If-None-Exist"))
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return h.sendWrite(w, r, status, res)
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request, p auth.Principal, typ, id string) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	res, created, err := h.svc.Update(r.Context(), p, typ, id, body, r.Header.Get("If-Match"))
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return h.sendWrite(w, r, status, res)
}

// setVersionHeaders sets ETag and Last-Modified for a resource version.
func setVersionHeaders(w http.ResponseWriter, res Resource) {
	w.Header().Set("ETag", fmt.Sprintf(`W/"%d"`, res.VersionID))
	w.Header().Set("Last-Modified", res.LastUpdated.UTC().Format(http.TimeFormat))
}

// notModified is a conditional read's answer (R4 http.html#cread):
// If-None-Match names the current version, or, without it,
// If-Modified-Since is no earlier than the last change (HTTP dates have
// whole seconds).
func notModified(r *http.Request, res Resource) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		etag := fmt.Sprintf(`W/"%d"`, res.VersionID)
		return inm == etag || inm == strings.TrimPrefix(etag, "W/") || inm == "*"
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		t, err := http.ParseTime(ims)
		return err == nil && !res.LastUpdated.Truncate(time.Second).After(t)
	}
	return false
}

func (h *Handler) sendResource(w http.ResponseWriter, r *http.Request, status int, res Resource) error {
	setVersionHeaders(w, res)
	if notModified(r, res) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	content := res.Content
	if r.URL.RawQuery != "" {
		elements, summary, err := readProjection(r.URL.Query())
		if err != nil {
			return err
		}
		content = project(content, elements, summary)
	}
	writeFHIR(w, status, []byte(content))
	return nil
}

// sendWrite answers a create/update/patch, honouring Prefer: return=.
func (h *Handler) sendWrite(w http.ResponseWriter, r *http.Request, status int, res Resource) error {
	setVersionHeaders(w, res)
	w.Header().Set("Location", fmt.Sprintf("%s/%s/%s/_history/%d", h.base, res.Type, res.ID, res.VersionID))
	switch preferReturn(r) {
	case "minimal":
		w.WriteHeader(status)
	case "OperationOutcome":
		writeFHIR(w, status, outcome("information", "informational", fmt.Sprintf("%s/%s version %d stored", res.Type, res.ID, res.VersionID)))
	default:
		writeFHIR(w, status, res.Content)
	}
	return nil
}

func preferReturn(r *http.Request) string {
	for _, part := range strings.Split(r.Header.Get("Prefer"), ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok && k == "return" {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

func preferLenient(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Prefer"), "handling=lenient")
}

func (h *Handler) search(w http.ResponseWriter, r *http.Request, p auth.Principal, typ string, vals url.Values) error {
	if err := checkType(typ); err != nil {
		return err
	}
	for _, k := range []string{"_format", "_pretty"} {
		delete(vals, k)
	}
	q, err := search.ParseQuery(typ, vals, preferLenient(r))
	if err != nil {
		return searchErr(err)
	}
	page, err := h.svc.Search(r.Context(), p, q)
	if err != nil {
		return err
	}
	return h.sendBundle(w, h.searchBundle(page), "the search result", "fewer results with _count or fewer elements with _elements")
}

// sendBundle writes b unless it is larger than the response limit: then a
// 413 says what it was and what to ask for instead.
func (h *Handler) sendBundle(w http.ResponseWriter, b bundle, what, ask string) error {
	out, err := b.encode()
	if err != nil {
		return err
	}
	if limit := h.svc.cfg.MaxResponseBytes; limit > 0 && len(out) > limit {
		return fault.TooLarge("%s is %d bytes, over the %d byte limit: ask for %s", what, len(out), limit, ask)
	}
	writeFHIR(w, http.StatusOK, out)
	return nil
}

func (h *Handler) history(w http.ResponseWriter, r *http.Request, p auth.Principal, typ, id string) error {
	hp, err := ParseHistoryParams(r.URL.Query().Get, h.svc.cfg.DefaultCount, h.svc.cfg.MaxCount)
	if err != nil {
		return err
	}
	rows, total, err := h.svc.History(r.Context(), p, typ, id, hp)
	if err != nil {
		return err
	}
	writeFHIR(w, http.StatusOK, h.historyBundle(r, typ, id, hp, rows, total))
	return nil
}

// bundleEntry and bundle are the response Bundle shapes.
type bundleEntry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource,omitempty"`
	Search   *entrySearch    `json:"search,omitempty"`
	Request  *entryRequest   `json:"request,omitempty"`
	Response *entryResponse  `json:"response,omitempty"`
}

type entrySearch struct {
	Mode string `json:"mode"`
}

type entryRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

type entryResponse struct {
	Status       string          `json:"status"`
	Location     string          `json:"location,omitempty"`
	Etag         string          `json:"etag,omitempty"`
	LastModified string          `json:"lastModified,omitempty"`
	Outcome      json.RawMessage `json:"outcome,omitempty"`
}

type bundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

type bundle struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id,omitempty"`
	Type         string        `json:"type"`
	Total        *int          `json:"total,omitempty"`
	Link         []bundleLink  `json:"link,omitempty"`
	Entry        []bundleEntry `json:"entry"`
}

// encode writes the bundle as JSON with each entry's resource copied as
// stored: encoding/json would re-validate and re-compact every resource
// (RawMessage), a sixth of a search's CPU. Stored resources are compact
// JSON already (Ward marshalled them).
func (b bundle) encode() ([]byte, error) {
	entries := b.Entry
	head, err := json.Marshal(struct {
		ResourceType string       `json:"resourceType"`
		ID           string       `json:"id,omitempty"`
		Type         string       `json:"type"`
		Total        *int         `json:"total,omitempty"`
		Link         []bundleLink `json:"link,omitempty"`
	}{b.ResourceType, b.ID, b.Type, b.Total, b.Link})
	if err != nil {
		return nil, err
	}
	size := len(head) + 16
	for _, e := range entries {
		size += len(e.Resource) + 200
	}
	out := make([]byte, 0, size)
	out = append(out, head[:len(head)-1]...)
	out = append(out, `,"entry":[`...)
	for i, e := range entries {
		if i > 0 {
			out = append(out, ',')
		}
		res := e.Resource
		e.Resource = nil
		fields := true // something precedes the resource
		if e.Search != nil && e.Request == nil && e.Response == nil && plainJSON(e.FullURL) && plainJSON(e.Search.Mode) {
			// A search entry, the bulk of big bundles: written directly,
			// as encoding/json writes it, without reflection.
			out = append(out, '{')
			if e.FullURL != "" {
				out = append(append(append(out, `"fullUrl":"`...), e.FullURL...), `",`...)
			}
			out = append(append(append(out, `"search":{"mode":"`...), e.Search.Mode...), `"}`...)
		} else {
			eb, err := json.Marshal(e)
			if err != nil {
				return nil, err
			}
			out = append(out, eb[:len(eb)-1]...)
			fields = len(eb) > 2
		}
		if len(res) > 0 {
			if fields {
				out = append(out, ',')
			}
			out = append(append(out, `"resource":`...), res...)
		}
		out = append(out, '}')
	}
	return append(out, ']', '}'), nil
}

// plainJSON reports whether s is written in JSON as it is, between quotes
// (encoding/json escapes control characters, quotes, backslashes, <, > and
// &, and checks UTF-8).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c >= 0x80, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

func (h *Handler) fullURL(res Resource) string { return h.base + "/" + res.Type + "/" + res.ID }

func (h *Handler) searchBundle(page Page) bundle {
	b := bundle{ResourceType: "Bundle", ID: newID(), Type: "searchset", Entry: []bundleEntry{}}
	if page.Total >= 0 {
		t := page.Total
		b.Total = &t
	}
	q := *page.Query
	q.Count = page.Count
	link := func(rel string, offset int) {
		if page.link != nil {
			b.Link = append(b.Link, bundleLink{Relation: rel, URL: page.link(page.Count, offset)})
			return
		}
		q.Offset = offset
		b.Link = append(b.Link, bundleLink{Relation: rel, URL: h.base + "/" + q.ResourceType + "?" + q.Encode()})
	}
	link("self", page.Offset)
	if page.Count > 0 && len(page.Matches) == page.Count && (page.Total < 0 || page.Offset+page.Count < page.Total) {
		link("next", page.Offset+page.Count)
	}
	if page.Offset > 0 {
		link("previous", max(0, page.Offset-page.Count))
	}
	for _, res := range page.Matches {
		b.Entry = append(b.Entry, bundleEntry{FullURL: h.fullURL(res), Resource: subset(bundled(res), page.Query), Search: &entrySearch{Mode: "match"}})
	}
	for _, res := range page.Included {
		// _summary applies to every resource returned; _elements names
		// elements of the searched type only.
		b.Entry = append(b.Entry, bundleEntry{FullURL: h.fullURL(res), Resource: project(bundled(res), nil, page.Query.Summary), Search: &entrySearch{Mode: "include"}})
	}
	if page.Query.Summary == "count" {
		b.Entry = nil
	}
	return b
}

func (h *Handler) historyBundle(r *http.Request, typ, id string, hp HistoryParams, rows []Resource, total int) bundle {
	b := bundle{ResourceType: "Bundle", ID: newID(), Type: "history", Total: &total, Entry: []bundleEntry{}}
	self := h.base
	for _, s := range []string{typ, id} {
		if s != "" {
			self += "/" + s
		}
	}
	self += "/_history"
	mk := func(offset int) string {
		v := url.Values{"_count": {strconv.Itoa(hp.Count)}}
		if offset > 0 {
			v.Set("_offset", strconv.Itoa(offset))
		}
		return self + "?" + v.Encode()
	}
	b.Link = append(b.Link, bundleLink{Relation: "self", URL: mk(hp.Offset)})
	if hp.Offset+len(rows) < total && len(rows) > 0 {
		b.Link = append(b.Link, bundleLink{Relation: "next", URL: mk(hp.Offset + len(rows))})
	}
	for _, res := range rows {
		e := bundleEntry{FullURL: h.fullURL(res), Request: &entryRequest{Method: res.Method, URL: res.Type + "/" + res.ID},
			Response: &entryResponse{Status: "200 OK", Etag: fmt.Sprintf(`W/"%d"`, res.VersionID), LastModified: res.LastUpdated.UTC().Format("2006-01-02T15:04:05.000Z07:00")}}
		switch {
		case res.Deleted:
			e.Response.Status = "204 No Content"
		case res.Method == "POST":
			e.Response.Status = "201 Created"
			e.Resource = bundled(res)
		default:
			e.Resource = bundled(res)
		}
		if res.Method == "PATCH" {
			e.Request.Method = "PATCH"
		}
		if res.Method == "PUT" || res.Method == "PATCH" || res.Method == "DELETE" {
			e.Request.URL = res.Type + "/" + res.ID
		} else {
			e.Request.URL = res.Type
		}
		b.Entry = append(b.Entry, e)
	}
	return b
}
