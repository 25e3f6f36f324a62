package server

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/egress"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/z3"
	"github.com/wardhealth/ward/internal/z3/blob"
	"github.com/wardhealth/ward/internal/zambda"
	"github.com/wardhealth/ward/internal/zambda/runtime"
)

// hostileWorker stands in for a worker process (the edge: e2e's
// TestConsole2 runs real Node): it answers and logs markup.
type hostileWorker struct{}

func (hostileWorker) Invoke(_ context.Context, _ runtime.Function, inv runtime.Invocation) (runtime.Result, error) {
	return runtime.Result{
		Payload: []byte(`{"statusCode":200,"body":"</pre><script>alert(1)</script>"}`),
		Logs:    []runtime.LogLine{{Time: time.Now(), Stream: "stdout", Text: "worker says <img src=x onerror=alert(2)>"}},
	}, nil
}

func newZambdaConsoleServer(t *testing.T) *testServer {
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
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		z3Svc, err := z3.New(t.Context(), z3.Config{PublicURL: testURL}, st, sealer, blobs, time.Now, log)
		if err != nil {
			t.Fatal(err)
		}
		zs := zambda.New(zambda.Config{WorkDir: t.TempDir()}, st, d.IAM, z3Svc, nil, hostileWorker{}, sealer, time.Now, log)
		t.Cleanup(zs.Flush)
		d.Z3, d.Zambda = z3Svc, zs
	})
}

// postZip posts a zip upload form to path.
func postZip(t *testing.T, b *http.Client, path, csrf string, data []byte) (int, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if csrf != "" {
		mw.WriteField("csrf", csrf)
	}
	fw, _ := mw.CreateFormFile("zip", "code.zip")
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

func nodeZip(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("index.js")
	w.Write([]byte(`exports.index = async () => ({statusCode: 200, body: "ok"});`))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var zambdaIDOnPage = regexp.MustCompile(`id="zambda-id">([^<]+)<`)

// The zambda pages: create (the API's message next to a bad field), a
// zip upload through the presigned URL (CSRF checked on the multipart
// form too), invoke and the log search with the function's markup shown
// as text, secrets by name only; another tenant's zambda is 404 on every
// page and action.
func TestConsoleZambdas(t *testing.T) {
	ts := newZambdaConsoleServer(t)
	ts.inviteConsoleDeveloper(t, "dev@example.org", `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`)
	b, csrf := ts.consoleSignIn(t, "dev@example.org")
	form := func(kv ...string) url.Values {
		v := url.Values{"csrf": {csrf}, "runtime": {"nodejs20.x"}, "triggerMethod": {"http_auth"}, "memorySize": {"256"}, "timeoutInSeconds": {"5"}}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	status, body := post(t, b, "/console/zambdas/new", form("name", "<b>bad</b>"))
	if status != 400 || !regexp.MustCompile(`id="name"[^>]*aria-invalid="true"`).MatchString(body) || strings.Contains(body, "<b>bad</b>") {
		t.Fatalf("bad name: %d %s", status, body)
	}
	if status, body := post(t, b, "/console/zambdas/new", form("name", "slow", "memorySize", "lots")); status != 400 || !strings.Contains(body, `id="memory"`) {
		t.Fatalf("bad memory: %d %s", status, body)
	}
	status, body = post(t, b, "/console/zambdas/new", form("name", "echo"))
	m := zambdaIDOnPage.FindStringSubmatch(body)
	if status != 200 || m == nil || !strings.Contains(body, "Draft") {
		t.Fatalf("create: %d %s", status, body)
	}
	page := "/console/zambdas/" + m[1]
	if status, body := get(t, b, "/console/zambdas?q=ech"); status != 200 || !strings.Contains(body, `href="`+page+`"`) {
		t.Fatalf("list: %d %s", status, body)
	}
	// The zip: refused without the session's token, then uploaded.
	if status, _ := postZip(t, b, page+"/upload", "", nodeZip(t)); status != 403 {
		t.Fatalf("upload without CSRF: %d", status)
	}
	if status, _ := postZip(t, b, page+"/upload", "x"+csrf[1:], nodeZip(t)); status != 403 {
		t.Fatalf("upload with a wrong CSRF token: %d", status)
	}
	if status, body := postZip(t, b, page+"/upload", csrf, []byte("not a zip")); status != 422 || !strings.Contains(body, `class="problem" role="alert">The uploaded code was refused`) {
		t.Fatalf("upload of a non-zip: %d %s", status, body)
	}
	if status, body := postZip(t, b, page+"/upload", csrf, nodeZip(t)); status != 200 || !strings.Contains(body, "Code uploaded") || !strings.Contains(body, "Active") {
		t.Fatalf("upload: %d %s", status, body)
	}
	// Invoke: the output is text on the page.
	status, body = post(t, b, page+"/invoke", url.Values{"csrf": {csrf}, "payload": {`{"a":1}`}})
	if status != 200 || !strings.Contains(body, "Status 200") || strings.Contains(body, "<script>alert(1)") ||
		!strings.Contains(body, "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatalf("invoke: %d %s", status, body)
	}
	if status, body := post(t, b, page+"/invoke", url.Values{"csrf": {csrf}, "payload": {`{nope`}}); status != 400 || !strings.Contains(body, "not JSON") {
		t.Fatalf("invoke with a bad payload: %d %s", status, body)
	}
	// The log line, once written (after the answer): text too.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body = get(t, b, page+"?logs=worker")
		if strings.Contains(body, "worker says &lt;img src=x onerror=alert(2)&gt;") {
			break
		}
		if strings.Contains(body, "<img src=x") {
			t.Fatalf("log line not escaped: %s", body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line: %s", body)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	// The follower's JSON: the lines after a time, as data (not markup).
	res, err := b.Get(testURL + page + "/logs?after=0&logs=worker")
	if err != nil {
		t.Fatal(err)
	}
	var tail struct {
		Lines []struct{ Time, Message string }
		Last  int64
	}
	json.NewDecoder(res.Body).Decode(&tail)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" || len(tail.Lines) == 0 ||
		tail.Lines[0].Message != "worker says <img src=x onerror=alert(2)>" || tail.Last == 0 {
		t.Fatalf("log tail: %d %+v", res.StatusCode, tail)
	}
	if status, body := get(t, b, page+"/logs?after="+strconv.FormatInt(tail.Last, 10)+"&logs=worker"); status != 200 || !strings.Contains(body, `"lines":[]`) {
		t.Fatalf("log tail after the last line: %d %s", status, body)
	}
	if status, _ := get(t, b, page+"/logs?after=soon"); status != 400 {
		t.Fatalf("log tail with a bad time: %d", status)
	}
	// Secrets: the value never comes back.
	if status, body := post(t, b, "/console/secrets", url.Values{"csrf": {csrf}, "name": {"API_KEY"}, "value": {"hunter2-value"}}); status != 200 ||
		!strings.Contains(body, "Secret API_KEY saved") || strings.Contains(body, "hunter2-value") {
		t.Fatalf("set secret: %d %s", status, body)
	}
	if status, body := post(t, b, "/console/secrets", url.Values{"csrf": {csrf}, "name": {"bad name"}, "value": {"hunter3-value"}}); status != 400 ||
		strings.Contains(body, "hunter3-value") || !regexp.MustCompile(`id="secret-name"[^>]*aria-invalid="true"`).MatchString(body) {
		t.Fatalf("bad secret name: %d %s", status, body)
	}
	if status, body := post(t, b, "/console/secrets/API_KEY/delete", url.Values{"csrf": {csrf}}); status != 200 || !strings.Contains(body, "Secret API_KEY deleted") {
		t.Fatalf("delete secret: %d %s", status, body)
	}
	// Another tenant's zambda: 404 everywhere, and untouched.
	other, err := ts.iam.CreateProject(t.Context(), "Other tenant")
	if err != nil {
		t.Fatal(err)
	}
	otherToken := ts.clientToken(t, other.ClientID, other.ClientSecret)
	st, theirs := ts.do(t, "POST", "/v1/zambda", otherToken, `{"name":"theirs","runtime":"nodejs20.x"}`)
	if st != 200 {
		t.Fatalf("other tenant's zambda: %d %v", st, theirs)
	}
	tp := "/console/zambdas/" + theirs["id"].(string)
	if status, body := get(t, b, tp); status != 404 || strings.Contains(body, "theirs") {
		t.Errorf("GET %s: %d", tp, status)
	}
	if status, body := get(t, b, tp+"/logs?after=0"); status != 404 || strings.Contains(body, "theirs") {
		t.Errorf("log tail of another tenant's zambda: %d %s", status, body)
	}
	for _, p := range []string{tp, tp + "/invoke"} {
		if status, _ := post(t, b, p, form("name", "mine", "payload", "{}")); status != 404 {
			t.Errorf("POST %s: %d, want 404", p, status)
		}
	}
	if status, _ := postZip(t, b, tp+"/upload", csrf, nodeZip(t)); status != 404 {
		t.Errorf("upload to another tenant's zambda: %d, want 404", status)
	}
	if _, got := ts.do(t, "GET", "/v1/zambda/"+theirs["id"].(string), otherToken, ""); got["name"] != "theirs" || got["fileInfo"] != nil {
		t.Errorf("the other tenant's zambda changed: %v", got)
	}
}

// The project page picks the authorizer zambda among the project's
// zambdas (seed 001), and shows the API's refusal of an unknown one at
// its field.
func TestConsoleAuthorizerZambda(t *testing.T) {
	ts := newZambdaConsoleServer(t)
	ts.inviteConsoleDeveloper(t, "dev@example.org", `{"rule":[{"resource":["*"],"action":["*"],"effect":"Allow"}]}`)
	b, csrf := ts.consoleSignIn(t, "dev@example.org")
	status, body := post(t, b, "/console/zambdas/new", url.Values{"csrf": {csrf}, "name": {"checker"}, "runtime": {"nodejs20.x"},
		"triggerMethod": {"http_auth"}, "memorySize": {"256"}, "timeoutInSeconds": {"5"}})
	m := zambdaIDOnPage.FindStringSubmatch(body)
	if status != 200 || m == nil {
		t.Fatalf("create: %d %s", status, body)
	}
	id := m[1]
	if status, body := get(t, b, "/console/project"); status != 200 || !strings.Contains(body, `<option value="`+id+`">checker</option>`) {
		t.Fatalf("project page offers no authorizer: %d %s", status, body)
	}
	settings := url.Values{"csrf": {csrf}, "name": {"Main"}, "authorizerZambdaId": {id}}
	if status, body := post(t, b, "/console/project", settings); status != 200 || !strings.Contains(body, "Saved.") {
		t.Fatalf("save: %d %s", status, body)
	}
	if status, body := get(t, b, "/console/project"); status != 200 || !strings.Contains(body, `<option value="`+id+`" selected>checker</option>`) {
		t.Fatalf("authorizer not kept: %d %s", status, body)
	}
	settings.Set("authorizerZambdaId", "00000000-0000-0000-0000-000000000000")
	status, body = post(t, b, "/console/project", settings)
	if status != 400 || !regexp.MustCompile(`id="authorizer"[^>]*aria-invalid="true"`).MatchString(body) {
		t.Fatalf("unknown zambda: %d %s", status, body)
	}
	settings.Set("authorizerZambdaId", "")
	if status, body := post(t, b, "/console/project", settings); status != 200 || strings.Contains(body, `" selected>checker`) {
		t.Fatalf("clear: %d %s", status, body)
	}
}
