package server

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// postFile posts a file upload form (field "file") to path.
func postFile(t *testing.T, b *http.Client, path, csrf, name string, data []byte) (int, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if csrf != "" {
		mw.WriteField("csrf", csrf)
	}
	fw, _ := mw.CreateFormFile("file", name)
	fw.Write(data)
	mw.Close()
	res, err := b.Post(testURL+path, mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(out)
}

// The Z3 pages: create a bucket, upload into a folder through the
// presigned upload, download through a presigned URL (the same bytes),
// delete; a bad bucket name's message at the field; markup in a file name
// printed as text; CSRF on the upload form; another tenant's bucket is
// not listed and its objects are not reachable; a read-only developer has
// no upload or delete and forced ones are 403.
func TestConsoleZ3(t *testing.T) {
	ts := newZ3TestServer(t)
	ts.inviteConsoleDeveloper(t, "dev@example.org", `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`)
	b, csrf := ts.consoleSignIn(t, "dev@example.org")
	bucket := ts.admin.ProjectID + "-files"
	if status, body := post(t, b, "/console/z3", url.Values{"csrf": {csrf}, "name": {"Bad Name!"}}); status != 400 ||
		!strings.Contains(body, `id="bucket-name" type="text" name="name" value="Bad Name!" required aria-invalid="true"`) {
		t.Fatalf("bad bucket name: %d %s", status, body)
	}
	if status, body := post(t, b, "/console/z3", url.Values{"csrf": {csrf}, "name": {bucket}}); status != 200 || !strings.Contains(body, "Bucket "+bucket+" created") {
		t.Fatalf("create bucket: %d %s", status, body)
	}
	folder := "/console/z3/" + bucket + "/docs/"
	if status, _ := postFile(t, b, "/console/z3-upload/"+bucket+"/docs/", "", "a.txt", []byte("x")); status != 403 {
		t.Fatalf("upload without CSRF: %d", status)
	}
	const name = "<img src=x onerror=alert(1)>.txt"
	content := []byte("hello from the console\n")
	status, body := postFile(t, b, "/console/z3-upload/"+bucket+"/docs/", csrf, name, content)
	if status != 200 || !strings.Contains(body, "Uploaded.") || strings.Contains(body, "<img src=x") || !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;.txt") {
		t.Fatalf("upload: %d %s", status, body)
	}
	if status, body := get(t, b, "/console/z3/"+bucket+"/"); status != 200 || !strings.Contains(body, `href="/console/z3/`+bucket+`/docs/"`) {
		t.Fatalf("bucket root: %d %s", status, body)
	}
	// A name with URL delimiters: its links and its delete form still
	// name it.
	if status, body := postFile(t, b, "/console/z3-upload/"+bucket+"/docs/", csrf, "a?b#c.txt", []byte("odd")); status != 200 ||
		!strings.Contains(body, `action="/console/z3-delete/`+bucket+`/docs/a%3Fb%23c.txt"`) {
		t.Fatalf("odd name: %d %s", status, body)
	}
	if status, body := get(t, b, "/console/z3-download/"+bucket+"/docs/a%3Fb%23c.txt"); status != 200 || body != "odd" {
		t.Fatalf("download of the odd name: %d %q", status, body)
	}
	if status, _ := post(t, b, "/console/z3-delete/"+bucket+"/docs/a%3Fb%23c.txt", url.Values{"csrf": {csrf}}); status != 200 {
		t.Fatalf("delete of the odd name: %d", status)
	}
	// Download: a redirect to the presigned URL, then the bytes.
	dl := "/console/z3-download/" + bucket + "/docs/" + url.PathEscape(name)
	res, err := b.Get(testURL + dl)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Equal(got, content) || !strings.HasPrefix(res.Request.URL.Path, "/z3") && !strings.Contains(res.Request.URL.RawQuery, "sig") {
		t.Fatalf("download: %d at %s: %q", res.StatusCode, res.Request.URL, got)
	}
	// Another tenant's bucket: not listed, not reachable.
	other, err := ts.iam.CreateProject(t.Context(), "Other tenant")
	if err != nil {
		t.Fatal(err)
	}
	otherToken := ts.clientToken(t, other.ClientID, other.ClientSecret)
	theirs := other.ProjectID + "-files"
	if st, body := ts.do(t, "PUT", "/v1/z3/"+theirs, otherToken, ""); st != 200 {
		t.Fatalf("their bucket: %d %v", st, body)
	}
	if _, body := get(t, b, "/console/z3"); strings.Contains(body, theirs) {
		t.Errorf("another tenant's bucket is listed")
	}
	for _, p := range []string{"/console/z3/" + theirs + "/", "/console/z3-download/" + theirs + "/x.txt"} {
		if status, _ := get(t, b, p); status < 400 {
			t.Errorf("%s: %d", p, status)
		}
	}
	if status, _ := postFile(t, b, "/console/z3-upload/"+theirs+"/", csrf, "in.txt", []byte("x")); status < 400 {
		t.Errorf("upload to another tenant's bucket: %d", status)
	}
	// Read-only.
	ts.inviteConsoleDeveloper(t, "reader@example.org", `{"rule":[{"resource":["Z3:*"],"action":["Z3:ListBuckets","Z3:ListObjects","Z3:GetObject"],"effect":"Allow"},`+
		`{"resource":["Project:Settings"],"action":["Project:GetProjectInfo"],"effect":"Allow"}]}`)
	rb, rcsrf := ts.consoleSignIn(t, "reader@example.org")
	if status, body := get(t, rb, folder); status != 200 || !strings.Contains(body, "hello") && !strings.Contains(body, "bytes") || strings.Contains(body, "Upload file") || strings.Contains(body, ">Delete<") {
		t.Fatalf("reader's folder: %d %s", status, body)
	}
	if status, _ := postFile(t, rb, "/console/z3-upload/"+bucket+"/docs/", rcsrf, "forced.txt", []byte("x")); status != 403 {
		t.Errorf("forced upload: %d", status)
	}
	if status, _ := post(t, rb, "/console/z3-delete/"+bucket+"/docs/"+url.PathEscape(name), url.Values{"csrf": {rcsrf}}); status != 403 {
		t.Errorf("forced delete: %d", status)
	}
	// Delete, by the developer who may.
	if status, body := post(t, b, "/console/z3-delete/"+bucket+"/docs/"+url.PathEscape(name), url.Values{"csrf": {csrf}}); status != 200 || !strings.Contains(body, "This folder is empty") {
		t.Fatalf("delete: %d %s", status, body)
	}
}
