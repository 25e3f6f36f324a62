package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wardhealth/ward/internal/zambda/sandbox"
)

// worker is one function process (in its sandbox) and the Runtime API
// server it talks to.
type worker struct {
	fn      Function // the settings it was started with
	name    string   // fn.Name, or the Key when unnamed: for messages
	arn     string
	maxOut  int
	proc    *sandbox.Process
	pid     int // the process Ward spawned, for logs
	srv     *http.Server
	logs    *capture
	started time.Time

	ready   chan struct{} // closed by the first GET /next
	readyAt time.Time     // written before ready is closed
	jobs    chan *call    // hands an invocation to a waiting GET /next
	initErr chan answer   // POST /init/error (buffered 1)

	mu  sync.Mutex
	cur *call // the invocation in flight, nil between invocations

	// uncounted: stopped to make room for another worker, which took its
	// place in Pool.live (guarded by Pool.mu).
	uncounted bool

	dead  chan struct{} // closed once the process has exited and its output is read
	state *os.ProcessState
	// killedBy is why Ward killed the process (0: it was not Ward); read
	// after dead, to tell Ward's kills from the kernel's.
	killedBy atomic.Int32
	killOnce sync.Once

	lastUsed time.Time // guarded by Pool.mu
}

// kill reasons, stored in worker.killedBy.
const (
	killTimeout int32 = iota + 1
	killCanceled
	killReplaced // after a failure, a stale config, or idleness
	killClosed
)

func isNode(rt string) bool { return rt == "nodejs20.x" || rt == "nodejs22.x" }

func isProvided(rt string) bool { return rt == "provided.al2023" || rt == "provided" }

// argv is the command that runs fn, as the process sees it.
func (p *Pool) argv(fn Function) ([]string, error) {
	switch {
	case isNode(fn.Runtime):
		if p.cfg.NodePath == "" {
			return nil, newError(KindNoRuntime, "runtime %s needs Node.js, which is not installed on this server (no node on its PATH): install Node.js 20 or later, or set the path to node in Ward's config", fn.Runtime)
		}
		// No V8 flags (--max-old-space-size): any flag changes V8's flag
		// hash, so Node can no longer use the code cache of its built-in
		// modules, and a cold start costs 10-20 ms more. RLIMIT_DATA bounds
		// the heap instead; V8 then fails with "JavaScript heap out of
		// memory" at the limit, after a last-resort GC.
		if p.isolated {
			return []string{p.cfg.NodePath, sandbox.RuntimeDir + "/bootstrap.js"}, nil
		}
		return []string{p.cfg.NodePath, p.bootstrap}, nil
	case isProvided(fn.Runtime):
		return []string{filepath.Join(p.taskRoot(fn), "bootstrap")}, nil
	}
	return nil, newError(KindNoRuntime, "runtime %q is not supported: use nodejs20.x, nodejs22.x, provided.al2023 or provided", fn.Runtime)
}

// taskRoot is where the function's code is, as the process sees it.
func (p *Pool) taskRoot(fn Function) string {
	if p.isolated {
		return sandbox.TaskRoot
	}
	return fn.CodeDir
}

// reserved variables are the runtime's own: the function's Env cannot
// replace them (as on Lambda).
func reserved(k string) bool {
	return k == "_HANDLER" || k == "LAMBDA_TASK_ROOT" || k == "LAMBDA_RUNTIME_DIR" || k == "AWS_EXECUTION_ENV" ||
		strings.HasPrefix(k, "AWS_LAMBDA_")
}

// env builds the worker's environment from scratch: nothing of Ward's own
// leaks (no secrets, no database paths, no NODE_EXTRA_CA_CERTS, which alone
// costs Node ~50 ms at start). taskRoot and runtimeDir are as the process
// sees them: the code, and the directory of Ward's Node bootstrap.
//
// It is Lambda's "defined runtime environment", as far as it applies (AWS's
// own runtime clients, such as aws-lambda-ric, refuse to start without the
// log group and stream). Not set: AWS_ACCESS_KEY(_ID), AWS_SECRET_ACCESS_KEY
// and AWS_SESSION_TOKEN (Ward has no AWS credentials to give: the execution
// role's token comes in the event), _X_AMZN_TRACE_ID (per invocation: the
// runtime client sets it from Lambda-Runtime-Trace-Id), LD_LIBRARY_PATH and
// NODE_PATH (Lambda's point at /var/lang, /var/runtime and layers under
// /opt, which Ward does not have), AWS_XRAY_* (no X-Ray daemon),
// AWS_LAMBDA_LOG_FORMAT and AWS_LAMBDA_LOG_LEVEL (Ward stores text logs as
// written), AWS_LAMBDA_MAX_CONCURRENCY (Lambda Managed Instances only: it
// turns aws-lambda-ric's multi-concurrent mode on) and the credential and
// metadata endpoints (AWS_CONTAINER_*, AWS_LAMBDA_METADATA_*).
func env(fn Function, taskRoot, home, runtimeDir string) ([]string, error) {
	handler := fn.Handler
	if handler == "" {
		handler = "index.index"
	}
	base := [][2]string{
		{"PATH", "/usr/local/bin:/usr/bin:/bin"},
		{"HOME", home},
		{"TMPDIR", home},
		{"LANG", "C.UTF-8"},
		{"TZ", "UTC"},
		// "local", as in the ARNs Ward hands out. Reserved on Lambda, but
		// not here: a function that calls AWS itself names its real region.
		{"AWS_REGION", "local"},
		{"AWS_DEFAULT_REGION", "local"},
	}
	if isProvided(fn.Runtime) {
		// Go functions (aws-lambda-go) then collect garbage harder near
		// the limit instead of dying at it.
		base = append(base, [2]string{"GOMEMLIMIT", strconv.Itoa(fn.MemoryMB*9/10) + "MiB"})
	}
	out := make([]string, 0, len(base)+len(fn.Env)+16)
	for _, kv := range base {
		if _, ok := fn.Env[kv[0]]; !ok {
			out = append(out, kv[0]+"="+kv[1])
		}
	}
	for k, v := range fn.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("zambda %s: environment variable %q: names cannot be empty or hold '=' or NUL, values cannot hold NUL", fn.Name, k)
		}
		if !reserved(k) {
			out = append(out, k+"="+v)
		}
	}
	// Lambda's stream names one execution environment: the day it started
	// and 32 hex digits.
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("zambda %s: log stream name: %w", fn.Name, err)
	}
	stream := time.Now().UTC().Format("2006/01/02") + "/[$LATEST]" + hex.EncodeToString(id[:])
	if isNode(fn.Runtime) {
		// Lambda sets it for managed runtimes only, not for provided ones.
		out = append(out, "AWS_EXECUTION_ENV=AWS_Lambda_"+fn.Runtime)
	} else {
		// A provided function brings its runtime: its bootstrap.
		runtimeDir = taskRoot
	}
	return append(out,
		"AWS_LAMBDA_FUNCTION_NAME="+fn.Name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(fn.MemoryMB),
		"AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(int(fn.Timeout/time.Second)),
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+fn.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME="+stream,
		"LAMBDA_TASK_ROOT="+taskRoot,
		"LAMBDA_RUNTIME_DIR="+runtimeDir,
		"_HANDLER="+handler,
	), nil
}

// start launches a worker for fn in its sandbox. It is ready once its
// first GET /next arrives; run waits for that.
func (p *Pool) start(ctx context.Context, fn Function, scratch string) (*worker, error) {
	argv, err := p.argv(fn)
	if err != nil {
		return nil, err
	}
	w := &worker{fn: fn, name: fn.Name, maxOut: p.cfg.MaxOutputBytes,
		arn:   "arn:aws:lambda:local:000000000000:function:" + fn.Name,
		ready: make(chan struct{}), jobs: make(chan *call), initErr: make(chan answer, 1), dead: make(chan struct{})}
	if w.name == "" {
		w.name = fn.Key
	}
	home := scratch
	if p.isolated {
		home = "/tmp" // the sandbox's own tmpfs
	}
	runtimeDir := filepath.Dir(p.bootstrap)
	if p.isolated {
		runtimeDir = sandbox.RuntimeDir
	}
	vars, err := env(fn, p.taskRoot(fn), home, runtimeDir)
	if err != nil {
		return nil, err
	}
	if isProvided(fn.Runtime) {
		if err := checkBootstrap(fn.CodeDir); err != nil {
			e := newError(KindInit, "zambda %s cannot start: %v: a %s function needs an executable file named bootstrap at the zip's root (for Go: GOOS=linux GOARCH=%s CGO_ENABLED=0 go build -o bootstrap)", w.name, err, fn.Runtime, goruntime.GOARCH)
			e.ErrorType = "Runtime.InvalidEntrypoint"
			return nil, e
		}
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("zambda worker pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("zambda worker pipe: %w", err)
	}
	spec := sandbox.Spec{ID: p.workerID(fn), Group: fn.Project, Argv: argv, Dir: p.taskRoot(fn), Env: vars, Code: fn.CodeDir,
		Limits: sandbox.Limits{Memory: int64(fn.MemoryMB) << 20, Tmp: int64(fn.EphemeralMB) << 20}, Stdout: outW, Stderr: errW}
	if isNode(fn.Runtime) {
		spec.Files = append(spec.Files, sandbox.Mount{Src: p.bootstrap, Dst: sandbox.RuntimeDir + "/bootstrap.js"})
		if p.nodeMount != "" {
			spec.Files = append(spec.Files, sandbox.Mount{Src: p.nodeMount, Dst: p.nodeMount})
		}
	}
	w.started = time.Now()
	proc, err := p.sandbox.Start(ctx, spec)
	outW.Close()
	errW.Close()
	if err != nil {
		out := drain(errR, outR)
		outR.Close()
		errR.Close()
		if errors.Is(err, sandbox.ErrUnavailable) {
			return nil, newError(KindNoRuntime, "zambda %s cannot run: %v", w.name, err)
		}
		if isNode(fn.Runtime) && errors.Is(err, os.ErrNotExist) {
			return nil, newError(KindNoRuntime, "runtime %s: cannot start Node.js at %s: %v", fn.Runtime, p.cfg.NodePath, err)
		}
		if out != "" {
			return nil, fmt.Errorf("zambda %s: start worker: %w: %s", w.name, err, out)
		}
		return nil, fmt.Errorf("zambda %s: start worker: %w", w.name, err)
	}
	w.proc, w.pid = proc, proc.Pid()
	w.srv = &http.Server{Handler: w.api(), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug)}
	go func() { _ = w.srv.Serve(proc.RuntimeAPI()) }()
	if w.logs, err = newCapture(outR, errR); err != nil {
		w.kill(killReplaced)
		proc.Wait()
		_ = w.srv.Close()
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("zambda worker output: %w", err)
	}
	go w.wait()
	return w, nil
}

// workerID names a worker uniquely among this pool's (cgroup names).
func (p *Pool) workerID(fn Function) string {
	return safeName(fn.Name) + "-" + strconv.FormatInt(p.seq.Add(1), 36)
}

// checkBootstrap finds the provided runtime's bootstrap before a sandbox
// is made for it: executable, and a regular file.
func checkBootstrap(codeDir string) error {
	fi, err := os.Stat(filepath.Join(codeDir, "bootstrap"))
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("bootstrap is not a regular file")
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("permission denied: bootstrap is not executable (mode %v)", fi.Mode().Perm())
	}
	return nil
}

// drain reads what a process that failed to start wrote, briefly.
func drain(files ...*os.File) string {
	var out []string
	for _, f := range files {
		_ = f.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		b, _ := io.ReadAll(io.LimitReader(f, 2048))
		if s := strings.TrimSpace(string(b)); s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, "; ")
}

// wait reaps the process (and whatever was left of its sandbox),
// collects its last output, and shuts its API.
func (w *worker) wait() {
	w.state = w.proc.Wait()
	// What it wrote before exiting is in the pipes by now.
	w.logs.close()
	_ = w.srv.Close()
	close(w.dead)
}

func (w *worker) exited() bool {
	select {
	case <-w.dead:
		return true
	default:
		return false
	}
}

// kill ends the worker's whole sandbox; the first reason sticks.
func (w *worker) kill(reason int32) {
	w.killOnce.Do(func() {
		w.killedBy.Store(reason)
		w.proc.Kill()
	})
}

// maxRSS is the runtime's peak resident memory in KiB.
func (w *worker) maxRSS() int64 { return w.proc.MaxRSSKB() }

// deathError explains an exit without an answer. oom: its stderr said so.
func (w *worker) deathError(oom, loading bool) error {
	when := "before answering"
	if loading {
		when = "while loading, before it asked for its first event"
	}
	st := w.state
	if oom || w.nearMemoryLimit() || w.proc.OOMKilled() {
		// A runtime at its limit does not always say so: Go's collector
		// has been seen to fault (SIGSEGV in the mark phase) when an
		// allocation fails there, instead of "out of memory".
		return w.oomError()
	}
	if st == nil {
		return newError(KindCrash, "zambda %s's process ended %s", w.name, when)
	}
	ws, _ := st.Sys().(syscall.WaitStatus)
	if sig, ok := w.proc.Signal(st); ok {
		if sig == syscall.SIGKILL {
			// Ward's own kills are told apart before this, so this is the
			// kernel's out-of-memory killer (or a kill from outside).
			return w.oomError()
		}
		return newError(KindCrash, "zambda %s's process was killed by signal %d (%s) %s: see its logs", w.name, int(sig), unix.SignalName(sig), when)
	}
	if loading && ws.ExitStatus() == 126 && isProvided(w.fn.Runtime) {
		// The sandbox's init program could not exec the bootstrap.
		e := newError(KindInit, "zambda %s cannot start: its bootstrap is not a program this server can run (see its logs): a %s function needs an executable for linux/%s named bootstrap at the zip's root", w.name, w.fn.Runtime, goruntime.GOARCH)
		e.ErrorType = "Runtime.InvalidEntrypoint"
		return e
	}
	hint := ""
	if ws.ExitStatus() == 0 {
		hint = " (did it return from main, or call process.exit, without answering?)"
	}
	return newError(KindCrash, "zambda %s's process exited with code %d %s%s: see its logs", w.name, ws.ExitStatus(), when, hint)
}

// nearMemoryLimit: the process's peak resident memory reached 80% of its
// memorySize. Not 90%: a Go worker's live heap stops near GOMEMLIMIT (90%)
// when the next arena cannot be mapped, and its collector has crashed
// there (SIGSEGV) with the peak just under 90% (TestGoProvided/oom, once).
func (w *worker) nearMemoryLimit() bool {
	return w.fn.MemoryMB > 0 && w.maxRSS() >= int64(w.fn.MemoryMB)*1024*8/10
}

func (w *worker) oomError() error {
	return newError(KindOOM, "zambda %s ran out of memory (memorySize %d MB): raise its memorySize or make it use less", w.name, w.fn.MemoryMB)
}
