package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/provider/fax"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// phaxioStandIn is a loopback stand-in for Phaxio's API v2.1, checking each
// request as Phaxio documents it (https://www.phaxio.com/docs/api/v2.1):
// HTTP basic auth with the API key and secret; POST /v2.1/phone_numbers
// with a multipart country_code (and area_code); DELETE
// /v2.1/phone_numbers/{number}; POST /v2.1/faxes with multipart to (E.164),
// caller_id and one file part with a file name. Answers are Phaxio's
// {success, message, data}. A fax to +15559999999 is refused (422) as
// Phaxio refuses a bad number. GET /_log lists what it accepted.
type phaxioStandIn struct {
	t           *testing.T
	srv         *httptest.Server
	key, secret string
	number      string
	token       string // the account's callback token
	mu          sync.Mutex
	log         []map[string]string
	callbacks   sync.WaitGroup
}

func newPhaxioStandIn(t *testing.T) *phaxioStandIn {
	ph := &phaxioStandIn{t: t, key: "phx-key-e2e", secret: "phx-secret-e2e", number: "+18475551234", token: "phx-callback-token-e2e"}
	ph.srv = httptest.NewServer(http.HandlerFunc(ph.serve))
	t.Cleanup(func() { ph.callbacks.Wait(); ph.srv.Close() })
	return ph
}

func (ph *phaxioStandIn) answer(w http.ResponseWriter, status int, ok bool, msg string, data any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"success": ok, "message": msg, "data": data})
}

func (ph *phaxioStandIn) bad(w http.ResponseWriter, msg string) {
	ph.t.Errorf("phaxio stand-in: %s", msg)
	ph.answer(w, http.StatusUnprocessableEntity, false, msg, nil)
}

func (ph *phaxioStandIn) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/_log" {
		ph.mu.Lock()
		defer ph.mu.Unlock()
		_ = json.NewEncoder(w).Encode(ph.log)
		return
	}
	if u, p, ok := r.BasicAuth(); !ok || u != ph.key || p != ph.secret {
		ph.answer(w, http.StatusUnauthorized, false, "Invalid API credentials", nil)
		return
	}
	entry := map[string]string{"method": r.Method, "path": r.URL.Path}
	if r.Method == http.MethodPost {
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
			ph.bad(w, "content type "+r.Header.Get("Content-Type"))
			return
		}
		if err := r.ParseMultipartForm(32 << 20); err != nil {
			ph.bad(w, "multipart: "+err.Error())
			return
		}
		for k, v := range r.MultipartForm.Value {
			entry[k] = strings.Join(v, ",")
		}
		for k, fs := range r.MultipartForm.File {
			if len(fs) != 1 || fs[0].Filename == "" {
				ph.bad(w, "file part "+k+" without one file name")
				return
			}
			f, _ := fs[0].Open()
			b, _ := io.ReadAll(f)
			f.Close()
			entry[k] = string(b)
			entry[k+".filename"] = fs[0].Filename
		}
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v2.1/phone_numbers":
		if entry["country_code"] != "1" {
			ph.bad(w, "country_code "+entry["country_code"])
			return
		}
		ph.record(entry)
		ph.answer(w, http.StatusOK, true, "Number provisioned successfully!", map[string]any{
			"phone_number": ph.number, "city": "Northbrook", "state": "Illinois", "country": "United States", "cost": 200})
	case r.Method == http.MethodDelete && r.URL.Path == "/v2.1/phone_numbers/"+ph.number:
		ph.record(entry)
		ph.answer(w, http.StatusOK, true, "Number released successfully!", nil)
	case r.Method == http.MethodPost && r.URL.Path == "/v2.1/faxes":
		switch {
		case entry["to"] == "+15559999999":
			ph.answer(w, http.StatusUnprocessableEntity, false, "Phone number is not formatted correctly or invalid.", nil)
			return
		case !strings.HasPrefix(entry["to"], "+") || entry["file"] == "" || entry["caller_id"] != ph.number:
			ph.bad(w, fmt.Sprintf("fax fields %v", entry))
			return
		}
		ph.mu.Lock()
		id := 1000 + len(ph.log)
		ph.mu.Unlock()
		entry["id"] = fmt.Sprint(id)
		cb := entry["callback_url"]
		delete(entry, "callback_url")
		if !strings.HasPrefix(cb, "http://127.0.0.1:") || !strings.Contains(cb, "/fax/v1/phaxio/callback/") {
			ph.bad(w, "callback_url "+cb+" is not Ward's")
			return
		}
		ph.record(entry)
		ph.answer(w, http.StatusOK, true, "Fax queued for sending", map[string]any{"id": id})
		ph.callbacks.Add(1)
		go ph.callback(cb, id)
	default:
		ph.bad(w, "no such endpoint "+r.Method+" "+r.URL.Path)
	}
}

// callback posts Phaxio's send callback, as Phaxio does when the fax is
// done: a multipart form (success, is_test, direction, the fax object as
// JSON) signed with the callback token. Like Phaxio it retries a callback
// that fails (the first may arrive before Ward has recorded the fax id),
// here for up to 10 s.
func (ph *phaxioStandIn) callback(cbURL string, id int) {
	defer ph.callbacks.Done()
	form := map[string]string{"success": "true", "is_test": "false", "direction": "sent",
		"fax": fmt.Sprintf(`{"id":%d,"direction":"sent","num_pages":1,"status":"success","is_test":false}`, id)}
	sig := fax.PhaxioSignature(ph.token, cbURL, fax.Callback{Values: map[string][]string{
		"success": {form["success"]}, "is_test": {form["is_test"]}, "direction": {form["direction"]}, "fax": {form["fax"]}}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for k, v := range form {
			_ = mw.WriteField(k, v)
		}
		_ = mw.Close()
		req, _ := http.NewRequest(http.MethodPost, cbURL, &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("X-Phaxio-Signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			ph.t.Errorf("phaxio callback to %s: %v %v", cbURL, err, resp)
			return
		}
		time.Sleep(20 * time.Millisecond) // Phaxio's retry backoff, shortened; bounded by the deadline
	}
}

func (ph *phaxioStandIn) record(e map[string]string) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	ph.log = append(ph.log, e)
}

// TestFaxWithSDK runs e2e/fax.test.mjs on each backend: the real
// @oystehr/sdk's fax.onboard, offboard, getConfiguration and send through
// the local provider, then Phaxio (the stand-in above, reached through the
// egress policy), with Z3 and DocumentReference media, authorization, a
// second project and hostile input.
func TestFaxWithSDK(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ph := newPhaxioStandIn(t)
			w := startWardWith(t, b, "--egress-allow", "127.0.0.1/32", "--phaxio-api-url", ph.srv.URL)
			other := w.createProject(t, "other")
			nodeTest(t, "fax.test.mjs", map[string]string{
				"WARD_URL":               w.URL,
				"WARD_ADMIN_CREDENTIALS": filepath.Join(w.DataDir, "admin-credentials.json"),
				"WARD_B_CLIENT_ID":       other.ClientID,
				"WARD_B_CLIENT_SECRET":   other.ClientSecret,
				"PHAXIO_URL":             ph.srv.URL,
				"PHAXIO_KEY":             ph.key,
				"PHAXIO_SECRET":          ph.secret,
				"PHAXIO_NUMBER":          ph.number,
				"PHAXIO_CALLBACK_TOKEN":  ph.token,
			})
			ph.mu.Lock()
			defer ph.mu.Unlock()
			if len(ph.log) < 3 {
				t.Fatalf("the stand-in accepted %d requests: %v", len(ph.log), ph.log)
			}
		})
	}
}
