package fhir

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/schema"
)

// outcomeIssue is one OperationOutcome.issue.
type outcomeIssue struct {
	Severity    string   `json:"severity"`
	Code        string   `json:"code"`
	Details     *text    `json:"details,omitempty"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"`
}

type text struct {
	Text string `json:"text"`
}

type operationOutcome struct {
	ResourceType string         `json:"resourceType"`
	Issue        []outcomeIssue `json:"issue"`
}

func outcome(severity, code, msg string) operationOutcome {
	return operationOutcome{ResourceType: "OperationOutcome", Issue: []outcomeIssue{{Severity: severity, Code: code, Details: &text{msg}}}}
}

// errorOutcome maps err to a status and an OperationOutcome, in one place.
// Internal causes are logged, never sent.
func errorOutcome(ctx context.Context, log *slog.Logger, where string, err error) (int, operationOutcome) {
	var inv *InvalidResource
	if errors.As(err, &inv) {
		oo := operationOutcome{ResourceType: "OperationOutcome"}
		for _, is := range inv.Issues {
			oo.Issue = append(oo.Issue, schemaIssue(is))
		}
		return http.StatusBadRequest, oo
	}
	var un *unprocessable
	if errors.As(err, &un) {
		return http.StatusUnprocessableEntity, outcome("error", "processing", un.msg)
	}
	var fe *formatError
	if errors.As(err, &fe) {
		return fe.status, outcome("error", "not-supported", fe.msg)
	}
	if errors.Is(err, ErrGone) {
		_, msg := fault.Public(err)
		return http.StatusGone, outcome("error", "deleted", msg)
	}
	status, msg := fault.Public(err)
	code := map[int]string{400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 409: "conflict",
		412: "conflict", 413: "too-costly", 429: "throttled", 501: "not-supported", 503: "transient", 507: "no-store"}[status]
	if code == "" {
		code = "exception"
	}
	if status >= 500 {
		log.ErrorContext(ctx, "fhir request failed", "err", err, "where", where)
	}
	return status, outcome("error", code, msg)
}

// schemaIssue is an OperationOutcome.issue for a schema finding; its text
// starts with the element it is about.
func schemaIssue(is schema.Issue) outcomeIssue {
	code := is.Code
	if code == "" {
		code = "invalid"
	}
	return outcomeIssue{Severity: is.Severity, Code: code, Details: &text{is.Expression + ": " + is.Message}, Expression: []string{is.Expression}}
}

// writeResource sends FHIR JSON with a status.
func writeFHIR(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	if b, ok := v.([]byte); ok {
		// A known length: the body goes out unchunked, in fewer writes.
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	}
	w.WriteHeader(status)
	switch b := v.(type) {
	case nil:
	case []byte:
		_, _ = w.Write(b)
	default:
		_ = json.NewEncoder(w).Encode(v)
	}
}

// WriteOutcome writes an OperationOutcome of one issue (for endpoints that
// answer a failure they recorded, such as a failed bulk export).
func WriteOutcome(w http.ResponseWriter, status int, severity, code, msg string) {
	writeFHIR(w, status, outcome(severity, code, msg))
}
