package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// presignDrop asks the console for a dropped file's upload URL.
func presignDrop(t *testing.T, b *http.Client, path, csrf, name string) (int, presignOut) {
	t.Helper()
	res, err := b.PostForm(testURL+path, url.Values{"csrf": {csrf}, "name": {name}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out presignOut
	body, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(body, &out)
	return res.StatusCode, out
}

type presignOut struct{ URL, Key, Message string }

// Drag and drop's server side: the presign endpoint answers an upload URL
// on Ward for the folder's object (the browser PUTs to it, the download
// gives the same bytes); without the CSRF token it is 403, a reader's is
// the API's 403 as JSON, another tenant's bucket is refused, and a name
// with a path keeps only its last segment.
func TestConsoleZ3Drop(t *testing.T) {
	ts := newZ3TestServer(t)
	ts.inviteConsoleDeveloper(t, "dev@example.org", `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`)
	b, csrf := ts.consoleSignIn(t, "dev@example.org")
	bucket := ts.admin.ProjectID + "-drop"
	if st, _ := ts.do(t, "PUT", "/v1/z3/"+bucket, ts.token, ""); st != 200 {
		t.Fatal(st)
	}
	if st, body := get(t, b, "/console/z3/"+bucket+"/in/"); st != 200 || !strings.Contains(body, `data-presign="/console/z3-presign/`+bucket+`/in/"`) ||
		!strings.Contains(body, `src="/console/static/z3drop.js"`) || !strings.Contains(body, "Upload file") {
		t.Fatalf("folder page: %d %s", st, body)
	}
	if st, _ := presignDrop(t, b, "/console/z3-presign/"+bucket+"/in/", "", "a.txt"); st != 403 {
		t.Errorf("without CSRF: %d", st)
	}
	st, out := presignDrop(t, b, "/console/z3-presign/"+bucket+"/in/", csrf, `..\..\dir/notes <b>.txt`)
	if st != 200 || out.Key != "in/notes <b>.txt" || !strings.HasPrefix(out.URL, "/") {
		t.Fatalf("presign: %d %+v", st, out)
	}
	content := []byte("dropped bytes\n")
	req, _ := http.NewRequest("PUT", testURL+out.URL, bytes.NewReader(content))
	req.Header.Set("Content-Type", "text/plain")
	res, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode >= 300 {
		t.Fatalf("PUT to the presigned URL: %d", res.StatusCode)
	}
	if st, body := get(t, b, "/console/z3-download/"+bucket+"/in/"+url.PathEscape("notes <b>.txt")); st != 200 || body != string(content) {
		t.Fatalf("download: %d %q", st, body)
	}
	// A name the API refuses: its reason, nothing presigned.
	for _, bad := range []string{"..", ".", "tab\there.txt"} {
		if st, out := presignDrop(t, b, "/console/z3-presign/"+bucket+"/in/", csrf, bad); st != 400 || out.URL != "" || !strings.Contains(out.Message, "Object path") {
			t.Errorf("name %q: %d %+v", bad, st, out)
		}
	}
	// Another tenant's bucket.
	other, err := ts.iam.CreateProject(t.Context(), "Other tenant")
	if err != nil {
		t.Fatal(err)
	}
	theirs := other.ProjectID + "-drop"
	if st, _ := ts.do(t, "PUT", "/v1/z3/"+theirs, ts.clientToken(t, other.ClientID, other.ClientSecret), ""); st != 200 {
		t.Fatal(st)
	}
	if st, out := presignDrop(t, b, "/console/z3-presign/"+theirs+"/", csrf, "x.txt"); st < 400 || out.URL != "" || out.Message == "" {
		t.Errorf("another tenant's bucket: %d %+v", st, out)
	}
	// A reader: no drop zone, and a forced presign is the API's 403.
	ts.inviteConsoleDeveloper(t, "reader@example.org", `{"rule":[{"resource":["Z3:*"],"action":["Z3:ListBuckets","Z3:ListObjects","Z3:GetObject"],"effect":"Allow"}]}`)
	rb, rcsrf := ts.consoleSignIn(t, "reader@example.org")
	if st, body := get(t, rb, "/console/z3/"+bucket+"/in/"); st != 200 || strings.Contains(body, "dropzone") || strings.Contains(body, "z3drop.js") {
		t.Errorf("reader's folder: %d %s", st, body)
	}
	if st, out := presignDrop(t, rb, "/console/z3-presign/"+bucket+"/in/", rcsrf, "forced.txt"); st != 403 || !strings.Contains(out.Message, "Z3:PutObject") {
		t.Errorf("reader's presign: %d %+v", st, out)
	}
	// The script is served as a module the CSP allows.
	res, err = b.Get(testURL + "/console/static/z3drop.js")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("script: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
}
