package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// probe is a Node function that does whatever the event's mode asks.
const probe = `
const fs = require('node:fs'), path = require('node:path');
const token = Math.random(); // tells workers apart (pids repeat across sandboxes)
console.log('loading probe');
exports.index = async (event, context) => {
  switch (event.mode) {
    case 'throw': throw new TypeError('bad thing');
    case 'reject': return Promise.reject('plain string');
    case 'crash': process.exit(3);
    case 'hang': for (;;) {}
    case 'oom': { const a = []; for (;;) a.push(new Array(1e6).fill(Math.random())); }
    case 'buffers': { const a = []; for (;;) a.push(Buffer.alloc(16 << 20, 1)); }
    case 'big': return { pad: 'x'.repeat(7 << 20) };
    case 'uncaught': setTimeout(() => { throw new RangeError('late'); }, 1); return new Promise(() => {});
    case 'unhandled': Promise.reject(new Error('nobody waits')); return new Promise(() => {});
    case 'log': console.log('line one'); console.error('line two'); return { logged: true };
    case 'many': for (let i = 0; i < event.n; i++) console.log('line ' + i); return { n: event.n };
    case 'partial': process.stdout.write('no newline'); return {};
    case 'flood': { const s = 'y'.repeat(1000); for (let i = 0; i < 1000; i++) console.log(s); return {}; }
    case 'env': return { env: process.env, cwd: process.cwd(), ctx: { id: context.awsRequestId, name: context.functionName,
      remaining: context.getRemainingTimeInMillis(), arn: context.invokedFunctionArn, mem: context.memoryLimitInMB,
      group: context.logGroupName, stream: context.logStreamName } };
    case 'pid': return { pid: process.pid, token };
    case 'wait': // until the test puts a file into the code dir
      while (!fs.existsSync(path.join(process.env.LAMBDA_TASK_ROOT, event.release))) await new Promise((r) => setTimeout(r, 5));
      return { waited: true };
    default: return { echo: event };
  }
};`

func pidOf(t *testing.T, p *Pool, fn Function) int {
	t.Helper()
	var out struct{ Pid int }
	res := mustInvoke(t, p, fn, `{"mode":"pid"}`)
	if err := json.Unmarshal(res.Payload, &out); err != nil || out.Pid == 0 {
		t.Fatalf("pid: %s %v", res.Payload, err)
	}
	return lastPid(t, p, fn)
}

func TestNodeHandlerStyles(t *testing.T) {
	needNode(t)
	p := newPool(t, Config{})
	for _, tc := range []struct {
		name    string
		files   map[string]string
		handler string
		want    string
	}{
		{"async index", map[string]string{"index.js": `exports.index = async (e) => ({ got: e.x });`}, "", `{"got":42}`},
		{"handler fallback", map[string]string{"index.js": `exports.handler = async (e) => ({ got: e.x });`}, "", `{"got":42}`},
		{"sync", map[string]string{"index.js": `exports.index = (e) => ({ got: e.x });`}, "", `{"got":42}`},
		{"callback", map[string]string{"index.js": `exports.index = (e, ctx, cb) => { setTimeout(() => cb(null, { got: e.x }), 5); };`}, "", `{"got":42}`},
		{"context.succeed", map[string]string{"index.js": `exports.index = (e, ctx) => { ctx.succeed({ got: e.x }); };`}, "", `{"got":42}`},
		{"undefined is null", map[string]string{"index.js": `exports.index = async () => {};`}, "", `null`},
		{"string", map[string]string{"index.js": `exports.index = async () => 'hi';`}, "", `"hi"`},
		{"mjs", map[string]string{"index.mjs": `export const index = async (e) => ({ got: e.x });`}, "", `{"got":42}`},
		{"esm in js", map[string]string{"index.js": `export const index = async (e) => ({ got: e.x });`}, "", `{"got":42}`},
		{"esm with top-level await", map[string]string{"index.js": "const k = await Promise.resolve('got');\nexport const index = async (e) => ({ [k]: e.x });"}, "", `{"got":42}`},
		{"type module", map[string]string{"index.js": `export const handler = async (e) => ({ got: e.x });`, "package.json": `{"type":"module"}`}, "", `{"got":42}`},
		{"esm default export", map[string]string{"index.mjs": `export default { index: async (e) => ({ got: e.x }) };`}, "", `{"got":42}`},
		{"cjs", map[string]string{"index.cjs": `module.exports.index = async (e) => ({ got: e.x });`}, "", `{"got":42}`},
		{"handler in a subdir", map[string]string{"app.js": `exports.main = async (e) => ({ got: e.x });`}, "app.main", `{"got":42}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fn := nodeFn(t, "styles-"+strings.ReplaceAll(tc.name, " ", "-"), tc.files)
			fn.Handler = tc.handler
			res := mustInvoke(t, p, fn, `{"x":42}`)
			if string(res.Payload) != tc.want {
				t.Fatalf("payload = %s, want %s", res.Payload, tc.want)
			}
		})
	}
}

func TestNodeInitErrors(t *testing.T) {
	needNode(t)
	p := newPool(t, Config{})
	for _, tc := range []struct {
		name, code, typ, msg string
	}{
		{"no handler", `exports.other = () => 1;`, "Runtime.HandlerNotFound", `exports no function 'index' (nor 'handler')`},
		{"syntax error", `exports.index = (`, "SyntaxError", "failed to load: SyntaxError"},
		{"throws at load", `throw new Error('boom at load');`, "Error", "boom at load"},
		{"missing module", "", "Runtime.ImportModuleError", "the zip must hold index.js"},
		{"missing dependency", `require('left-pad'); exports.index = async () => 1;`, "Error", "Cannot find module 'left-pad'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"index.js": tc.code}
			if tc.code == "" {
				files = map[string]string{"other.js": "exports.index = () => 1;"}
			}
			fn := nodeFn(t, "init-"+strings.ReplaceAll(tc.name, " ", "-"), files)
			for range 2 { // the second attempt starts a new worker and fails alike
				res, err := invoke(t, p, fn, `{}`)
				var e *Error
				if !errors.As(err, &e) || e.Kind != KindInit || !errors.Is(err, ErrInit) || e.ErrorType != tc.typ || !strings.Contains(e.Message, tc.msg) {
					t.Fatalf("err = %#v, want an init error %s with %q", err, tc.typ, tc.msg)
				}
				if !logged(res.Logs, "stderr", "Init Error") {
					t.Errorf("the init error is not in the logs: %v", res.Logs)
				}
			}
		})
	}
}

func logged(lines []LogLine, stream, text string) bool {
	for _, l := range lines {
		if l.Stream == stream && strings.Contains(l.Text, text) {
			return true
		}
	}
	return false
}

func TestNodeFailuresAndRecovery(t *testing.T) {
	needNode(t)
	p := newPool(t, Config{})
	fn := nodeFn(t, "probe", map[string]string{"index.js": probe})
	fn.MemoryMB = 128
	for _, tc := range []struct {
		mode    string
		timeout time.Duration
		kind    Kind
		msg     string
		log     string // a stderr line the failure leaves, if any
	}{
		{"throw", 0, KindHandler, "zambda probe threw TypeError: bad thing", "Invoke Error"},
		{"reject", 0, KindHandler, "threw Error: plain string", "Invoke Error"},
		{"uncaught", 0, KindHandler, "threw RangeError: late", "Uncaught Exception"},
		{"unhandled", 0, KindHandler, "threw Runtime.UnhandledPromiseRejection: nobody waits", "Uncaught Exception"},
		{"crash", 0, KindCrash, "process exited with code 3 before answering", ""},
		{"hang", time.Second, KindTimeout, "timed out after 1 s", ""},
		{"oom", 0, KindOOM, "ran out of memory (memorySize 128 MB)", "JavaScript heap out of memory"},
		{"buffers", 0, KindOOM, "ran out of memory (memorySize 128 MB)", ""},
		{"big", 0, KindTooLarge, "larger than the 6 MiB limit", ""},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			before := pidOf(t, p, fn)
			fn := fn
			if tc.timeout > 0 {
				fn.Timeout = tc.timeout
			}
			res, err := invoke(t, p, fn, `{"mode":"`+tc.mode+`"}`)
			if !errors.Is(err, tc.kind) || !IsKind(err, tc.kind) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v with %q (logs %v)", err, tc.kind, tc.msg, res.Logs)
			}
			if tc.log != "" && !logged(res.Logs, "stderr", tc.log) {
				t.Errorf("no stderr line with %q in %v", tc.log, res.Logs)
			}
			if alive(before) {
				waitFor(t, "the failed worker to be gone", 5*time.Second, func() bool { return !alive(before) })
			}
			if after := pidOf(t, p, fn); after == before {
				t.Errorf("the worker was not replaced after %s", tc.mode)
			}
		})
	}
}

func TestNodeLogs(t *testing.T) {
	needNode(t)
	p := newPool(t, Config{})
	fn := nodeFn(t, "logs", map[string]string{"index.js": probe})
	res := mustInvoke(t, p, fn, `{"mode":"echo"}`)
	if !res.Cold || len(res.Logs) != 1 || res.Logs[0].Text != "loading probe" {
		t.Fatalf("the cold invocation should carry the init's line: %+v", res.Logs)
	}
	res = mustInvoke(t, p, fn, `{"mode":"log"}`)
	// Order holds within a stream; between the two pipes it is as read.
	if len(res.Logs) != 2 || !logged(res.Logs, "stdout", "line one") || !logged(res.Logs, "stderr", "line two") {
		t.Fatalf("logs = %+v", res.Logs)
	}
	if res.Logs[0].Time.IsZero() {
		t.Error("no time on log lines")
	}
	if res = mustInvoke(t, p, fn, `{"mode":"echo"}`); len(res.Logs) != 0 {
		t.Fatalf("the next invocation carries old lines: %+v", res.Logs)
	}
	// Many lines, written just before answering, all arrive with their
	// invocation and none later.
	for range 3 {
		res = mustInvoke(t, p, fn, `{"mode":"many","n":3000}`)
		if len(res.Logs) != 3000 || res.Logs[0].Text != "line 0" || res.Logs[2999].Text != "line 2999" {
			t.Fatalf("%d lines, first %+v", len(res.Logs), res.Logs[:min(len(res.Logs), 1)])
		}
	}
	res = mustInvoke(t, p, fn, `{"mode":"partial"}`)
	if len(res.Logs) != 1 || res.Logs[0].Text != "no newline" {
		t.Fatalf("partial line: %+v", res.Logs)
	}
	res = mustInvoke(t, p, fn, `{"mode":"flood"}`)
	size := 0
	for _, l := range res.Logs {
		size += len(l.Text)
	}
	last := res.Logs[len(res.Logs)-1].Text
	if size > maxLogBytes+1024 || size < maxLogBytes-2048 || !strings.HasPrefix(last, "[truncated") {
		t.Fatalf("flood kept %d bytes in %d lines, last %q", size, len(res.Logs), last)
	}
	if res = mustInvoke(t, p, fn, `{"mode":"echo"}`); len(res.Logs) != 0 {
		t.Fatalf("lines leaked into the next invocation: %d", len(res.Logs))
	}
}

func TestNodeWarmReuse(t *testing.T) {
	needNode(t)
	p := newPool(t, Config{})
	fn := nodeFn(t, "warm", map[string]string{"index.js": probe})
	first := mustInvoke(t, p, fn, `{"mode":"pid"}`)
	if !first.Cold || first.InitDuration <= 0 || first.Duration <= 0 || first.MaxRSSKB <= 0 {
		t.Fatalf("first: %+v", first)
	}
	second := mustInvoke(t, p, fn, `{"mode":"pid"}`)
	if second.Cold || second.InitDuration != 0 || string(second.Payload) != string(first.Payload) {
		t.Fatalf("second call is not on the same warm worker: %s vs %s (cold %v)", second.Payload, first.Payload, second.Cold)
	}
	// Settings that shape the process start a new one, even with the same Key.
	for _, change := range []func(*Function){
		func(f *Function) { f.MemoryMB = 512 },
		func(f *Function) { f.Env = map[string]string{"NEW": "1"} },
	} {
		change(&fn)
		res := mustInvoke(t, p, fn, `{"mode":"pid"}`)
		if !res.Cold || string(res.Payload) == string(first.Payload) {
			t.Fatalf("a settings change reused the old worker: %s cold %v", res.Payload, res.Cold)
		}
	}
	// Timeout and concurrency do not.
	fn.Timeout, fn.Concurrency = 7*time.Second, 3
	if res := mustInvoke(t, p, fn, `{"mode":"pid"}`); res.Cold {
		t.Fatal("a timeout change started a new worker")
	}
}

func TestNodeEnv(t *testing.T) {
	needNode(t)
	t.Setenv("WARD_CANARY", "must-not-leak")
	t.Setenv("NODE_EXTRA_CA_CERTS", "/nonexistent/ca.pem")
	t.Setenv("NODE_OPTIONS", "--require=/nonexistent.js")
	work := t.TempDir()
	p := newPool(t, Config{WorkDir: work})
	fn := nodeFn(t, "env", map[string]string{"index.js": probe})
	fn.Env = map[string]string{"GIVEN": "yes", "PATH": "/opt/bin:/usr/bin", "AWS_LAMBDA_RUNTIME_API": "10.0.0.1:1"}
	res, err := p.Invoke(context.Background(), fn, Invocation{RequestID: "req-env-1", Payload: []byte(`{"mode":"env"}`), Deadline: time.Now().Add(4 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Env map[string]string
		Cwd string
		Ctx struct {
			ID, Name, Arn, Mem, Group, Stream string
			Remaining                         int64
		}
	}
	if err := json.Unmarshal(res.Payload, &out); err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"PATH": true, "HOME": true, "TMPDIR": true, "LANG": true, "TZ": true, "LAMBDA_TASK_ROOT": true,
		"LAMBDA_RUNTIME_DIR": true, "_HANDLER": true, "GIVEN": true, "_X_AMZN_TRACE_ID": true,
		"AWS_REGION": true, "AWS_DEFAULT_REGION": true, "AWS_EXECUTION_ENV": true}
	taskRoot, cwd, runtimeDir := fn.CodeDir, fn.CodeDir, work
	if p.isolated {
		// The sandbox's: its egress proxy, and the shell's PWD.
		for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy", "PWD"} {
			allowed[k] = true
		}
		taskRoot, cwd, runtimeDir = "/var/task", "/var/task", "/var/runtime"
	}
	for k := range out.Env {
		if !allowed[k] && !strings.HasPrefix(k, "AWS_LAMBDA_") {
			t.Errorf("the function sees %s=%q", k, out.Env[k])
		}
	}
	e := out.Env
	if e["GIVEN"] != "yes" || e["PATH"] != "/opt/bin:/usr/bin" || e["AWS_LAMBDA_RUNTIME_API"] == "10.0.0.1:1" ||
		e["AWS_LAMBDA_FUNCTION_NAME"] != "env" || e["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] != "256" || e["LAMBDA_TASK_ROOT"] != taskRoot ||
		e["_HANDLER"] != "index.index" || e["TZ"] != "UTC" || e["LANG"] != "C.UTF-8" ||
		e["AWS_EXECUTION_ENV"] != "AWS_Lambda_nodejs20.x" || e["AWS_REGION"] != "local" || e["AWS_LAMBDA_LOG_GROUP_NAME"] != "/aws/lambda/env" ||
		!logStream.MatchString(e["AWS_LAMBDA_LOG_STREAM_NAME"]) || e["LAMBDA_RUNTIME_DIR"] != runtimeDir {
		t.Errorf("env = %v", e)
	}
	if p.isolated {
		if e["HOME"] != "/tmp" || e["TMPDIR"] != "/tmp" {
			t.Errorf("HOME %q, TMPDIR %q: want the sandbox's /tmp", e["HOME"], e["TMPDIR"])
		}
	} else {
		if !strings.HasPrefix(e["HOME"], work+string(filepath.Separator)) || e["TMPDIR"] != e["HOME"] {
			t.Errorf("HOME %q is not a scratch dir under the work dir %s", e["HOME"], work)
		}
		if st, err := os.Stat(e["HOME"]); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("scratch dir: %v %v", st, err)
		}
	}
	if out.Cwd != cwd {
		t.Errorf("cwd = %s, want %s", out.Cwd, cwd)
	}
	if c := out.Ctx; c.ID != "req-env-1" || c.Name != "env" || c.Mem != "256" || !strings.HasSuffix(c.Arn, ":function:env") || c.Remaining < 2000 || c.Remaining > 4000 ||
		c.Group != "/aws/lambda/env" || c.Stream != e["AWS_LAMBDA_LOG_STREAM_NAME"] {
		t.Errorf("context = %+v", c)
	}
	if res.RequestID != "req-env-1" {
		t.Errorf("RequestID = %s", res.RequestID)
	}
	// An id that would need escaping is replaced by a fresh UUID.
	res, err = p.Invoke(context.Background(), fn, Invocation{RequestID: "a b/c", Payload: []byte(`{"mode":"env"}`)})
	if err != nil || len(res.RequestID) != 36 || !strings.Contains(string(res.Payload), res.RequestID) {
		t.Fatalf("unsafe id: %s %v", res.RequestID, err)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	needNode(t)
	p := newPool(t, Config{QueueWait: 10 * time.Second})
	fn := nodeFn(t, "busy", map[string]string{"index.js": probe})
	fn.Concurrency = 1
	event := `{"mode":"wait","release":"release"}`

	var wg sync.WaitGroup
	var firstErr error
	wg.Go(func() { _, firstErr = invoke(t, p, fn, event) })
	busyWorker(t, p)

	// The wait for a slot never outlasts the invocation's deadline.
	_, err := p.Invoke(context.Background(), fn, Invocation{Payload: []byte(`{}`), Deadline: time.Now().Add(100 * time.Millisecond)})
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "at its limit of 1 invocations at once") {
		t.Fatalf("past the limit: %v", err)
	}
	// One that waits long enough gets the slot when it frees up.
	var queuedErr error
	wg.Go(func() { _, queuedErr = invoke(t, p, fn, `{"mode":"echo"}`) })
	if err := os.WriteFile(filepath.Join(fn.CodeDir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if firstErr != nil || queuedErr != nil {
		t.Fatalf("first: %v, queued: %v", firstErr, queuedErr)
	}
}

func TestNodeWritesFiles(t *testing.T) {
	needNode(t)
	p := newPool(t, Config{})
	fn := nodeFn(t, "tmp", map[string]string{"index.js": `
const fs = require('node:fs'), os = require('node:os'), path = require('node:path');
exports.index = async () => { const f = path.join(os.tmpdir(), 'n'); const n = fs.existsSync(f) ? +fs.readFileSync(f, 'utf8') + 1 : 1; fs.writeFileSync(f, String(n)); return n; };`})
	for want := 1; want <= 2; want++ {
		if res := mustInvoke(t, p, fn, `{}`); string(res.Payload) != string(rune('0'+want)) {
			t.Fatalf("tmp counter = %s, want %d", res.Payload, want)
		}
	}
}

func TestNodeInitTimeout(t *testing.T) {
	needNode(t)
	p := newPool(t, Config{})
	fn := nodeFn(t, "slowload", map[string]string{"index.js": "console.log('loading forever'); for (;;) {}"})
	fn.Timeout = time.Second
	res, err := invoke(t, p, fn, `{}`)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "timed out after 1 s while loading") {
		t.Fatalf("err = %v", err)
	}
	if !logged(res.Logs, "stdout", "loading forever") {
		t.Errorf("logs = %+v", res.Logs)
	}
}
