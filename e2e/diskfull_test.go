package e2e

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/wardhealth/ward/internal/store/storetest"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// fillDisk writes path until the disk refuses more.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := bytes.Repeat([]byte{0x5a}, 64<<10)
	for _, n := range []int{64 << 10, 4 << 10, 512} {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
}

// fullLoad is what writers saw while the disk filled.
type fullLoad struct {
	mu       sync.Mutex
	patients []string         // ids of acknowledged creates (201)
	objects  map[string]int64 // acknowledged uploads (200): path -> size
	full     map[string]int   // 507s by writer kind
	bad      []string         // any other answer
}

func (l *fullLoad) badf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.bad) < 10 {
		l.bad = append(l.bad, fmt.Sprintf(format, args...))
	}
}

func (l *fullLoad) fullSeen(kind string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.full[kind]
}

// diskFullAnswer checks a 507: FHIR an OperationOutcome (issue code
// no-store), the Project API {message, code}; both name the full disk.
func diskFullAnswer(fhir bool, body []byte) error {
	if fhir {
		var oo struct {
			ResourceType string `json:"resourceType"`
			Issue        []struct {
				Code    string `json:"code"`
				Details struct {
					Text string `json:"text"`
				} `json:"details"`
			} `json:"issue"`
		}
		if err := json.Unmarshal(body, &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 ||
			oo.Issue[0].Code != "no-store" || !strings.Contains(oo.Issue[0].Details.Text, "disk full") {
			return fmt.Errorf("507 body is not an OperationOutcome naming the full disk: %s", body)
		}
		return nil
	}
	var e struct {
		Message string `json:"message"`
		Code    int    `json:"code"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Code != 507 || !strings.Contains(e.Message, "disk full") {
		return fmt.Errorf("507 body is not {message naming the full disk, code 507}: %s", body)
	}
	return nil
}

func do(req *http.Request) (int, []byte, error) {
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// TestDiskFull runs `ward serve` (SQLite, Z3 on local files) with its data
// directory on a small tmpfs, fills the disk under a write load of FHIR
// creates, Z3 uploads and Project API writes, and checks: the server does
// not crash; writes get 507 naming the full disk in each API's error
// shape; reads work; /readyz says not ready; once space is freed, writes
// resume without a restart; every acknowledged write survives a kill -9
// and a clean restart; the database passes PRAGMA integrity_check; and a
// start on a full disk exits naming the cause and the directory.
func TestDiskFull(t *testing.T) {
	disk := storetest.SmallDisk(t, 64<<20)
	w := &ward{DataDir: filepath.Join(disk, "data"), log: &syncBuffer{}}
	w.URL = "http://" + freeAddr(t)
	w.launch(t)
	b, err := os.ReadFile(filepath.Join(w.DataDir, "admin-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &w.Admin); err != nil {
		t.Fatal(err)
	}
	tok := w.token(t, w.Admin)
	if st := w.api(t, tok, "PUT", "/z3/full", "", nil); st != 200 {
		t.Fatalf("create bucket: %d", st)
	}
	uploadURL := func(path string) string { return w.presign(t, tok, "full", path, "upload") }
	// Presigned ahead: signing is no write, but keep the load's requests
	// to the writes under test.
	var urls []string
	for i := range 400 {
		urls = append(urls, uploadURL(fmt.Sprintf("obj-%d.bin", i)))
	}

	load := &fullLoad{objects: map[string]int64{}, full: map[string]int{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	note := func(kind string, fhir bool, status int, body []byte, err error) bool {
		switch {
		case err != nil:
			load.badf("%s: %v", kind, err)
		case status == 507:
			if err := diskFullAnswer(fhir, body); err != nil {
				load.badf("%s: %v", kind, err)
			}
			load.mu.Lock()
			load.full[kind]++
			load.mu.Unlock()
		default:
			return true
		}
		return false
	}
	name := strings.Repeat("n", 2000) // a few KiB per create: the disk fills sooner
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body, _ := json.Marshal(map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": fmt.Sprintf("full-%d-%d", g, i), "given": []string{name}}}})
				req, _ := http.NewRequest("POST", w.URL+"/fhir/Patient", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/fhir+json")
				status, out, err := do(req)
				if note("fhir", true, status, out, err) {
					var p struct{ ID string }
					if status != 201 || json.Unmarshal(out, &p) != nil || p.ID == "" {
						load.badf("fhir create: %d %s", status, out)
						continue
					}
					load.mu.Lock()
					load.patients = append(load.patients, p.ID)
					load.mu.Unlock()
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, url := range urls {
			select {
			case <-stop:
				return
			default:
			}
			size := int64(256<<10 + i)
			req, _ := http.NewRequest("PUT", url, &pattern{n: size})
			req.ContentLength = size
			status, out, err := do(req)
			if note("z3", false, status, out, err) {
				if status != 200 {
					load.badf("z3 upload: %d %s", status, out)
					continue
				}
				load.mu.Lock()
				load.objects[fmt.Sprintf("obj-%d.bin", i)] = size
				load.mu.Unlock()
			}
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			req, _ := http.NewRequest("POST", w.URL+"/v1/iam/role", strings.NewReader(fmt.Sprintf(`{"name":"full-%d"}`, i)))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			status, out, err := do(req)
			if note("project", false, status, out, err) && status != 200 && status != 201 {
				load.badf("create role: %d %s", status, out)
			}
		}
	}()
	// Let the load write a while, then take the rest of the disk.
	deadline := time.Now().Add(30 * time.Second)
	for {
		load.mu.Lock()
		n := len(load.patients)
		load.mu.Unlock()
		if n >= 100 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling interval, bounded by the deadline
	}
	fillDisk(t, filepath.Join(disk, "filler"))
	deadline = time.Now().Add(60 * time.Second)
	for load.fullSeen("fhir") < 5 || load.fullSeen("project") < 5 || load.fullSeen("z3") < 1 {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling interval, bounded by the deadline
	}
	close(stop)
	wg.Wait()
	if len(load.bad) > 0 {
		t.Fatalf("answers other than success or 507 on a filling disk:\n%s", strings.Join(load.bad, "\n"))
	}
	for _, kind := range []string{"fhir", "project", "z3"} {
		if load.fullSeen(kind) == 0 {
			t.Fatalf("no %s write got a 507 on a full disk (507s: %v)", kind, load.full)
		}
	}
	t.Logf("on the filling disk: %d creates and %d uploads acknowledged; 507s %v", len(load.patients), len(load.objects), load.full)

	// Still full: the process lives, reads work, /readyz says why not.
	if w.cmd.ProcessState != nil {
		t.Fatal("ward exited on the full disk")
	}
	checkReads := func(when string) {
		t.Helper()
		for _, id := range load.patients {
			if st, _ := w.fhirDo(t, tok, "GET", "Patient/"+id, nil); st != 200 {
				t.Fatalf("%s: read of acknowledged Patient/%s: %d", when, id, st)
			}
		}
		for path, size := range load.objects {
			st, sum, n := download(t, w.presign(t, tok, "full", path, "download"))
			if st != 200 || n != size || sum != patternSHA(size) {
				t.Fatalf("%s: acknowledged upload %s: status %d, %d of %d bytes", when, path, st, n, size)
			}
		}
	}
	checkReads("on the full disk")
	if st, body := get(t, w.URL+"/readyz"); st != 503 || !strings.Contains(body, "disk full") {
		t.Fatalf("/readyz on a full disk: %d %s, want 503 naming the full disk", st, body)
	}

	// Space comes back: no restart, writes resume.
	if err := os.Remove(filepath.Join(disk, "filler")); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		st, body := get(t, w.URL+"/readyz")
		if st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after space was freed: %d %s", st, body)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, bounded by the deadline
	}
	st, p := w.fhirDo(t, tok, "POST", "Patient", patient("after"))
	if st != 201 {
		t.Fatalf("create after space was freed: %d %v", st, p)
	}
	load.patients = append(load.patients, p["id"].(string))
	upload(t, uploadURL("after.bin"), &pattern{n: 1 << 20}, 1<<20)
	load.objects["after.bin"] = 1 << 20
	if st := w.api(t, tok, "POST", "/iam/role", `{"name":"after"}`, nil); st != 200 && st != 201 {
		t.Fatalf("create role after space was freed: %d", st)
	}

	// Acknowledged means durable: kill -9, and the database is intact.
	w.kill9(t)
	integrity(t, filepath.Join(w.DataDir, "ward.db"))
	w.launch(t)
	checkReads("after kill -9 and restart")

	// A clean stop, a full disk, a start: it exits naming the cause and
	// the directory; with room again it starts and has everything.
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = w.cmd.Wait()
	fillDisk(t, filepath.Join(disk, "filler"))
	out := w.serveFails(t)
	if !strings.Contains(out, "disk full") || !strings.Contains(out, w.DataDir) {
		t.Fatalf("a start on a full disk says:\n%s\nwant the cause (disk full) and %s", out, w.DataDir)
	}
	if err := os.Remove(filepath.Join(disk, "filler")); err != nil {
		t.Fatal(err)
	}
	w.launch(t)
	checkReads("after a refused start on a full disk")
	integrity(t, filepath.Join(w.DataDir, "ward.db"))
}

// get returns a GET's status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// integrity runs PRAGMA integrity_check on the database file.
func integrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check of %s: %q %v", path, check, err)
	}
}
