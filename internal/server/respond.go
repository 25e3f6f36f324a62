package server

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/wardhealth/ward/internal/fault"
)

// writeJSON sends v with status. Encoding errors are only logged: the
// status line is already out.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v == nil {
		return
	}
	if err := json.NewEncoder(w).Encode(v); err != nil {
		slog.Debug("write response", "err", err)
	}
}

// apiError is the Project API error shape the SDK parses.
type apiError struct {
	Message string `json:"message"`
	Code    int    `json:"code"`
}

// writeError maps err to its status and client-safe message, in the one
// place where that happens. Internal causes are logged, never sent.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := fault.Public(err)
	if status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "err", err, "path", r.URL.Path, "request_id", requestID(r.Context()))
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
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fault.TooLarge("request body is larger than the limit of %d bytes", tooBig.Limit)
		}
		return fault.Invalid("could not read the request body")
	}
	if strings.TrimSpace(string(body)) == "" {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fault.Invalid("request body: %s", fault.JSONProblem(err))
	}
	return nil
}
