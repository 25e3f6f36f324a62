package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	// testdata/golambda is built with aws-lambda-go; go mod tidy skips
	// testdata, so this import keeps the module in go.mod.
	_ "github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/wardhealth/ward/internal/zambda/sandbox"
)

// built holds the Go test binaries (testdata/golambda as bootstrap,
// testdata/noop), built once per test run.
var built struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	sandbox.Init() // workers' sandboxes start this binary as their init program
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// goBuild builds a testdata main package statically, once.
func goBuild(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "ward-runtime-test-"); built.err != nil {
			return
		}
		// Readable by the sandboxes' own uids.
		if built.err = os.Chmod(built.dir, 0o755); built.err != nil {
			return
		}
		for _, pkg := range []string{"golambda", "noop"} {
			out := filepath.Join(built.dir, pkg, "bootstrap")
			cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./testdata/"+pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				built.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
				return
			}
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.dir
}

// goFn is the aws-lambda-go test function as a provided.al2023 function.
func goFn(t testing.TB, key string) Function {
	return Function{Key: key, Name: key, Runtime: "provided.al2023", CodeDir: filepath.Join(goBuild(t), "golambda"),
		MemoryMB: 128, Timeout: 5 * time.Second}
}

// needNode skips without Node outside CI; in CI a missing Node fails.
func needNode(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is required in CI")
		}
		t.Skip("node is not installed (not CI, so skipping)")
	}
}

// testSandbox is the bubblewrap sandbox, as ward serve uses it, unless
// WARD_TEST_SANDBOX=off; outside CI a host without it runs unsandboxed.
func testSandbox(t testing.TB, workDir string) sandbox.Sandbox {
	t.Helper()
	if os.Getenv("WARD_TEST_SANDBOX") == "off" {
		return nil
	}
	sb, err := sandbox.NewBwrap(context.Background(), sandbox.Config{WorkDir: workDir})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("bubblewrap sandbox: %v", err)
		}
		t.Logf("no bubblewrap sandbox here (not CI): running workers without one: %v", err)
		return nil
	}
	t.Cleanup(func() { sb.Close() })
	return sb
}

func newPool(t testing.TB, cfg Config) *Pool {
	t.Helper()
	if cfg.WorkDir == "" {
		cfg.WorkDir = t.TempDir()
	}
	if cfg.Sandbox == nil {
		cfg.Sandbox = testSandbox(t, cfg.WorkDir)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// nodeFn writes files (name -> content) into a fresh code dir.
func nodeFn(t testing.TB, key string, files map[string]string) Function {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil { // readable by the sandboxes' uids
		t.Fatal(err)
	}
	for name, code := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(code), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Function{Key: key, Name: key, Runtime: "nodejs20.x", CodeDir: dir, MemoryMB: 256, Timeout: 5 * time.Second}
}

var reqSeq atomic.Int64

func invoke(t testing.TB, p *Pool, fn Function, event string) (Result, error) {
	t.Helper()
	return p.Invoke(context.Background(), fn, Invocation{RequestID: fmt.Sprintf("req-%d", reqSeq.Add(1)),
		Payload: []byte(event), Deadline: time.Now().Add(fn.Timeout)})
}

// mustInvoke fails the test on an error.
func mustInvoke(t testing.TB, p *Pool, fn Function, event string) Result {
	t.Helper()
	res, err := invoke(t, p, fn, event)
	if err != nil {
		t.Fatalf("invoke %s: %v (logs %v)", event, err, res.Logs)
	}
	return res
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// alive reports whether a process exists (and is not a zombie).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the ")" that ends the command name.
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == ')' {
			return i+2 < len(b) && b[i+2] != 'Z'
		}
	}
	return true
}

// lastPid is the host pid of the runtime process of fn's most recently
// used idle worker: the one that just answered. (Inside a sandbox the
// function sees its own pid namespace.)
func lastPid(t testing.TB, p *Pool, fn Function) int {
	t.Helper()
	p.mu.Lock()
	f := p.fns[fn.Key]
	var w *worker
	if f != nil && len(f.idle) > 0 {
		w = f.idle[len(f.idle)-1]
	}
	p.mu.Unlock()
	if w == nil {
		t.Fatalf("%s has no idle worker", fn.Key)
	}
	return w.proc.Main()
}
