package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/wardhealth/ward/internal/z3"
)

// Drag and drop on the Z3 folder page (static/z3drop.js): for each
// dropped file the script asks here for a presigned upload URL (a POST
// with the session's CSRF token, like every form) and PUTs the file to it
// itself, showing its progress. The URL is on Ward's own origin, so the
// CSP's connect-src 'self' holds, and the file does not pass through the
// console (nor its request body limit). The API decides, as for the form:
// Z3:PutObject on the object's path.

type presignAnswer struct {
	URL     string `json:"url,omitempty"`
	Key     string `json:"key,omitempty"`
	Message string `json:"message,omitempty"`
}

func (c *Console) z3Presign(w http.ResponseWriter, r *http.Request, sess session) error {
	bucket, folder := r.PathValue("bucket"), r.PathValue("path")
	if folder != "" && !strings.HasSuffix(folder, "/") {
		folder += "/"
	}
	name := r.PostForm.Get("name")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	if name == "" {
		return writeAnswer(w, http.StatusBadRequest, presignAnswer{Message: "The file has no name."})
	}
	// The API's own path check, here too: the console calls the API past
	// the server's check of raw paths, and the router would clean ".."
	// into another path instead of refusing it.
	if _, _, err := z3.CleanPath(folder + name); err != nil {
		return writeAnswer(w, http.StatusBadRequest, presignAnswer{Message: sentence(err.Error())})
	}
	to, err := c.presign(r, sess, bucket, folder+name, "upload")
	var ae *apiError
	if errors.As(err, &ae) {
		if ae.Status == http.StatusUnauthorized {
			return err // the session is over: handle ends it
		}
		return writeAnswer(w, ae.Status, presignAnswer{Message: sentence(ae.Message)})
	}
	if err != nil {
		return err
	}
	return writeAnswer(w, http.StatusOK, presignAnswer{URL: to, Key: folder + name})
}

func writeAnswer(w http.ResponseWriter, status int, v any) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}
