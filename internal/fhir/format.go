package fhir

import (
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/wardhealth/ward/internal/fault"
)

// formatError is a refusal over formats: 406 (no acceptable answer) or 415
// (a body Ward cannot read).
type formatError struct {
	status int
	msg    string
}

func (e *formatError) Error() string { return e.msg }

// Unwrap makes it a client error for callers that only know fault kinds.
func (e *formatError) Unwrap() error { return fault.ErrInvalid }

// Ward speaks FHIR JSON only (R4 http.html#mime): these name it.
var jsonFormats = map[string]bool{"json": true, "application/json": true, "application/fhir+json": true, "application/json+fhir": true}

// xmlFormat reports whether a media type or _format value names FHIR's
// XML or RDF format, which Ward does not serve.
func xmlFormat(t string) bool {
	switch t {
	case "xml", "text/xml", "application/xml", "application/fhir+xml", "application/xml+fhir",
		"ttl", "turtle", "text/turtle", "application/fhir+turtle", "application/x-turtle":
		return true
	}
	return false
}

// mediaType is the lower-cased type of a Content-Type or Accept entry.
func mediaType(s string) string {
	t, _, err := mime.ParseMediaType(s)
	if err != nil {
		t, _, _ = strings.Cut(s, ";")
	}
	return strings.ToLower(strings.TrimSpace(t))
}

// acceptsJSON reports whether the request allows a FHIR JSON answer: a
// _format naming JSON wins over Accept (R4 http.html#parameters); an
// Accept allows it unless every entry names another type (or has q=0).
func acceptsJSON(r *http.Request) error {
	if f := r.URL.Query().Get("_format"); f != "" {
		// An unescaped "+" in a query is a space: application/fhir json.
		if jsonFormats[mediaType(strings.ReplaceAll(f, " ", "+"))] {
			return nil
		}
		return &formatError{http.StatusNotAcceptable, "_format " + clipText(f) + " is not served: Ward serves FHIR JSON only (_format=json)"}
	}
	accept := r.Header.Values("Accept")
	if len(accept) == 0 {
		return nil
	}
	for _, a := range strings.Split(strings.Join(accept, ","), ",") {
		t, params, err := mime.ParseMediaType(strings.TrimSpace(a))
		if err != nil {
			t = mediaType(a)
		}
		if q := strings.TrimSpace(params["q"]); q == "0" || q == "0.0" || q == "0.00" || q == "0.000" {
			continue
		}
		if t == "" || t == "*/*" || t == "application/*" || jsonFormats[t] {
			return nil
		}
	}
	return &formatError{http.StatusNotAcceptable, "Accept " + clipText(strings.Join(accept, ", ")) + " allows no format Ward serves: it serves FHIR JSON only (application/fhir+json)"}
}

// readableBody refuses a request body in a format Ward does not read
// (XML or RDF) with 415; other types are read as JSON, as before.
func readableBody(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct != "" && xmlFormat(mediaType(ct)) {
		return &formatError{http.StatusUnsupportedMediaType, "Content-Type " + clipText(ct) + " is not read: Ward takes FHIR JSON only (application/fhir+json)"}
	}
	return nil
}

// clipText bounds caller text quoted back in an error.
func clipText(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return `"` + s + `"`
}

// negotiate checks, before any work, that Ward can read the request's body
// and answer in a format the request accepts.
func negotiate(r *http.Request, in interaction) error {
	if wantsNativeBinary(r, in) {
		return nil // any type: the content's own
	}
	switch in.kind {
	case kindCreate, kindUpdate, kindPatch, kindConditionalUpdate, kindConditionalPatch, kindBatch, kindValidate:
		if err := readableBody(r); err != nil && !nativeBinary(r, in) {
			return err
		}
	}
	return acceptsJSON(r)
}

// JSONMediaType reports whether a Content-Type names FHIR JSON (or plain
// JSON, as clients send it): the bodies Ward reads.
func JSONMediaType(contentType string) bool { return jsonFormats[mediaType(contentType)] }

// UnsupportedMediaType is a 415 OperationOutcome: a body in a format an
// operation does not read.
func UnsupportedMediaType(format string, args ...any) error {
	return &formatError{http.StatusUnsupportedMediaType, fmt.Sprintf(format, args...)}
}
