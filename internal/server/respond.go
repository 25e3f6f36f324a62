package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/wardhealth/ward/internal/fault"
)

// writeJSON sends v with status. v is encoded before the status goes
// out: a value that does not encode is a bug, and its panic reaches the
// recovering middleware (logged, a 500) while no byte is sent. A failed
// write is a client gone mid-answer: nothing to do.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var body []byte
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			panic(fmt.Sprintf("encode a %T response: %v", v, err))
		}
		body = append(b, '\n')
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// apiError is the Project API error shape the SDK parses.
type apiError struct {
	Message string `json:"message"`
	Code    int    `json:"code"`
}

// writeError maps err to its status and client-safe message, in the one
// place where that happens. Internal causes are logged, never sent.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if fault.ClientGone(r.Context(), err) {
		// Nobody reads the answer and nothing failed here.
		s.log.DebugContext(r.Context(), "client went away", "err", err, "path", logPath(r.URL.Path))
		w.WriteHeader(fault.StatusClientGone)
		return
	}
	status, msg := fault.Public(err)
	if status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "err", err, "path", logPath(r.URL.Path))
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if secs := fault.RetryAfter(err); secs > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	// For retryable statuses the code equals the status, so the SDK retries.
	writeJSON(w, status, apiError{Message: msg, Code: status})
}

// decodeJSON reads a JSON object body into v. An empty body is an empty
// object (the SDK sends none on PATCH without fields).
func decodeJSON(r *http.Request, v any) error {
	body, err := fault.ReadBody(r.Body)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(body)) == "" {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fault.Invalid("request body: %s", fault.JSONProblem(err))
	}
	return nil
}
