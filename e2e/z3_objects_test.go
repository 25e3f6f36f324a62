package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// api calls the Project API and decodes a JSON answer into out (if not nil).
func (w *ward) api(t *testing.T, token, method, path, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, w.URL+"/v1"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return res.StatusCode
}

func (w *ward) presign(t *testing.T, token, bucket, path, action string) string {
	t.Helper()
	var out struct {
		SignedURL string `json:"signedUrl"`
	}
	if st := w.api(t, token, "POST", "/z3/"+bucket+"/"+path, `{"action":"`+action+`"}`, &out); st != 200 {
		t.Fatalf("presign %s %s/%s: %d", action, bucket, path, st)
	}
	return out.SignedURL
}

// pattern is a deterministic byte stream of n bytes that is not held in
// memory: both sides hash it as it flows.
type pattern struct{ off, n int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n-p.off {
		b = b[:p.n-p.off]
	}
	for i := range b {
		x := p.off + int64(i)
		b[i] = byte(x*7 + x>>11)
	}
	p.off += int64(len(b))
	return len(b), nil
}

func patternSHA(n int64) string {
	h := sha256.New()
	io.Copy(h, &pattern{n: n})
	return hex.EncodeToString(h.Sum(nil))
}

// vmHWM is the peak resident set of a process, in KiB.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

func upload(t *testing.T, url string, body io.Reader, size int64) {
	t.Helper()
	req, _ := http.NewRequest("PUT", url, body)
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("upload: %d %s", res.StatusCode, msg)
	}
}

func download(t *testing.T, url string) (status int, sum string, n int64) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	h := sha256.New()
	n, err = io.Copy(h, res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, hex.EncodeToString(h.Sum(nil)), n
}

// TestZ3Objects: 0 bytes, 1 byte and 5 MiB on both backends, 200 MiB on
// SQLite with the server's peak memory reported, and tenant isolation.
func TestZ3Objects(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			w := startWard(t, b)
			tok := w.token(t, w.Admin)
			if st := w.api(t, tok, "PUT", "/z3/sizes", "", nil); st != 200 {
				t.Fatalf("create bucket: %d", st)
			}
			sizes := []int64{0, 1, 5 << 20}
			if b.Name == "sqlite" {
				sizes = append(sizes, 200<<20)
			}
			for _, size := range sizes {
				path := fmt.Sprintf("obj-%d.bin", size)
				before := vmHWM(t, w.cmd.Process.Pid)
				start := time.Now()
				upload(t, w.presign(t, tok, "sizes", path, "upload"), &pattern{n: size}, size)
				took := time.Since(start)
				status, sum, n := download(t, w.presign(t, tok, "sizes", path, "download"))
				if status != 200 || n != size || sum != patternSHA(size) {
					t.Fatalf("%d bytes: status %d, got %d bytes, sha256 %s, want %s", size, status, n, sum, patternSHA(size))
				}
				after := vmHWM(t, w.cmd.Process.Pid)
				if size >= 100<<20 {
					t.Logf("%d MiB upload: server peak RSS %d MiB before, %d MiB after (upload took %v)", size>>20, before>>10, after>>10, took)
					// Streaming: the peak must not grow with the object (200 MiB here).
					if after-before > 64<<10 {
						t.Errorf("server peak RSS grew by %d MiB during a %d MiB upload: not streamed", (after-before)>>10, size>>20)
					}
				}
			}

			// Another project cannot list, sign or fetch these objects, even
			// with a hand-made URL that names this project.
			other := w.createProject(t, "other")
			otherTok := w.token(t, other)
			if st := w.api(t, otherTok, "GET", "/z3/sizes/", "", nil); st != 404 {
				t.Errorf("other project lists the bucket: %d", st)
			}
			if st := w.api(t, otherTok, "POST", "/z3/sizes/obj-1.bin", `{"action":"download"}`, nil); st != 404 {
				t.Errorf("other project signs a URL for the bucket: %d", st)
			}
			w.api(t, otherTok, "PUT", "/z3/sizes", "", nil) // its own bucket of the same name
			theirs := w.presign(t, otherTok, "sizes", "obj-1.bin", "download")
			if st, _, _ := download(t, theirs); st != 404 {
				t.Errorf("other project's URL for its own empty bucket: %d", st)
			}
			forged := strings.Replace(theirs, "/"+other.ProjectID+"/", "/"+w.Admin.ProjectID+"/", 1)
			if st, _, _ := download(t, forged); st != 403 {
				t.Errorf("URL re-pointed at another project: %d, want 403", st)
			}
		})
	}
}

// TestZ3CrashMidUpload kills the server (SIGKILL) while an upload streams
// in, restarts it, and checks the object is either absent or the previous
// one, never partial.
func TestZ3CrashMidUpload(t *testing.T) {
	w := startWard(t, storetest.Backends()[0])
	tok := w.token(t, w.Admin)
	w.api(t, tok, "PUT", "/z3/crash", "", nil)
	upload(t, w.presign(t, tok, "crash", "kept.bin", "upload"), strings.NewReader("previous"), 8)
	newURL := w.presign(t, tok, "crash", "new.bin", "upload")
	keptURL := w.presign(t, tok, "crash", "kept.bin", "upload")

	for _, url := range []string{newURL, keptURL} {
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			req, _ := http.NewRequest("PUT", url, pr)
			req.ContentLength = 64 << 20
			res, err := http.DefaultClient.Do(req)
			if err == nil {
				res.Body.Close()
			}
			done <- err
		}()
		// Send 1 MiB and wait until the server has put bytes on disk.
		if _, err := io.CopyN(pw, &pattern{n: 1 << 20}, 1<<20); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for partialBytes(t, filepath.Join(w.DataDir, "z3")) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no partial upload appeared on disk")
			}
			time.Sleep(10 * time.Millisecond) // polling interval, bounded by the deadline
		}
		w.kill9(t)
		pw.CloseWithError(io.ErrClosedPipe)
		<-done
		w.launch(t)
		tok = w.token(t, w.Admin)
	}
	if st, _, _ := download(t, w.presign(t, tok, "crash", "new.bin", "download")); st != 404 {
		t.Errorf("interrupted first upload: status %d, want 404 (no object)", st)
	}
	st, sum, _ := download(t, w.presign(t, tok, "crash", "kept.bin", "download"))
	want := sha256.Sum256([]byte("previous"))
	if st != 200 || sum != hex.EncodeToString(want[:]) {
		t.Errorf("interrupted overwrite: status %d sha %s, want the previous object", st, sum)
	}
	var list []map[string]any
	w.api(t, tok, "GET", "/z3/crash/", "", &list)
	if len(list) != 1 {
		t.Errorf("listing after the crashes: %v, want only kept.bin", list)
	}
}

// partialBytes sums the sizes of files under dir that are not yet objects
// (the filesystem backend's temporary files).
func partialBytes(t *testing.T, dir string) int64 {
	var n int64
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.Contains(fi.Name(), ".tmp") {
			n += fi.Size()
		}
		return nil
	})
	return n
}
