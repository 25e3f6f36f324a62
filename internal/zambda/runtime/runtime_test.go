package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

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

func newPool(t testing.TB) *Pool {
	t.Helper()
	p, err := New(Config{WorkDir: t.TempDir(), QueueWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// nodeFn writes index.js into a fresh directory.
func nodeFn(t testing.TB, key, code string) Function {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.js"), []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	return Function{Key: key, Name: key, Runtime: "nodejs20.x", CodeDir: dir, MemoryMB: 256, Timeout: 5 * time.Second}
}

func invoke(t testing.TB, p *Pool, fn Function, event string) (Result, error) {
	t.Helper()
	return p.Invoke(context.Background(), fn, Invocation{RequestID: fmt.Sprintf("req-%d", time.Now().UnixNano()),
		Payload: []byte(event), Deadline: time.Now().Add(fn.Timeout)})
}

const probe = `
exports.index = async (event, context) => {
  switch (event.mode) {
    case 'throw': throw new TypeError('bad thing');
    case 'crash': process.exit(3);
    case 'hang': for (;;) {}
    case 'oom': { const a = []; for (;;) a.push(new Array(1e6).fill(Math.random())); }
    case 'big': return { pad: 'x'.repeat(7 << 20) };
    case 'log': console.log('line one'); console.error('line two'); return { logged: true };
    case 'env': return { env: process.env, cwd: process.cwd(), remaining: context.getRemainingTimeInMillis() > 0 };
    case 'pid': return { pid: process.pid };
    case 'slow': await new Promise((r) => setTimeout(r, 300)); return { slow: true };
    default: return { echo: event };
  }
};`

func TestNodeHandlerStyles(t *testing.T) {
	needNode(t)
	p := newPool(t)
	for _, tc := range []struct{ name, code string }{
		{"async index", `exports.index = async (e) => ({ got: e.x });`},
		{"handler", `exports.handler = async (e) => ({ got: e.x });`},
		{"sync", `exports.index = (e) => ({ got: e.x });`},
		{"callback", `exports.index = (e, ctx, cb) => { setTimeout(() => cb(null, { got: e.x }), 5); };`},
		{"esm", "export const index = async (e) => ({ got: e.x });"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fn := nodeFn(t, "styles-"+strings.ReplaceAll(tc.name, " ", "-"), tc.code)
			if tc.name == "esm" {
				os.Rename(filepath.Join(fn.CodeDir, "index.js"), filepath.Join(fn.CodeDir, "index.mjs"))
			}
			res, err := invoke(t, p, fn, `{"x":42}`)
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Payload) != `{"got":42}` {
				t.Fatalf("payload = %s", res.Payload)
			}
		})
	}
	t.Run("no handler", func(t *testing.T) {
		fn := nodeFn(t, "nohandler", `exports.other = () => 1;`)
		_, err := invoke(t, p, fn, `{}`)
		if !IsKind(err, KindInit) || !strings.Contains(err.Error(), `no function "index"`) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestNodeFailuresAndRecovery(t *testing.T) {
	needNode(t)
	p := newPool(t)
	fn := nodeFn(t, "probe", probe)
	fn.MemoryMB, fn.Timeout = 128, time.Second
	for _, tc := range []struct {
		mode string
		kind Kind
		msg  string
	}{
		{"throw", KindHandler, "threw TypeError: bad thing"},
		{"crash", KindCrash, "exited with code 3"},
		{"hang", KindTimeout, "timed out after 1 s"},
		{"oom", KindOOM, "ran out of memory (memorySize 128 MB)"},
		{"big", KindTooLarge, "6 MiB"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			res, err := invoke(t, p, fn, `{"mode":"`+tc.mode+`"}`)
			if !IsKind(err, tc.kind) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want kind %d with %q (logs %v)", err, tc.kind, tc.msg, res.Logs)
			}
			ok, err := invoke(t, p, fn, `{"mode":"echo","after":"`+tc.mode+`"}`)
			if err != nil || !strings.Contains(string(ok.Payload), tc.mode) {
				t.Fatalf("next invocation after %s: %s, %v", tc.mode, ok.Payload, err)
			}
		})
	}
}

func TestNodeLogsWarmReuseAndEnv(t *testing.T) {
	needNode(t)
	t.Setenv("WARD_CANARY", "must-not-leak")
	t.Setenv("NODE_EXTRA_CA_CERTS", "/nonexistent/ca.pem")
	p := newPool(t)
	fn := nodeFn(t, "logs", probe)
	fn.Env = map[string]string{"GIVEN": "yes"}
	first, err := invoke(t, p, fn, `{"mode":"pid"}`)
	if err != nil || !first.Cold || first.InitDuration <= 0 {
		t.Fatalf("first: %+v %v", first, err)
	}
	second, err := invoke(t, p, fn, `{"mode":"pid"}`)
	if err != nil || second.Cold || string(second.Payload) != string(first.Payload) {
		t.Fatalf("second call is not the same warm worker: %s vs %s (cold %v) %v", second.Payload, first.Payload, second.Cold, err)
	}
	res, err := invoke(t, p, fn, `{"mode":"log"}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Logs) != 2 || res.Logs[0].Text != "line one" || res.Logs[0].Stream != "stdout" || res.Logs[1].Text != "line two" || res.Logs[1].Stream != "stderr" {
		t.Fatalf("logs = %+v", res.Logs)
	}
	res, err = invoke(t, p, fn, `{"mode":"echo"}`)
	if err != nil || len(res.Logs) != 0 {
		t.Fatalf("the next invocation carries old lines: %+v %v", res.Logs, err)
	}
	res, err = invoke(t, p, fn, `{"mode":"env"}`)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Env       map[string]string `json:"env"`
		Cwd       string            `json:"cwd"`
		Remaining bool              `json:"remaining"`
	}
	json.Unmarshal(res.Payload, &out)
	if out.Env["WARD_CANARY"] != "" || out.Env["NODE_EXTRA_CA_CERTS"] != "" {
		t.Errorf("the function sees the server's environment: %v", out.Env)
	}
	if out.Env["GIVEN"] != "yes" || out.Env["AWS_LAMBDA_RUNTIME_API"] == "" || out.Cwd != fn.CodeDir || !out.Remaining {
		t.Errorf("env = %v, cwd = %s", out.Env, out.Cwd)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	needNode(t)
	p := newPool(t)
	fn := nodeFn(t, "busy", probe)
	fn.Concurrency = 1
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = invoke(t, p, fn, `{"mode":"slow"}`)
		}(i)
	}
	wg.Wait()
	busy := 0
	for _, err := range errs {
		if IsKind(err, KindBusy) {
			busy++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	// Each slow call takes 300 ms and the queue waits 300 ms: at least one
	// of three is turned away.
	if busy == 0 {
		t.Error("no invocation was refused past the concurrency limit of 1")
	}
}

// goBootstrap builds testdata/golambda (aws-lambda-go) as a static bootstrap.
func goBootstrap(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "bootstrap"), "./testdata/golambda")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return dir
}

func TestGoProvided(t *testing.T) {
	p := newPool(t)
	fn := Function{Key: "go", Name: "go", Runtime: "provided.al2023", CodeDir: goBootstrap(t), MemoryMB: 128, Timeout: 5 * time.Second}
	res, err := invoke(t, p, fn, `{"mode":"echo","x":1}`)
	if err != nil || !strings.Contains(string(res.Payload), `"x":1`) {
		t.Fatalf("echo: %s %v %v", res.Payload, err, res.Logs)
	}
	_, err = invoke(t, p, fn, `{"mode":"error"}`)
	if !IsKind(err, KindHandler) || !strings.Contains(err.Error(), "go says no") {
		t.Fatalf("error: %v", err)
	}
	res, err = invoke(t, p, fn, `{"mode":"oom"}`)
	if !IsKind(err, KindOOM) {
		t.Fatalf("oom: %v (logs %v)", err, res.Logs)
	}
	if res, err = invoke(t, p, fn, `{"mode":"echo"}`); err != nil {
		t.Fatalf("after oom: %v", err)
	}
}

func TestMissingRuntime(t *testing.T) {
	p, err := New(Config{WorkDir: t.TempDir(), NodePath: ""})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.cfg.NodePath = "" // as on a host without Node
	_, err = invoke(t, p, Function{Key: "n", Name: "n", Runtime: "nodejs20.x", CodeDir: t.TempDir(), MemoryMB: 128, Timeout: time.Second}, `{}`)
	if !IsKind(err, KindNoRuntime) || !strings.Contains(err.Error(), "Node.js") {
		t.Fatalf("err = %v", err)
	}
	_, err = invoke(t, p, Function{Key: "b", Name: "b", Runtime: "provided", CodeDir: t.TempDir(), MemoryMB: 128, Timeout: time.Second}, `{}`)
	if !IsKind(err, KindInit) || !strings.Contains(err.Error(), "bootstrap") {
		t.Fatalf("err = %v", err)
	}
}

func BenchmarkNodeWarm(b *testing.B) {
	needNode(b)
	p := newPool(b)
	fn := nodeFn(b, "bench-node", `exports.index = async () => ({ statusCode: 200, body: '{}' });`)
	if _, err := invoke(b, p, fn, `{}`); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := invoke(b, p, fn, `{}`); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGoWarm(b *testing.B) {
	p := newPool(b)
	fn := Function{Key: "bench-go", Name: "bench-go", Runtime: "provided", CodeDir: goBootstrap(b), MemoryMB: 128, Timeout: 5 * time.Second}
	if _, err := invoke(b, p, fn, `{}`); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := invoke(b, p, fn, `{}`); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdStart starts a new worker per iteration (a fresh Key).
func BenchmarkColdStart(b *testing.B) {
	for _, rt := range []string{"node", "go"} {
		b.Run(rt, func(b *testing.B) {
			p := newPool(b)
			var fn Function
			if rt == "node" {
				needNode(b)
				fn = nodeFn(b, "cold", `exports.index = async () => ({ statusCode: 200, body: '{}' });`)
			} else {
				fn = Function{Name: "cold", Runtime: "provided", CodeDir: goBootstrap(b), MemoryMB: 128, Timeout: 5 * time.Second}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				fn.Key = fmt.Sprintf("cold-%s-%d", rt, i)
				if _, err := invoke(b, p, fn, `{}`); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
