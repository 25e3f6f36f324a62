package fhir

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// memBlobs is a BinaryStore in memory, with a size limit.
type memBlobs struct {
	mu    sync.Mutex
	blobs map[string][]byte
	limit int64
}

func (m *memBlobs) PutBinary(_ context.Context, projectID, _ string, r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, m.limit+1))
	if err != nil {
		return "", err
	}
	if int64(len(b)) > m.limit {
		return "", fault.TooLarge("over %d bytes", m.limit)
	}
	key := uuid.NewString()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blobs[projectID+"/"+key] = b
	return key, nil
}

func (m *memBlobs) OpenBinary(_ context.Context, projectID, key string) (io.ReadCloser, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[projectID+"/"+key]
	if !ok {
		return nil, 0, fault.NotFound("no blob %s", key)
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}

func (m *memBlobs) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.blobs)
}

// binaryServer serves the handler with a 1 KiB inline limit, as the
// principal named by X-As ("admin" or one made by the setup).
func binaryServer(t *testing.T, b storetest.Backend, blobs BinaryStore) (*httptest.Server, *fixture) {
	t.Helper()
	f := newFixture(t, b, Config{Binaries: blobs, InlineBinaryBytes: 1024})
	ctx := context.Background()
	principals := map[string]auth.Principal{"admin": f.admin}
	for name, policy := range map[string]string{
		// Binaries, and only the DocumentReference dr-ok.
		"binaries": `{"rule":[{"resource":"FHIR:Binary","action":["FHIR:Read","FHIR:Search","FHIR:Create","FHIR:Update","FHIR:History"],"effect":"Allow"},{"resource":"FHIR:DocumentReference:dr-ok","action":["FHIR:Read"],"effect":"Allow"}]}`,
	} {
		m, err := f.authz.CreateM2M(ctx, f.admin.ProjectID, iam.M2MInput{Name: &name, AccessPolicy: json.RawMessage(policy)})
		if err != nil {
			t.Fatal(err)
		}
		principals[name] = auth.Principal{ProjectID: f.admin.ProjectID, Kind: auth.KindM2M, ID: m.ID}
	}
	h := NewHandler(f.svc, "http://ward.test/fhir", slog.New(slog.NewTextHandler(io.Discard, nil)))
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		as := r.Header.Get("X-As")
		if as == "" {
			as = "admin"
		}
		h.ServeFHIR(w, r, principals[as])
	}))
	t.Cleanup(ts.Close)
	return ts, &f
}

func send(t *testing.T, ts *httptest.Server, method, path string, body []byte, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, bytes.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, out
}

// TestBinary: a Binary created or updated with any content type holds the
// bytes (in the resource when small, in the BinaryStore when not), a read
// whose Accept is not FHIR's returns them as sent, a FHIR read returns the
// resource with its data, and securityContext is checked on every read and
// write; on every backend.
func TestBinary(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			blobs := &memBlobs{blobs: map[string][]byte{}, limit: 1 << 20}
			ts, f := binaryServer(t, b, blobs)
			pdf := []byte("%PDF-1.4\n" + strings.Repeat("stream of a small document\n", 4) + "%%EOF\n")
			big := bytes.Repeat([]byte{0, 1, 2, 253, 254, 255}, 2000) // 12,000 bytes: over the 1 KiB inline limit
			created := map[string]string{}
			for name, c := range map[string]struct {
				ct   string
				body []byte
			}{"pdf": {"application/pdf", pdf}, "text": {"text/plain; charset=utf-8", []byte("héllo\n")}, "big": {"application/octet-stream", big},
				"xml": {"application/xml", []byte("<a/>")}} {
				res, out := send(t, ts, "POST", "/fhir/Binary", c.body, "Content-Type", c.ct)
				var m map[string]any
				_ = json.Unmarshal(out, &m)
				if res.StatusCode != 201 || m["contentType"] != c.ct {
					t.Fatalf("%s: create %d %s", name, res.StatusCode, out)
				}
				created[name] = m["id"].(string)
				// Native read.
				res, got := send(t, ts, "GET", "/fhir/Binary/"+m["id"].(string), nil, "Accept", c.ct)
				if res.StatusCode != 200 || !bytes.Equal(got, c.body) || res.Header.Get("Content-Type") != c.ct ||
					res.Header.Get("ETag") != `W/"1"` || !strings.Contains(res.Header.Get("Content-Security-Policy"), "sandbox") {
					t.Fatalf("%s: native read %d %v %q", name, res.StatusCode, res.Header, got)
				}
				// FHIR read: the resource, its data base64, no blob extension.
				for _, accept := range []string{"", "application/fhir+json", "*/*"} {
					res, got = send(t, ts, "GET", "/fhir/Binary/"+m["id"].(string), nil, "Accept", accept)
					var r struct {
						ResourceType, ContentType, Data string
						Meta                            map[string]any
					}
					if err := json.Unmarshal(got, &r); err != nil || res.StatusCode != 200 || r.ResourceType != "Binary" || r.Data != base64.StdEncoding.EncodeToString(c.body) ||
						strings.Contains(string(got), binaryBlobURL) {
						t.Fatalf("%s: FHIR read (Accept %q) %d %.300s, %v", name, accept, res.StatusCode, got, err)
					}
				}
			}
			if blobs.count() != 1 {
				t.Fatalf("%d blobs, want 1 (only the big one)", blobs.count())
			}
			// vread and a native update: a new version with new bytes.
			id := created["big"]
			res, out := send(t, ts, "PUT", "/fhir/Binary/"+id, []byte("v2"), "Content-Type", "text/plain")
			if res.StatusCode != 200 || res.Header.Get("ETag") != `W/"2"` {
				t.Fatalf("native update: %d %s", res.StatusCode, out)
			}
			if _, got := send(t, ts, "GET", "/fhir/Binary/"+id+"/_history/1", nil, "Accept", "application/octet-stream"); !bytes.Equal(got, big) {
				t.Fatalf("vread 1: %d bytes", len(got))
			}
			if _, got := send(t, ts, "GET", "/fhir/Binary/"+id, nil, "Accept", "text/plain"); string(got) != "v2" {
				t.Fatalf("read v2: %q", got)
			}
			if res, out := send(t, ts, "PUT", "/fhir/Binary/chosen", []byte("new"), "Content-Type", "text/plain"); res.StatusCode != 201 {
				t.Fatalf("native update as create: %d %s", res.StatusCode, out)
			}
			if res, out := send(t, ts, "PUT", "/fhir/Binary/chosen", []byte("new"), "Content-Type", "text/plain", "If-Match", `W/"7"`); res.StatusCode != 412 {
				t.Fatalf("stale If-Match: %d %s", res.StatusCode, out)
			}
			// A client cannot point its Binary at another's blob.
			var blobKey string
			for k := range blobs.blobs {
				blobKey = strings.SplitN(k, "/", 2)[1]
			}
			steal := fmt.Sprintf(`{"resourceType":"Binary","id":"steal","contentType":"text/plain","data":"bWluZQ==","meta":{"extension":[{"url":%q,"valueString":%q}]}}`, binaryBlobURL, blobKey)
			if res, out := send(t, ts, "PUT", "/fhir/Binary/steal", []byte(steal), "Content-Type", "application/fhir+json"); res.StatusCode != 201 || strings.Contains(string(out), blobKey) {
				t.Fatalf("JSON create with a blob extension: %d %s", res.StatusCode, out)
			}
			if _, got := send(t, ts, "GET", "/fhir/Binary/steal", nil, "Accept", "text/plain"); string(got) != "mine" {
				t.Fatalf("read of the stolen key gave %q", got)
			}
			// A PATCH of a large Binary's other elements keeps its bytes.
			res, out = send(t, ts, "POST", "/fhir/Binary", big, "Content-Type", "application/octet-stream")
			var large struct{ ID string }
			if err := json.Unmarshal(out, &large); err != nil || res.StatusCode != 201 {
				t.Fatalf("create large: %d %s", res.StatusCode, out)
			}
			if res, out := send(t, ts, "PATCH", "/fhir/Binary/"+large.ID, []byte(`[{"op":"replace","path":"/contentType","value":"application/x-patched"}]`),
				"Content-Type", "application/json-patch+json"); res.StatusCode != 200 {
				t.Fatalf("patch large: %d %s", res.StatusCode, out)
			}
			if res, got := send(t, ts, "GET", "/fhir/Binary/"+large.ID, nil, "Accept", "application/x-patched"); res.StatusCode != 200 || !bytes.Equal(got, big) {
				t.Fatalf("large Binary after a patch: %d, %d bytes (want its %d)", res.StatusCode, len(got), len(big))
			}
			// In search and history bundles it has no data and no blob name.
			for _, path := range []string{"/fhir/Binary?_id=" + large.ID, "/fhir/Binary/" + large.ID + "/_history"} {
				res, out := send(t, ts, "GET", path, nil)
				if res.StatusCode != 200 || !strings.Contains(string(out), `"id":"`+large.ID) || strings.Contains(string(out), binaryBlobURL) || strings.Contains(string(out), `"data"`) {
					t.Fatalf("%s: %d %.500s", path, res.StatusCode, out)
				}
			}
			// A JSON Binary still works, and its read in JSON is as stored.
			if res, out := send(t, ts, "POST", "/fhir/Binary", []byte(`{"resourceType":"Binary","contentType":"text/plain","data":"aGk="}`), "Content-Type", "application/fhir+json"); res.StatusCode != 201 {
				t.Fatalf("JSON create: %d %s", res.StatusCode, out)
			}
			// Accept FHIR XML only: 406, not the content.
			if res, _ := send(t, ts, "GET", "/fhir/Binary/"+created["pdf"], nil, "Accept", "application/fhir+xml"); res.StatusCode != 406 {
				t.Fatalf("Accept FHIR XML: %d", res.StatusCode)
			}
			// securityContext: the caller must be able to read it.
			ctx := context.Background()
			for _, id := range []string{"dr-ok", "dr-secret"} {
				body := `{"resourceType":"DocumentReference","id":"` + id + `","status":"current","content":[{"attachment":{"contentType":"application/pdf"}}]}`
				if _, _, err := f.svc.Update(ctx, f.admin, "DocumentReference", id, []byte(body), ""); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range []struct {
				name, method, path, context string
				status                      int
			}{
				{"create in a readable context", "POST", "/fhir/Binary", "DocumentReference/dr-ok", 201},
				{"create in an unreadable context", "POST", "/fhir/Binary", "DocumentReference/dr-secret", 403},
				{"update into an unreadable context", "PUT", "/fhir/Binary/" + created["text"], "DocumentReference/dr-secret", 403},
			} {
				res, out := send(t, ts, c.method, c.path, pdf, "Content-Type", "application/pdf", "X-Security-Context", c.context, "X-As", "binaries")
				if res.StatusCode != c.status {
					t.Fatalf("%s: %d %s", c.name, res.StatusCode, out)
				}
			}
			res, out = send(t, ts, "POST", "/fhir/Binary", pdf, "Content-Type", "application/pdf", "X-Security-Context", "DocumentReference/dr-secret")
			if res.StatusCode != 201 {
				t.Fatalf("admin create in the secret context: %d %s", res.StatusCode, out)
			}
			var secret struct{ ID string }
			_ = json.Unmarshal(out, &secret)
			for _, accept := range []string{"application/pdf", "application/fhir+json"} {
				if res, _ := send(t, ts, "GET", "/fhir/Binary/"+secret.ID, nil, "Accept", accept, "X-As", "binaries"); res.StatusCode != 403 {
					t.Fatalf("read in an unreadable context (%s): %d", accept, res.StatusCode)
				}
				if res, _ := send(t, ts, "GET", "/fhir/Binary/"+secret.ID+"/_history/1", nil, "Accept", accept, "X-As", "binaries"); res.StatusCode != 403 {
					t.Fatalf("vread in an unreadable context (%s): %d", accept, res.StatusCode)
				}
			}
			if res, _ := send(t, ts, "GET", "/fhir/Binary/"+created["pdf"], nil, "Accept", "application/pdf", "X-As", "binaries"); res.StatusCode != 200 {
				t.Fatalf("read without a context: %d", res.StatusCode)
			}
			res, out = send(t, ts, "GET", "/fhir/Binary?_id="+secret.ID+","+created["pdf"], nil, "X-As", "binaries")
			if res.StatusCode != 200 || strings.Contains(string(out), `"id":"`+secret.ID) || !strings.Contains(string(out), `"id":"`+created["pdf"]) {
				t.Fatalf("search: %d %s", res.StatusCode, out)
			}
			// History leaves it out too, at type and instance level.
			for _, path := range []string{"/fhir/Binary/_history", "/fhir/Binary/" + secret.ID + "/_history"} {
				res, out = send(t, ts, "GET", path, nil, "X-As", "binaries")
				if res.StatusCode != 200 || strings.Contains(string(out), `"id":"`+secret.ID) {
					t.Fatalf("history %s: %d %.400s", path, res.StatusCode, out)
				}
			}
			if _, out = send(t, ts, "GET", "/fhir/Binary/_history", nil); !strings.Contains(string(out), `"id":"`+secret.ID) {
				t.Fatalf("admin's history lacks the Binary: %.300s", out)
			}
		})
	}
}

// TestBinaryLimits: without a BinaryStore a content over the inline limit
// is a 413; a store's own limit is a 413 too.
func TestBinaryLimits(t *testing.T) {
	ts, _ := binaryServer(t, storetest.Backends()[0], nil)
	if res, out := send(t, ts, "POST", "/fhir/Binary", make([]byte, 2000), "Content-Type", "application/octet-stream"); res.StatusCode != 413 {
		t.Fatalf("no store: %d %s", res.StatusCode, out)
	}
	if res, out := send(t, ts, "POST", "/fhir/Binary", make([]byte, 1000), "Content-Type", "application/octet-stream"); res.StatusCode != 201 {
		t.Fatalf("inline, no store: %d %s", res.StatusCode, out)
	}
	ts, _ = binaryServer(t, storetest.Backends()[0], &memBlobs{blobs: map[string][]byte{}, limit: 4000})
	if res, out := send(t, ts, "POST", "/fhir/Binary", make([]byte, 5000), "Content-Type", "application/octet-stream"); res.StatusCode != 413 {
		t.Fatalf("over the store's limit: %d %s", res.StatusCode, out)
	}
}

// TestExportBinaries: a system export of Binary leaves out those whose
// securityContext the principal may not read and carries large ones
// without data or blob name, as searches do.
func TestExportBinaries(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			blobs := &memBlobs{blobs: map[string][]byte{}, limit: 1 << 20}
			ts, f := binaryServer(t, b, blobs)
			ctx := context.Background()
			if _, _, err := f.svc.Update(ctx, f.admin, "DocumentReference", "dr-secret", []byte(`{"resourceType":"DocumentReference","id":"dr-secret","status":"current","content":[{"attachment":{"contentType":"text/plain"}}]}`), ""); err != nil {
				t.Fatal(err)
			}
			ids := map[string]string{}
			for name, hdr := range map[string][]string{
				"secret": {"Content-Type", "text/plain", "X-Security-Context", "DocumentReference/dr-secret"},
				"plain":  {"Content-Type", "text/plain"},
				"large":  {"Content-Type", "application/octet-stream"},
			} {
				body := []byte("small")
				if name == "large" {
					body = bytes.Repeat([]byte{7}, 5000)
				}
				res, out := send(t, ts, "POST", "/fhir/Binary", body, hdr...)
				var m struct{ ID string }
				if err := json.Unmarshal(out, &m); err != nil || res.StatusCode != 201 {
					t.Fatalf("create %s: %d %s", name, res.StatusCode, out)
				}
				ids[name] = m.ID
			}
			name := "binaries-only"
			m, err := f.authz.CreateM2M(ctx, f.admin.ProjectID, iam.M2MInput{Name: &name, AccessPolicy: json.RawMessage(`{"rule":[{"resource":"FHIR:Binary","action":["FHIR:Read","FHIR:Search"],"effect":"Allow"}]}`)})
			if err != nil {
				t.Fatal(err)
			}
			p := auth.Principal{ProjectID: f.admin.ProjectID, Kind: auth.KindM2M, ID: m.ID}
			page, err := f.svc.ExportBatch(ctx, p, ExportScope{Type: "Binary"}, "", 100)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]byte{}
			for _, r := range page.Resources {
				got[r.ID] = r.Content
			}
			if _, ok := got[ids["secret"]]; ok || got[ids["plain"]] == nil || got[ids["large"]] == nil {
				t.Fatalf("exported %d Binaries: secret %v, plain %v, large %v", len(got), got[ids["secret"]] != nil, got[ids["plain"]] != nil, got[ids["large"]] != nil)
			}
			if c := string(got[ids["large"]]); strings.Contains(c, binaryBlobURL) || strings.Contains(c, `"data"`) {
				t.Fatalf("large Binary exported as %s", c)
			}
		})
	}
}
