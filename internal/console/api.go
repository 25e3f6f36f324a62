package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/wardhealth/ward/internal/auth"
)

// Every console action is a request to Ward's own API, made in process
// with the signed-in developer's token: the API's route table names the
// action and resource, and its policy gate decides and audits, exactly as
// for a script. The console never decides access itself.

// apiError is a refused API call: the API's status and message.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Message) }

// recorder keeps an in-process response.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

// do sends one request to the API and returns its status and body.
func (c *Console) do(ctx context.Context, method, path string, header http.Header, body io.Reader) (int, []byte, error) {
	rec, err := c.send(ctx, method, path, header, body)
	if err != nil {
		return 0, nil, err
	}
	return rec.status, rec.body.Bytes(), nil
}

// send is do with the answer's headers.
func (c *Console) send(ctx context.Context, method, path string, header http.Header, body io.Reader) (*recorder, error) {
	// The path alone: the API's routes are matched on it, whatever the
	// public URL's own path is.
	if body == nil {
		// As a server request has: handlers read r.Body without a nil check.
		body = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, method, path, body)
	if err != nil {
		return nil, fmt.Errorf("console request: %w", err)
	}
	if u, err := url.Parse(c.cfg.PublicURL); err == nil {
		req.Host = u.Host
	}
	req.RemoteAddr = "127.0.0.1:0" // in process; never a sign-in's client address
	for k, v := range header {
		req.Header[k] = v
	}
	rec := &recorder{header: http.Header{}}
	c.api.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec, nil
}

// call sends a Project API request as the session's developer in its
// project, decoding a JSON answer into out (nil: ignored). A refusal is an
// *apiError carrying the API's message.
func (c *Console) call(ctx context.Context, sess session, method, path string, in, out any) error {
	h := http.Header{"Authorization": {"Bearer " + sess.AccessToken}, "X-Oystehr-Project-Id": {sess.Project}}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("console request body: %w", err)
		}
		body = bytes.NewReader(b)
		h.Set("Content-Type", "application/json")
	}
	status, b, err := c.do(ctx, method, path, h, body)
	if err != nil {
		return err
	}
	if status >= 300 {
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &e) != nil || e.Message == "" {
			e.Message = http.StatusText(status)
		}
		return &apiError{Status: status, Message: e.Message}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("console: decode %s %s: %w", method, path, err)
		}
	}
	return nil
}

// exchange trades an authorization code for the developer's access token
// at Ward's token endpoint.
func (c *Console) exchange(ctx context.Context, code, verifier string) (token string, expiresIn int, err error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {ClientID},
		"redirect_uri": {c.callbackURL()}, "code_verifier": {verifier}}
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	status, b, err := c.do(ctx, http.MethodPost, "/oauth/token", h, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, err
	}
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		Error       string `json:"error_description"`
	}
	if err := json.Unmarshal(b, &out); err != nil || status != http.StatusOK || out.AccessToken == "" {
		msg := out.Error
		if msg == "" {
			msg = http.StatusText(status)
		}
		return "", 0, &apiError{Status: http.StatusBadRequest, Message: "sign-in failed: " + msg}
	}
	return out.AccessToken, out.ExpiresIn, nil
}

// revoke ends the developer's access token at sign-out.
func (c *Console) revoke(ctx context.Context, token string) {
	// The token authenticates its own revocation (RFC 7009 for a caller
	// holding a bearer token).
	form := url.Values{"token": {token}}
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {"Bearer " + token}}
	status, _, err := c.do(ctx, http.MethodPost, "/oauth/revoke", h, strings.NewReader(form.Encode()))
	if err != nil || status >= 300 {
		c.log.WarnContext(ctx, "console sign-out: revoke the access token", "status", status, "err", err)
	}
}

// can reports whether the session's developer may do action on resource
// in its project: the gate's own decision about the developer itself
// (any error, a refusal or not, hides the control). It only hides
// controls; the API still decides each write. Without Decide it asks the
// API's explain endpoint, which itself needs IAM:ListAllRoles.
func (c *Console) can(ctx context.Context, sess session, action, resource string) bool {
	if c.decide != nil {
		p := auth.Principal{ProjectID: sess.Project, Kind: auth.KindDeveloper, ID: sess.DeveloperID}
		return c.decide(ctx, p, action, resource) == nil
	}
	var ex explanation
	err := c.call(ctx, sess, http.MethodPost, "/v1/iam/explain",
		map[string]string{"action": action, "resource": resource, "developerId": sess.DeveloperID}, &ex)
	return err == nil && ex.Allowed
}

// explanation is the answer of POST /iam/explain.
type explanation struct {
	Allowed      bool `json:"allowed"`
	DecidingRule *struct {
		Source *struct {
			Kind string `json:"kind"`
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"source"`
		Index int             `json:"index"`
		Rule  json.RawMessage `json:"rule"`
	} `json:"decidingRule"`
	Warnings []string `json:"warnings"`
}
