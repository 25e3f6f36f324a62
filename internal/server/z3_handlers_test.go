package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/egress"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/z3"
	"github.com/wardhealth/ward/internal/z3/blob"
)

func newZ3TestServer(t *testing.T) *testServer {
	t.Helper()
	pol, err := egress.New(t.Context(), egress.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		t.Fatal(err)
	}
	return newTestServerWith(t, pol, func(st *store.Store, sealer *seal.Sealer, d *Deps) {
		blobs, err := blob.NewFS(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		svc, err := z3.New(t.Context(), z3.Config{PublicURL: testURL}, st, sealer, blobs, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		d.Z3 = svc
	})
}

// Bucket names reach Ward as one URL path segment: Oystehr's names pass,
// hostile ones (also percent-encoded, so the router's cleaning cannot
// rewrite them first) are 400s in the SDK's error shape, on every route.
func TestZ3BucketNamesInURLs(t *testing.T) {
	ts := newZ3TestServer(t)
	project := ts.admin.ProjectID
	for _, name := range []string{project + "-TelemedRecordings", project + "-invoiceable-patients-reports"} {
		if st, body := ts.do(t, "PUT", "/v1/z3/"+name, ts.token, ""); st != 200 || body["name"] != name {
			t.Fatalf("create %s: %d %v", name, st, body)
		}
		if st, body := ts.do(t, "GET", "/v1/z3/"+name+"/", ts.token, ""); st != 200 {
			t.Fatalf("list %s: %d %v", name, st, body)
		}
	}
	for _, tc := range []struct{ segment, message string }{
		{"..", "two dots"},
		{".", `"."`},
		{"%2e%2e", "two dots"},
		{"%2E", `"."`},
		{"a..b", "two dots"},
		{"a%00b", `"\x00"`},
		{"a%0Ab", `"\n"`},
		{"a%20b", `" "`},
		{"a%2Fb", `"/"`},
		{"a%5Cb", `"\\"`},
		{"_zambda-code", "reserved for Ward"}, // signed URLs may name it: below
		{strings.Repeat("A", 256), "256 characters"},
		{"%C3%A9", "at byte 0"},
	} {
		for _, r := range []struct{ method, path, body string }{
			{"PUT", "/v1/z3/" + tc.segment, ""},
			{"DELETE", "/v1/z3/" + tc.segment, ""},
			{"GET", "/v1/z3/" + tc.segment + "/", ""},
			{"POST", "/v1/z3/" + tc.segment + "/x.txt", `{"action":"upload"}`},
			{"DELETE", "/v1/z3/" + tc.segment + "/x.txt", ""},
			{"PUT", z3.SignedPrefix + project + "/" + tc.segment + "/x.txt?action=upload&expires=9999999999&signature=x", "x"},
		} {
			if tc.segment == "_zambda-code" && strings.HasPrefix(r.path, z3.SignedPrefix) {
				continue
			}
			status, body := ts.do(t, r.method, r.path, ts.token, r.body)
			msg, _ := body["message"].(string)
			if status != http.StatusBadRequest || body["code"] != float64(400) || !strings.Contains(msg, tc.message) {
				t.Errorf("%s %s: %d %v, want a 400 mentioning %q", r.method, clipKey(r.path), status, body, tc.message)
			}
		}
	}
	// Ward's own bucket is reachable by a URL Ward signed, and only so.
	for _, c := range []struct {
		bucket string
		status int
	}{{"_zambda-code", 403}, {"_", 400}, {"__x", 400}, {"_a..b", 400}} {
		st, body := ts.do(t, "PUT", z3.SignedPrefix+project+"/"+c.bucket+"/x.zip?action=upload&expires=9999999999&signature=x", "", "x")
		if st != c.status || body["code"] != float64(c.status) {
			t.Errorf("presigned PUT into %s: %d %v, want %d", c.bucket, st, body, c.status)
		}
	}
	for _, seg := range []string{"..", ".", "%2e%2e"} {
		st, body := ts.do(t, "PUT", z3.SignedPrefix+seg+"/b/x.txt?action=upload&expires=9999999999&signature=x", "", "x")
		if st != 400 || !strings.Contains(body["message"].(string), "project id") {
			t.Errorf("presigned PUT with project %q: %d %v", seg, st, body)
		}
	}
}
