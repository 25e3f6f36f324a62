package e2e

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// zipFiles writes a zip holding files (name -> path on disk, or contents
// when the value starts with "data:") and returns its path.
func zipFiles(t *testing.T, files map[string]string, exec map[string]bool) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "code.zip")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, src := range files {
		var data []byte
		if rest, ok := strings.CutPrefix(src, "data:"); ok {
			data = []byte(rest)
		} else if data, err = os.ReadFile(src); err != nil {
			t.Fatal(err)
		}
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(0o644)
		if exec[name] {
			h.SetMode(0o755)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return out
}

// goLambdaZip builds testdata/golambda (aws-lambda-go) as a static
// `bootstrap` and zips it.
func goLambdaZip(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.Command("go", "build", "-o", bin, "./testdata/golambda")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the Go lambda: %v\n%s", err, out)
	}
	return zipFiles(t, map[string]string{"bootstrap": bin}, map[string]bool{"bootstrap": true})
}

// TestZambdasWithSDK runs e2e/zambda.test.mjs against a server on each
// backend.
func TestZambdasWithSDK(t *testing.T) {
	probe := zipFiles(t, map[string]string{"index.js": "testdata/probe/index.js"}, nil)
	golang := goLambdaZip(t)
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			w := startWard(t, b)
			nodeTest(t, "zambda.test.mjs", map[string]string{
				"WARD_URL":             w.URL,
				"WARD_PROJECT_ID":      w.Admin.ProjectID,
				"WARD_A_CLIENT_ID":     w.Admin.ClientID,
				"WARD_A_CLIENT_SECRET": w.Admin.ClientSecret,
				"WARD_ZIP_PROBE":       probe,
				"WARD_ZIP_GO":          golang,
			})
		})
	}
}

// deployZambda creates a function through the API and uploads its zip.
func (w *ward) deployZambda(t *testing.T, token, spec, zipPath string) string {
	t.Helper()
	var z struct {
		ID string `json:"id"`
	}
	if st := w.api(t, token, "POST", "/zambda", spec, &z); st != 200 {
		t.Fatalf("create zambda: %d", st)
	}
	var up struct {
		SignedURL string `json:"signedUrl"`
	}
	if st := w.api(t, token, "POST", "/zambda/"+z.ID+"/s3-upload", `{}`, &up); st != 200 {
		t.Fatalf("s3-upload: %d", st)
	}
	data, _ := os.ReadFile(zipPath)
	upload(t, up.SignedURL, bytes.NewReader(data), int64(len(data)))
	var got struct {
		Status, StatusReason string
	}
	w.api(t, token, "GET", "/zambda/"+z.ID, "", &got)
	if got.Status != "Active" {
		t.Fatalf("zambda status %s: %s", got.Status, got.StatusReason)
	}
	return z.ID
}

// TestCronTwoReplicas runs a rate(1 minute) zambda on two servers sharing
// one PostgreSQL (and one data directory for Z3): each tick runs once.
func TestCronTwoReplicas(t *testing.T) {
	var pg storetest.Backend
	for _, b := range storetest.Backends() {
		if b.Name == "postgres" {
			pg = b
		}
	}
	if pg.Name == "" {
		t.Skip("PostgreSQL is not available (not CI)")
	}
	t.Parallel()
	a := startWard(t, pg)
	// Replicas behind one load balancer share one public URL (token
	// issuer and audience).
	b := &ward{DataDir: a.DataDir, DB: a.DB, URL: "http://" + freeAddr(t), log: &syncBuffer{}, Admin: a.Admin,
		flags: []string{"--public-url", a.URL}}
	b.launch(t)
	tok := a.token(t, a.Admin)
	probe := zipFiles(t, map[string]string{"index.js": "testdata/probe/index.js"}, nil)
	id := a.deployZambda(t, tok, `{"name":"ticker","runtime":"nodejs20.x","triggerMethod":"cron","schedule":{"expression":"rate(1 minute)"}}`, probe)

	// Poll the logs (either server answers) until two ticks have run.
	starts := regexp.MustCompile(`^START RequestId: (cron-[0-9a-f]+-(\d+)-\d+)`)
	deadline := time.Now().Add(200 * time.Second)
	for {
		var res struct {
			LogEvents []struct{ Message string } `json:"logEvents"`
		}
		if st := b.api(t, tok, "POST", "/zambda/"+id+"/logStream/search", `{"filter":"START"}`, &res); st != 200 {
			t.Fatalf("log search: %d", st)
		}
		perTick := map[string]int{}
		for _, e := range res.LogEvents {
			if m := starts.FindStringSubmatch(e.Message); m != nil {
				perTick[m[2]]++
			}
		}
		for tick, n := range perTick {
			if n != 1 {
				t.Fatalf("tick %s ran %d times", tick, n)
			}
		}
		if len(perTick) >= 2 {
			t.Logf("ticks run once each: %v", perTick)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d ticks ran in 200 s", len(perTick))
		}
		time.Sleep(time.Second) // polling interval, bounded by the deadline
	}
}

// TestZambdaSecretsAtRest: a secret's value is not stored in clear text and
// never appears in the server's logs.
func TestZambdaSecretsAtRest(t *testing.T) {
	w := startWard(t, storetest.Backends()[0])
	tok := w.token(t, w.Admin)
	const value = "sk_live_do-not-leak-4242"
	if st := w.api(t, tok, "POST", "/secret", fmt.Sprintf(`{"name":"STRIPE","value":%q}`, value), nil); st != 200 {
		t.Fatalf("set secret: %d", st)
	}
	var got map[string]string
	w.api(t, tok, "GET", "/secret/STRIPE", "", &got)
	if got["value"] != value {
		t.Fatalf("get secret: %v", got)
	}
	var list []map[string]any
	w.api(t, tok, "GET", "/secret", "", &list)
	if len(list) != 1 || list[0]["value"] != nil {
		t.Fatalf("list shows values: %v", list)
	}
	db, _ := os.ReadFile(filepath.Join(w.DataDir, "ward.db"))
	wal, _ := os.ReadFile(filepath.Join(w.DataDir, "ward.db-wal"))
	if bytes.Contains(db, []byte(value)) || bytes.Contains(wal, []byte(value)) {
		t.Error("the secret is stored in clear text")
	}
	if strings.Contains(w.log.String(), value) {
		t.Error("the secret appears in the server log")
	}
	res, _ := http.Get(w.URL + "/v1/secret/STRIPE")
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("secret without a token: %d", res.StatusCode)
	}
}

// TestSubscriptionZambda: a zapehr-lambda: subscription runs the zambda
// with the Patient as event.body, and the zambda writes back with its
// execution-role token.
func TestSubscriptionZambda(t *testing.T) {
	w := startWard(t, storetest.Backends()[0])
	tok := w.token(t, w.Admin)
	var role struct {
		ID string `json:"id"`
	}
	w.api(t, tok, "POST", "/iam/role", `{"name":"noter","accessPolicy":{"rule":[{"resource":"FHIR:Observation:*","action":"FHIR:Create","effect":"Allow"}]}}`, &role)
	w.api(t, tok, "POST", "/secret", fmt.Sprintf(`{"name":"FHIR_BASE","value":%q}`, w.URL+"/fhir"), nil)
	probe := zipFiles(t, map[string]string{"index.js": "testdata/probe/index.js"}, nil)
	id := w.deployZambda(t, tok, fmt.Sprintf(`{"name":"on-patient","runtime":"nodejs20.x","triggerMethod":"subscription","executionRoleId":%q}`, role.ID), probe)
	sub := map[string]any{"resourceType": "Subscription", "status": "requested", "reason": "e2e", "criteria": "Patient?family=Lambda",
		"channel": map[string]any{"type": "rest-hook", "endpoint": "zapehr-lambda:" + id, "payload": "application/fhir+json"}}
	if st, out := w.fhirDo(t, tok, "POST", "Subscription", sub); st != 201 {
		t.Fatalf("subscription: %d %v", st, out)
	}
	_, p := w.fhirDo(t, tok, "POST", "Patient", patient("Lambda"))
	waitFor(t, "the zambda's Observation", 15*time.Second, func() bool {
		_, b := w.fhirDo(t, tok, "GET", "Observation?subject=Patient/"+p["id"].(string), nil)
		entries, _ := b["entry"].([]any)
		return len(entries) == 1
	})
}
