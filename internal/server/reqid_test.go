package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/reqid"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
)

// TestEveryLogLineHasTheRequestID: failing requests (the database is
// closed) on the FHIR API and the Project API log the failure in FHIR's
// handler and in the server, and the access line; every one of those
// lines carries the request's id, loggers built as `ward serve` builds
// them.
func TestEveryLogLineHasTheRequestID(t *testing.T) {
	var logs lockedBuffer
	ts := newTestServerWith(t, nil, func(st *store.Store, _ *seal.Sealer, d *Deps) {
		h := slog.NewJSONHandler(&logs, nil)
		d.Log = slog.New(h) // the server adds the id itself
		d.FHIR = fhir.NewHandler(fhir.New(st, d.IAM, fhir.Config{}, time.Now), testURL+"/fhir", reqid.Logger(h))
	})
	ts.st.Close()
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/fhir/Patient/x", ""},
		{"POST", "/fhir/Patient", `{"resourceType":"Patient"}`},
		{"GET", "/fhir/Patient?name=x", ""},
		{"GET", "/v1/iam/role", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			before := len(logs.String())
			id := "req-" + strings.NewReplacer("/", "-", "?", "-", "=", "-").Replace(tc.method+tc.path)
			req, _ := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+ts.token)
			req.Header.Set("Content-Type", "application/fhir+json")
			req.Header.Set("x-oystehr-request-id", id)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode < 500 {
				t.Fatalf("status %d with the database closed", res.StatusCode)
			}
			// The access line is written after the answer: poll for it.
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(logs.String()[before:], `"msg":"request"`) {
				if time.Now().After(deadline) {
					t.Fatal("no access line")
				}
				time.Sleep(time.Millisecond) // polling interval
			}
			lines := strings.Split(strings.TrimSpace(logs.String()[before:]), "\n")
			if len(lines) < 2 {
				t.Fatalf("want the failure and the access line, got:\n%s", strings.Join(lines, "\n"))
			}
			for _, l := range lines {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("%v: %s", err, l)
				}
				if m["request_id"] != id || strings.Count(l, `"request_id"`) != 1 {
					t.Errorf("line without the request id %q: %s", id, l)
				}
			}
		})
	}
}
