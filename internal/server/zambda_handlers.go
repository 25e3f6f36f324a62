package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/zambda"
)

// zambdaRoutes are /v1/zambda and /v1/secret.
func (s *Server) zambdaRoutes() []route {
	if s.zambda == nil {
		return nil
	}
	fn := withID("Zambda:Function:")
	return []route{
		{method: "GET", path: "/v1/zambda", action: "Zambda:ListAllFunctions", resource: fixed("Zambda:Function:*"), handle: ofProject(s.zambda.List)},
		{method: "POST", path: "/v1/zambda", action: "Zambda:CreateFunction", resource: fixed("Zambda:Function:*"), handle: withBody(s.zambda.Create)},
		{method: "GET", path: "/v1/zambda/{id}", action: "Zambda:GetFunction", resource: fn, handle: byID(s.zambda.Get)},
		{method: "PATCH", path: "/v1/zambda/{id}", action: "Zambda:UpdateFunction", resource: fn, handle: byIDWithBody(s.zambda.Update)},
		{method: "DELETE", path: "/v1/zambda/{id}", action: "Zambda:DeleteFunction", resource: fn, handle: deleteByID(s.zambda.Delete)},
		{method: "POST", path: "/v1/zambda/{id}/s3-upload", action: "Zambda:UpdateFunction", resource: fn, handle: s.zambdaUpload},
		{method: "POST", path: "/v1/zambda/{id}/execute", action: "Zambda:InvokeFunction", resource: fn, handle: s.execute},
		// Only http_open functions answer here (checked by the service).
		{method: "POST", path: "/v1/zambda/{id}/execute-public", public: true, handle: s.executePublic},
		{method: "POST", path: "/v1/zambda/{id}/logStream", action: "Zambda:ReadLogs", resource: fn, handle: byIDWithBody(s.zambda.LogStreams)},
		{method: "POST", path: "/v1/zambda/{id}/logStream/search", action: "Zambda:ReadLogs", resource: fn, handle: byIDWithBody(s.zambda.SearchLogs)},
		{method: "POST", path: "/v1/zambda/{id}/logStream/{stream}", action: "Zambda:ReadLogs", resource: fn, handle: s.logStream},

		{method: "GET", path: "/v1/secret", action: "Zambda:ListAllSecrets", resource: fixed("Zambda:Secret:*"), handle: ofProject(s.zambda.ListSecrets)},
		{method: "POST", path: "/v1/secret", action: "Zambda:CreateSecret", resource: fixed("Zambda:Secret:*"), handle: s.setSecret},
		{method: "GET", path: "/v1/secret/{name}", action: "Zambda:GetSecret", resource: withName("Zambda:Secret:"), handle: s.getSecret},
		{method: "DELETE", path: "/v1/secret/{name}", action: "Zambda:DeleteSecret", resource: withName("Zambda:Secret:"), handle: s.deleteSecret},
	}
}

func withName(prefix string) func(*http.Request) string {
	return func(r *http.Request) string { return prefix + r.PathValue("name") }
}

func (s *Server) zambdaUpload(w http.ResponseWriter, r *http.Request, c call) error {
	var in struct {
		Filename string `json:"filename"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	u, err := s.zambda.UploadURL(r.Context(), c.p.ProjectID, r.PathValue("id"), in.Filename)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"signedUrl": u})
	return nil
}

// executeCall reads the payload (the whole JSON body, "{}" when empty) and
// the headers the function sees.
func executeCall(r *http.Request) (zambda.Call, error) {
	body, err := fault.ReadBody(r.Body)
	if err != nil {
		return zambda.Call{}, err
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		body = []byte("{}")
	}
	if !json.Valid(body) {
		return zambda.Call{}, fault.Invalid("the execute payload must be JSON")
	}
	headers := make(map[string]string, len(r.Header)+1)
	for k, v := range r.Header {
		headers[strings.ToLower(k)] = v[0]
	}
	// As API Gateway does, so handlers written for Oystehr find it.
	if a := r.Header.Get("Authorization"); a != "" {
		headers["Authorization"] = a
	}
	return zambda.Call{IDOrName: r.PathValue("id"), Payload: body, Headers: headers, RequestID: requestID(r.Context()), Trigger: "http"}, nil
}

func (s *Server) execute(w http.ResponseWriter, r *http.Request, c call) error {
	zc, err := executeCall(r)
	if err != nil {
		return err
	}
	zc.Caller = &c.p
	return s.runZambda(w, r, c.p.ProjectID, zc)
}

func (s *Server) executePublic(w http.ResponseWriter, r *http.Request, _ call) error {
	zc, err := executeCall(r)
	if err != nil {
		return err
	}
	zc.Public = true
	project := projectHeader(r)
	if project == "" {
		// By id, the id names the project; by name, the header must.
		if project, err = s.zambda.ProjectOf(r.Context(), zc.IDOrName); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fault.NotFound("no zambda %q (call a zambda by name with the x-oystehr-project-id header)", zc.IDOrName)
			}
			return err
		}
	}
	return s.runZambda(w, r, project, zc)
}

func (s *Server) runZambda(w http.ResponseWriter, r *http.Request, projectID string, zc zambda.Call) error {
	// A call refused for lack of a worker is an error (429 with
	// Retry-After, in writeError); a handler's own status passes as is.
	out, err := s.zambda.Execute(r.Context(), projectID, zc)
	if err != nil {
		return err
	}
	writeJSON(w, out.Status, out)
	return nil
}

func (s *Server) logStream(w http.ResponseWriter, r *http.Request, c call) error {
	var in zambda.StreamInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	res, err := s.zambda.LogStream(r.Context(), c.p.ProjectID, r.PathValue("id"), r.PathValue("stream"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) setSecret(w http.ResponseWriter, r *http.Request, c call) error {
	var in struct {
		Name  *string `json:"name"`
		Value *string `json:"value"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if in.Name == nil || in.Value == nil {
		return fault.Invalid("a secret needs a name and a value")
	}
	sec, err := s.zambda.SetSecret(r.Context(), c.p.ProjectID, *in.Name, *in.Value)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sec)
	return nil
}

func (s *Server) getSecret(w http.ResponseWriter, r *http.Request, c call) error {
	sec, err := s.zambda.GetSecret(r.Context(), c.p.ProjectID, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sec)
	return nil
}

func (s *Server) deleteSecret(w http.ResponseWriter, r *http.Request, c call) error {
	if err := s.zambda.DeleteSecret(r.Context(), c.p.ProjectID, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
