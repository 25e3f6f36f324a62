package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// execRaw runs a zambda through POST /v1/zambda/{id}/execute and returns
// the HTTP status and the body.
func (w *ward) execRaw(t *testing.T, token, id, body string) (int, string) {
	t.Helper()
	r := w.executeTimed(t, token, id, body)
	return r.status, string(r.body)
}

// sandboxProcs lists host processes that run as a sandbox's own uid
// (Ward gives each worker one from 1,000,000 up) with the given name.
func sandboxProcs(name string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		var comm string
		var uid int
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			switch {
			case len(f) > 1 && f[0] == "Name:":
				comm = f[1]
			case len(f) > 1 && f[0] == "Uid:":
				uid, _ = strconv.Atoi(f[1])
			}
		}
		if comm == name && uid >= 1_000_000 {
			out = append(out, pid)
		}
	}
	return out
}

// TestZambdaIsolation: project B's function attacks as a hostile tenant
// would, first Ward and its neighbours, then its own resources; every
// attempt fails inside the function, its resource attacks end that
// invocation only, and project A's function, data and token are as
// before, A's function answering throughout.
func TestZambdaIsolation(t *testing.T) {
	requireNode(t)
	if os.Geteuid() != 0 {
		needRoot(t, "the isolation test reads every process's uid on the host")
	}
	attack := zipFiles(t, map[string]string{"index.js": "testdata/attack/index.js"}, nil)
	probe := zipFiles(t, map[string]string{"index.js": "testdata/probe/index.js"}, nil)
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testIsolation(t, b, attack, probe) })
	}
}

func testIsolation(t *testing.T, b storetest.Backend, attackZip, probeZip string) {
	// A host service a worker must not reach (PostgreSQL and the debug
	// server are the real ones below): it counts connections.
	var hits sync.Map
	host, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	go func() {
		for {
			c, err := host.Accept()
			if err != nil {
				return
			}
			hits.Store(c.RemoteAddr().String(), true)
			c.Close()
		}
	}()
	debug := freeAddr(t)
	const canary = "ward-env-canary-6c1f"
	w := startWardEnv(t, b, []string{"WARD_CANARY=" + canary}, "--debug-addr", debug)
	tokA := w.token(t, w.Admin)
	projB := w.createProject(t, "B")
	tokB := w.token(t, projB)

	// Project A: a function (warm) and a patient.
	fnA := w.deployZambda(t, tokA, `{"name":"a-fn","runtime":"nodejs20.x"}`, probeZip)
	st, outA := w.execRaw(t, tokA, fnA, `{"mode":"echo"}`)
	if st != 200 {
		t.Fatalf("A's function: %d %s", st, outA)
	}
	st, pat := w.fhirDo(t, tokA, "POST", "Patient", patient("Neighbour"))
	if st != 201 {
		t.Fatalf("A's patient: %d", st)
	}
	patID := pat["id"].(string)
	patVersion := pat["meta"].(map[string]any)["versionId"]

	var codeFiles []string
	_ = filepath.WalkDir(filepath.Join(w.DataDir, "functions"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "index.js" {
			codeFiles = append(codeFiles, p)
		}
		return nil
	})
	if len(codeFiles) == 0 {
		t.Fatal("found no unpacked code of A's function")
	}
	wardPid := strconv.Itoa(w.cmd.Process.Pid)
	pgAddr := "127.0.0.1:5432"

	fnB := w.deployZambda(t, tokB, `{"name":"attack","runtime":"nodejs20.x","memorySize":128,"timeoutInSeconds":3}`, attackZip)
	// Filling /tmp (512 MiB) must end in ENOSPC, not a timeout: on a busy
	// machine it has taken over 3 s, so it runs with a longer timeout (25 s; an HTTP-triggered zambda may have 27).
	fnFill := w.deployZambda(t, tokB, `{"name":"attack-fill","runtime":"nodejs20.x","memorySize":128,"timeoutInSeconds":25}`, attackZip)
	targets := map[string]any{
		"mode": "probe",
		"read": []string{filepath.Join(w.DataDir, "ward.db"), filepath.Join(w.DataDir, "secrets.key"),
			filepath.Join(w.DataDir, "admin-credentials.json"), codeFiles[0],
			"/proc/" + wardPid + "/environ", "/proc/" + wardPid + "/cmdline", "/proc/" + wardPid + "/mem",
			"/etc/shadow", "/root/.bash_history"},
		"list":  []string{w.DataDir, filepath.Dir(codeFiles[0]), "/proc/" + wardPid, "/home", "/root"},
		"write": []string{"/var/task/index.js", "/etc/passwd", "/usr/bin/pwned", "/pwned", "/var/runtime/bootstrap.js"},
		"dial":  []string{debug, pgAddr, host.Addr().String(), "10.0.0.1:80", "169.254.169.254:80", "192.168.1.1:443"},
		"proxy": []string{debug, pgAddr, host.Addr().String(), "10.0.0.1:80", "169.254.169.254:80", "[::1]:5432", "localhost:5432"},
	}
	body, _ := json.Marshal(targets)
	st, out := w.execRaw(t, tokB, fnB, string(body))
	if st != 200 {
		t.Fatalf("attack probe: %d %s", st, out)
	}
	if strings.Contains(out, canary) {
		t.Errorf("Ward's environment leaked into the function's view: %s", out)
	}
	var exec struct {
		Output struct {
			Body string `json:"body"`
		} `json:"output"`
	}
	_ = json.Unmarshal([]byte(out), &exec)
	var res map[string]struct {
		OK  bool   `json:"ok"`
		Out string `json:"out"`
		Err string `json:"err"`
	}
	if err := json.Unmarshal([]byte(exec.Output.Body), &res); err != nil {
		// The function's output may be the parsed body already.
		var direct struct {
			Output json.RawMessage `json:"output"`
		}
		_ = json.Unmarshal([]byte(out), &direct)
		if err := json.Unmarshal(direct.Output, &res); err != nil {
			t.Fatalf("attack results: %v: %s", err, out)
		}
	}
	tried := 0
	for name, r := range res {
		if name == "whoami" || name == "pids" {
			continue
		}
		tried++
		if r.OK {
			t.Errorf("%s succeeded inside B's function: %q", name, r.Out)
		} else {
			t.Logf("%s: %s", name, r.Err)
		}
	}
	if want := 9 + 5 + 5 + 6 + 7; tried != want {
		t.Errorf("%d attempts reported, want %d", tried, want)
	}
	for name, r := range res {
		if strings.HasPrefix(name, "proxy ") && !strings.Contains(r.Err, "403") {
			t.Errorf("%s: %q, want the egress proxy's 403", name, r.Err)
		}
	}
	if got := res["whoami"].Out; got != "993:990" {
		t.Errorf("B's function runs as %q inside, want 993:990", got)
	}
	if pids := strings.Split(res["pids"].Out, ","); len(pids) > 2 {
		t.Errorf("B's function sees processes %v, want only its sandbox's two", pids)
	}
	n := 0
	hits.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Errorf("the host service got %d connections from the sandbox", n)
	}

	// Resource attacks, while A's function keeps answering.
	var lat []time.Duration
	var aFail []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			st, out := w.execRaw(t, tokA, fnA, `{"mode":"echo"}`)
			lat = append(lat, time.Since(start))
			if st != 200 {
				aFail = append(aFail, fmt.Sprintf("%d %s", st, out))
			}
		}
	})
	for _, tc := range []struct {
		mode, want, leftover string
	}{
		{"forkbomb", "timed out after 3 s", "sh"},
		{"alloc", "ran out of memory (memorySize 128 MB)", ""},
		{"fill", "ENOSPC", ""},
		{"spin", "timed out after 3 s", ""},
	} {
		fn := fnB
		if tc.mode == "fill" {
			fn = fnFill
		}
		st, out := w.execRaw(t, tokB, fn, `{"mode":"`+tc.mode+`"}`)
		if st == 200 || !strings.Contains(out, tc.want) {
			t.Errorf("%s: %d %s, want a failure with %q", tc.mode, st, out, tc.want)
		} else {
			t.Logf("%s: %d %s", tc.mode, st, out)
		}
		if tc.leftover != "" {
			waitUntil(t, "the fork bomb's processes to be gone", 10*time.Second, func() bool { return len(sandboxProcs(tc.leftover)) == 0 })
		}
	}
	// Processes started to outlive an invocation that succeeded.
	if st, out := w.execRaw(t, tokB, fnB, `{"mode":"orphan"}`); st != 200 {
		t.Errorf("orphan: %d %s", st, out)
	}
	waitUntil(t, "the left-behind processes to be gone", 10*time.Second, func() bool { return len(sandboxProcs("sleep")) == 0 })
	close(stop)
	wg.Wait()
	if len(aFail) > 0 {
		t.Errorf("A's function failed during B's attacks: %v", aFail)
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		t.Logf("A's function during B's attacks: %d calls, p50 %v, p99 %v, max %v", len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
	}

	// A is untouched: its function, data and token.
	if st, out := w.execRaw(t, tokA, fnA, `{"mode":"echo"}`); st != 200 || out != outA {
		t.Errorf("A's function after the attacks: %d %s (before: %s)", st, out, outA)
	}
	st, got := w.fhirDo(t, tokA, "GET", "Patient/"+patID, nil)
	if st != 200 || got["meta"].(map[string]any)["versionId"] != patVersion {
		t.Errorf("A's patient after the attacks: %d %v", st, got["meta"])
	}
	// B's function could not read A's token or data: B's own token sees
	// nothing of A.
	if st, _ := w.fhirDo(t, tokB, "GET", "Patient/"+patID, nil); st != 404 && st != 403 {
		t.Errorf("B reads A's patient: %d", st)
	}
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Errorf("timed out after %s waiting for %s", d, what)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSandboxUnprivileged runs `ward serve` as an unprivileged user (here
// nobody): the sandbox then rests on user namespaces alone (every worker
// shares Ward's uid outside its namespaces), and still confines it.
func TestSandboxUnprivileged(t *testing.T) {
	requireNode(t)
	if os.Geteuid() != 0 {
		needRoot(t, "the test switches to another user")
	}
	// Not t.TempDir: its parent is closed to other users.
	dir, err := os.MkdirTemp("", "ward-unprivileged-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "ward")
	data, err := os.ReadFile(wardBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	if err := os.Chown(dataDir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	w := &ward{DataDir: dataDir, URL: "http://" + freeAddr(t), log: &syncBuffer{}, bin: bin,
		as: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}, env: []string{"HOME=" + dataDir}}
	w.launch(t)
	b, err := os.ReadFile(filepath.Join(dataDir, "admin-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &w.Admin); err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(w.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(hb), `"zambdaSandbox":"bwrap"`) {
		t.Fatalf("/healthz = %s, want the bubblewrap sandbox", hb)
	}
	tok := w.token(t, w.Admin)
	attack := zipFiles(t, map[string]string{"index.js": "testdata/attack/index.js"}, nil)
	fn := w.deployZambda(t, tok, `{"name":"attack","runtime":"nodejs20.x"}`, attack)
	body, _ := json.Marshal(map[string]any{"mode": "probe",
		"read":  []string{filepath.Join(dataDir, "ward.db"), filepath.Join(dataDir, "secrets.key")},
		"write": []string{"/var/task/index.js", "/pwned"},
		"dial":  []string{"127.0.0.1:5432"}})
	st, out := w.execRaw(t, tok, fn, string(body))
	if st != 200 {
		t.Fatalf("execute as an unprivileged Ward: %d %s", st, out)
	}
	for _, probe := range []string{"read " + filepath.Join(dataDir, "ward.db"), "read " + filepath.Join(dataDir, "secrets.key"),
		"write /var/task/index.js", "write /pwned", "dial 127.0.0.1:5432"} {
		if !strings.Contains(out, `"`+probe+`":{"ok":false`) {
			t.Errorf("%s did not fail: %s", probe, out)
		}
	}
	if !strings.Contains(out, `"whoami":{"ok":true,"out":"993:990"}`) {
		t.Errorf("whoami: %s", out)
	}
}

// TestSandboxUnavailable: on a host where the sandbox cannot run (here:
// no bubblewrap on the PATH), functions are refused with the reason and
// /healthz says so, unless --zambda-sandbox=off, which runs them with a
// warning there too.
func TestSandboxUnavailable(t *testing.T) {
	requireNode(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal(err)
	}
	// A PATH with node but without bwrap.
	bin := t.TempDir()
	if err := os.Symlink(node, filepath.Join(bin, "node")); err != nil {
		t.Fatal(err)
	}
	probe := zipFiles(t, map[string]string{"index.js": "testdata/probe/index.js"}, nil)
	for _, tc := range []struct {
		mode, health, status, says string
	}{
		{"auto", `"zambdaSandbox":"unavailable"`, "503", "bubblewrap (bwrap) is not installed"},
		{"off", `"zambdaSandbox":"off"`, "200", `"echo"`},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			w := startWardEnv(t, storetest.Backends()[0], []string{"PATH=" + bin}, "--zambda-sandbox", tc.mode)
			res, err := http.Get(w.URL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			hb, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if !strings.Contains(string(hb), tc.health) || !strings.Contains(string(hb), `"warning"`) {
				t.Errorf("/healthz = %s, want %s and a warning", hb, tc.health)
			}
			tok := w.token(t, w.Admin)
			fn := w.deployZambda(t, tok, `{"name":"p","runtime":"nodejs20.x"}`, probe)
			st, out := w.execRaw(t, tok, fn, `{"mode":"echo"}`)
			if strconv.Itoa(st) != tc.status || !strings.Contains(out, tc.says) {
				t.Errorf("execute: %d %s, want %s with %q", st, out, tc.status, tc.says)
			}
		})
	}
}

// needRoot fails in CI, which runs as root, and skips elsewhere.
func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI runs as root, but this test runs as uid %d: %s", os.Geteuid(), why)
	}
	t.Skipf("%s: run it as root (not CI, so skipping)", why)
}
