package fhir

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/wardhealth/ward/internal/auth"
)

// nativeBinary reports whether a Binary create or update sends the content
// itself (any Content-Type but FHIR JSON's).
func nativeBinary(r *http.Request, in interaction) bool {
	return in.typ == "Binary" && (in.kind == kindCreate || in.kind == kindUpdate) && !fhirBody(r.Header.Get("Content-Type"))
}

// wantsNativeBinary reports whether a Binary read asks for the content
// itself: no _format, and an Accept that allows no FHIR format (so "*/*",
// which the SDK's fetch sends, still gets the resource).
func wantsNativeBinary(r *http.Request, in interaction) bool {
	if in.typ != "Binary" || (in.kind != kindRead && in.kind != kindVRead) || r.URL.Query().Has("_format") {
		return false
	}
	if acceptsJSON(r) == nil {
		return false
	}
	for _, a := range strings.Split(strings.Join(r.Header.Values("Accept"), ","), ",") {
		// Plain XML may be the content's own type; FHIR's XML or RDF
		// would be the resource, which Ward does not serve (406).
		if t := mediaType(a); t != "" && !strings.Contains(t, "fhir") {
			return true
		}
	}
	return false
}

// putBinary serves a native Binary create (id "") or update.
func (h *Handler) putBinary(w http.ResponseWriter, r *http.Request, p auth.Principal, id string) error {
	res, created, err := h.svc.PutBinary(r.Context(), p, id, BinaryUpload{ContentType: r.Header.Get("Content-Type"),
		SecurityContext: r.Header.Get("X-Security-Context"), Body: r.Body, IfMatch: r.Header.Get("If-Match")})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return h.sendWrite(w, r, status, res)
}

// sendBinary answers a Binary read: the content as it was sent, or, for
// FHIR, the resource with its data (streamed from the blob if there is
// one).
func (h *Handler) sendBinary(w http.ResponseWriter, r *http.Request, p auth.Principal, res Resource, native bool) error {
	_, _, key, public, err := binaryParts(res.Content)
	if err != nil {
		return err
	}
	if !native && (key == "" || r.URL.Query().Has("_summary") || r.URL.Query().Has("_elements")) {
		if key != "" {
			res.Content, err = json.Marshal(public) // without its data: asked for a part
			if err != nil {
				return err
			}
		}
		return h.sendResource(w, r, http.StatusOK, res)
	}
	setVersionHeaders(w, res)
	if notModified(r, res) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	content, err := h.svc.OpenBinary(r.Context(), p.ProjectID, res)
	if err != nil {
		return err
	}
	defer content.Body.Close()
	if native {
		// The content is the caller's: a browser must not run it as a
		// page of Ward's origin.
		w.Header().Set("Content-Type", content.ContentType)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "sandbox; default-src 'none'")
		if content.Size >= 0 {
			w.Header().Set("Content-Length", strconv.FormatInt(content.Size, 10))
		}
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = io.Copy(w, content.Body) // a failure here is the client's connection
		}
		return nil
	}
	// The resource with its data, base64 streamed from the blob.
	head, err := json.Marshal(public)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(head[:len(head)-1])
	_, _ = io.WriteString(w, `,"data":"`)
	enc := base64.NewEncoder(base64.StdEncoding, w)
	_, _ = io.Copy(enc, content.Body)
	_ = enc.Close()
	_, _ = io.WriteString(w, `"}`)
	return nil
}

// BinaryTransfer reports whether a request on the FHIR API at path (under
// the FHIR base) moves a Binary's content itself: a read of a Binary, or a
// create or update with a Content-Type other than FHIR JSON. The server
// gives those its transfer deadline and lets the write's body past the
// request body limit (the BinaryStore bounds it).
func BinaryTransfer(method, path, contentType string) (transfer, unboundedBody bool) {
	in := parseInteraction(method, path, "")
	if in.typ != "Binary" {
		return false, false
	}
	switch in.kind {
	case kindRead, kindVRead:
		return true, false
	case kindCreate, kindUpdate:
		native := !fhirBody(contentType)
		return native, native
	}
	return false, false
}
