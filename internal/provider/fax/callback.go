package fax

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net/url"
	"slices"
	"strings"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// SecretPhaxioCallbackToken is the project secret Phaxio's callbacks are
// signed with (the account's callback token).
const SecretPhaxioCallbackToken = "PHAXIO_CALLBACK_TOKEN"

// CallbackURL is where Phaxio reports a Communication's fax.
func (s *Service) CallbackURL(projectID, comm string) string {
	return s.cfg.PublicURL + "/fax/v1/phaxio/callback/" + url.PathEscape(projectID) + "/" + url.PathEscape(comm)
}

// Callback is one parsed Phaxio send callback: every form value and the
// SHA-1 of every file part, by name.
type Callback struct {
	Values map[string][]string
	Files  map[string][]string // part name -> hex SHA-1 of each file
}

// maxCallback bounds a callback body (Phaxio sends a fax object, no file,
// for sent faxes).
const maxCallback = 1 << 20

// ParseCallback reads a multipart (or urlencoded) callback body.
func ParseCallback(contentType string, body []byte) (Callback, error) {
	cb := Callback{Values: map[string][]string{}, Files: map[string][]string{}}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return cb, fmt.Errorf("callback content type: %w", err)
	}
	switch mt {
	case "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return cb, fmt.Errorf("callback form: %w", err)
		}
		cb.Values = v
		return cb, nil
	case "multipart/form-data":
	default:
		return cb, fmt.Errorf("callback content type %q", mt)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return cb, nil
		}
		if err != nil {
			return cb, fmt.Errorf("callback part: %w", err)
		}
		data, err := io.ReadAll(io.LimitReader(part, maxCallback))
		if err != nil {
			return cb, fmt.Errorf("callback part: %w", err)
		}
		name := part.FormName()
		if part.FileName() != "" {
			sum := sha1.Sum(data)
			cb.Files[name] = append(cb.Files[name], hex.EncodeToString(sum[:]))
		} else {
			cb.Values[name] = append(cb.Values[name], string(data))
		}
	}
}

// PhaxioSignature is X-Phaxio-Signature as Phaxio documents it: HMAC-SHA1
// with the callback token over the callback URL, then each POST parameter
// sorted by name (name and value, no delimiter), then each file part sorted
// by name (name and the SHA-1 of its contents), in hex.
func PhaxioSignature(token, callbackURL string, cb Callback) string {
	var b strings.Builder
	b.WriteString(callbackURL)
	for _, k := range slices.Sorted(maps.Keys(cb.Values)) {
		for _, v := range cb.Values[k] {
			b.WriteString(k + v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(cb.Files)) {
		for _, v := range cb.Files[k] {
			b.WriteString(k + v)
		}
	}
	m := hmac.New(sha1.New, []byte(token))
	m.Write([]byte(b.String()))
	return hex.EncodeToString(m.Sum(nil))
}

// PhaxioCallback applies a signed Phaxio send callback to the
// Communication it names. Errors: Forbidden (no token, bad signature: one
// answer, so nothing is learnt of the project), Invalid (a body that is
// not a callback), NotFound (no such Phaxio fax Communication).
func (s *Service) PhaxioCallback(ctx context.Context, projectID, comm, contentType, signature string, body []byte) error {
	token, ok, err := s.d.Secret(ctx, projectID, SecretPhaxioCallbackToken)
	if err != nil && !errors.Is(err, fault.ErrNotFound) {
		return err
	}
	cb, perr := ParseCallback(contentType, body)
	want := PhaxioSignature(token, s.CallbackURL(projectID, comm), cb)
	if !ok || perr != nil || !hmac.Equal([]byte(strings.ToLower(signature)), []byte(want)) {
		return fault.Forbidden("the callback's X-Phaxio-Signature does not verify")
	}
	var fx struct {
		ID           json.Number `json:"id"`
		Status       string      `json:"status"`
		ErrorMessage string      `json:"error_message"`
	}
	if raw := firstValue(cb.Values, "fax"); raw == "" || json.Unmarshal([]byte(raw), &fx) != nil || fx.ID == "" {
		return fault.Invalid("the callback has no fax object")
	}
	_, err = s.d.FHIR.SystemUpdate(ctx, projectID, "Communication", comm, func(m map[string]any) error {
		switch phaxioFax(m, fx.ID.String()) {
		case faxOther:
			return fault.NotFound("Communication/%s is not Phaxio fax %s", comm, fx.ID)
		case faxSending:
			// The callback beat the send's own record of the fax id:
			// Phaxio retries a callback that fails.
			return fault.Unavailable("Communication/%s is still being recorded; retry", comm)
		}
		if m["status"] == "completed" || m["status"] == "not-done" {
			return nil // settled: a retried callback changes nothing
		}
		switch fx.Status {
		case "success":
			m["status"] = "completed"
		case "failure", "partialsuccess":
			m["status"] = "not-done"
			m["statusReason"] = map[string]any{"text": clip("phaxio: " + firstOf(fx.ErrorMessage, fx.Status))}
		}
		exts, _ := m["extension"].([]any)
		for _, e := range exts {
			if em, _ := e.(map[string]any); em["url"] == StatusExtension && fx.Status != "" {
				em["valueString"] = fx.Status
			}
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return fault.NotFound("Communication/%s is not known", comm)
	}
	return err
}

const (
	faxOther   = iota // not this Phaxio fax
	faxSending        // a Phaxio fax whose id is not recorded yet
	faxThis           // Phaxio fax id
)

// phaxioFax says whether the Communication is the Phaxio fax with that id.
func phaxioFax(m map[string]any, id string) int {
	meta, _ := m["meta"].(map[string]any)
	tags, _ := meta["tag"].([]any)
	tagged := slices.ContainsFunc(tags, func(t any) bool {
		tm, _ := t.(map[string]any)
		return tm["system"] == TagSystem && tm["code"] == "phaxio"
	})
	idents, _ := m["identifier"].([]any)
	switch {
	case !tagged:
		return faxOther
	case len(idents) == 0 && m["status"] == "in-progress":
		return faxSending
	case slices.ContainsFunc(idents, func(i any) bool {
		im, _ := i.(map[string]any)
		return im["system"] == TagSystem+":id" && im["value"] == id
	}):
		return faxThis
	}
	return faxOther
}

func firstValue(v map[string][]string, k string) string {
	if len(v[k]) == 0 {
		return ""
	}
	return v[k][0]
}
