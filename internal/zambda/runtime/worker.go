package runtime

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// worker is one function process and the Runtime API server it talks to.
type worker struct {
	fn      Function // the settings it was started with
	name    string   // fn.Name, or the Key when unnamed: for messages
	arn     string
	maxOut  int
	cmd     *exec.Cmd
	pid     int
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

	// /proc/<pid>/status, for maxRSS; the buffer is the invocation in
	// flight's (one at a time).
	status    *os.File
	statusBuf []byte
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

// argv is the command that runs fn.
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
		return []string{p.cfg.NodePath, p.bootstrap}, nil
	case isProvided(fn.Runtime):
		return []string{filepath.Join(fn.CodeDir, "bootstrap")}, nil
	}
	return nil, newError(KindNoRuntime, "runtime %q is not supported: use nodejs20.x, nodejs22.x, provided.al2023 or provided", fn.Runtime)
}

// reserved variables are the runtime's own: the function's Env cannot
// replace them (as on Lambda).
func reserved(k string) bool {
	return k == "_HANDLER" || k == "LAMBDA_TASK_ROOT" || k == "LAMBDA_RUNTIME_DIR" || k == "AWS_EXECUTION_ENV" ||
		strings.HasPrefix(k, "AWS_LAMBDA_")
}

// env builds the worker's environment from scratch: nothing of Ward's own
// leaks (no secrets, no database paths, no NODE_EXTRA_CA_CERTS, which alone
// costs Node ~50 ms at start). runtimeDir holds Ward's Node bootstrap.
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
func env(fn Function, api, scratch, runtimeDir string) ([]string, error) {
	handler := fn.Handler
	if handler == "" {
		handler = "index.index"
	}
	base := [][2]string{
		{"PATH", "/usr/local/bin:/usr/bin:/bin"},
		{"HOME", scratch},
		{"TMPDIR", scratch},
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
		runtimeDir = fn.CodeDir
	}
	return append(out,
		"AWS_LAMBDA_RUNTIME_API="+api,
		"AWS_LAMBDA_FUNCTION_NAME="+fn.Name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(fn.MemoryMB),
		"AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(int(fn.Timeout/time.Second)),
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+fn.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME="+stream,
		"LAMBDA_TASK_ROOT="+fn.CodeDir,
		"LAMBDA_RUNTIME_DIR="+runtimeDir,
		"_HANDLER="+handler,
	), nil
}

// start launches a worker for fn. It is ready once its first GET /next
// arrives; run waits for that.
func (p *Pool) start(fn Function, scratch string) (*worker, error) {
	argv, err := p.argv(fn)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("zambda runtime api listener: %w", err)
	}
	w := &worker{fn: fn, name: fn.Name, maxOut: p.cfg.MaxOutputBytes,
		arn:   "arn:aws:lambda:local:000000000000:function:" + fn.Name,
		ready: make(chan struct{}), jobs: make(chan *call), initErr: make(chan answer, 1), dead: make(chan struct{})}
	if w.name == "" {
		w.name = fn.Key
	}
	w.srv = &http.Server{Handler: w.api(), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug)}
	go func() { _ = w.srv.Serve(ln) }()
	fail := func(err error) (*worker, error) {
		_ = w.srv.Close()
		return nil, err
	}

	vars, err := env(fn, ln.Addr().String(), scratch, filepath.Dir(p.bootstrap))
	if err != nil {
		return fail(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return fail(fmt.Errorf("zambda worker pipe: %w", err))
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return fail(fmt.Errorf("zambda worker pipe: %w", err))
	}
	newCmd := func(trace bool) *exec.Cmd {
		return &exec.Cmd{Path: argv[0], Args: argv, Env: vars, Dir: fn.CodeDir, Stdout: outW, Stderr: errW,
			// Its own process group, so kills reach its children too.
			SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Ptrace: trace}}
	}
	w.started = time.Now()
	cmd, err := p.startLimited(newCmd, uint64(fn.MemoryMB+64)<<20)
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		if isNode(fn.Runtime) {
			return fail(newError(KindNoRuntime, "runtime %s: cannot start Node.js at %s: %v", fn.Runtime, p.cfg.NodePath, err))
		}
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.ENOEXEC) {
			e := newError(KindInit, "zambda %s cannot start: %v: a %s function needs an executable file named bootstrap at the zip's root (for Go: GOOS=linux GOARCH=%s CGO_ENABLED=0 go build -o bootstrap)", w.name, err, fn.Runtime, goruntime.GOARCH)
			e.ErrorType = "Runtime.InvalidEntrypoint"
			return fail(e)
		}
		return fail(fmt.Errorf("zambda %s: start worker: %w", w.name, err))
	}
	w.cmd, w.pid = cmd, cmd.Process.Pid
	if w.logs, err = newCapture(outR, errR); err != nil {
		w.kill(killReplaced)
		_ = cmd.Wait()
		outR.Close()
		errR.Close()
		return fail(fmt.Errorf("zambda worker output: %w", err))
	}
	if f, err := os.Open("/proc/" + strconv.Itoa(w.pid) + "/status"); err == nil {
		w.status, w.statusBuf = f, make([]byte, 4096)
	}
	go w.wait()
	return w, nil
}

// startLimited starts cmd with its memory limit in place before the program
// runs its first instruction.
//
// Linux has no way to give a child its own rlimits at fork through
// os/exec, and setting them on the child after Start races with the child.
// So the child starts traced (PTRACE_TRACEME): the kernel stops it right
// after execve, Ward sets RLIMIT_DATA (private writable memory: heap, brk,
// anonymous mmaps; not RLIMIT_AS, which the Go runtime's and V8's large,
// untouched address reservations would trip) and RLIMIT_CORE (no core dump
// when Node aborts on OOM), then detaches and the child runs. Where ptrace
// is not allowed (some seccomp profiles), the limits are set right after
// Start instead: a short window, and a best effort.
func (p *Pool) startLimited(newCmd func(trace bool) *exec.Cmd, dataLimit uint64) (*exec.Cmd, error) {
	if !p.noPtrace.Load() {
		cmd := newCmd(true)
		err := startTraced(cmd, dataLimit)
		if err == nil || !errors.Is(err, syscall.EPERM) {
			return cmd, err
		}
		// Maybe ptrace is not allowed here: try without, and stop trying
		// ptrace if that works.
		cmd = newCmd(false)
		if err := cmd.Start(); err != nil {
			return cmd, err
		}
		p.noPtrace.Store(true)
		p.log.Warn("zambda runtime: ptrace is not allowed here, so memory limits are set just after each worker starts", "err", err)
		setLimits(cmd.Process.Pid, dataLimit)
		return cmd, nil
	}
	cmd := newCmd(false)
	if err := cmd.Start(); err != nil {
		return cmd, err
	}
	setLimits(cmd.Process.Pid, dataLimit)
	return cmd, nil
}

func startTraced(cmd *exec.Cmd, dataLimit uint64) error {
	// The tracer is the thread that forked the child; ptrace calls must
	// come from it.
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, unix.WALL, nil)
		if !errors.Is(err, unix.EINTR) {
			if err != nil {
				_ = unix.Kill(pid, unix.SIGKILL)
				return fmt.Errorf("wait for the traced worker: %w", err)
			}
			break
		}
	}
	if !ws.Stopped() {
		// Gone before its first instruction, and already reaped by Wait4.
		_ = cmd.Process.Release()
		return fmt.Errorf("the worker ended at exec (wait status %#x)", uint32(ws))
	}
	setLimits(pid, dataLimit)
	if err := unix.PtraceDetach(pid); err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		return fmt.Errorf("detach the worker: %w", err)
	}
	return nil
}

func setLimits(pid int, data uint64) {
	_ = unix.Prlimit(pid, unix.RLIMIT_DATA, &unix.Rlimit{Cur: data, Max: data}, nil)
	_ = unix.Prlimit(pid, unix.RLIMIT_CORE, &unix.Rlimit{}, nil)
}

// wait reaps the process, collects its last output, and shuts its API.
func (w *worker) wait() {
	_ = w.cmd.Wait()
	w.state = w.cmd.ProcessState
	// Children it left in its group die with it.
	_ = syscall.Kill(-w.pid, syscall.SIGKILL)
	// What it wrote before exiting is in the pipes by now.
	w.logs.close()
	_ = w.srv.Close()
	if w.status != nil {
		_ = w.status.Close() // a maxRSS reading it now gets an error, then 0
	}
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

// kill ends the worker's whole process group; the first reason sticks.
func (w *worker) kill(reason int32) {
	w.killOnce.Do(func() {
		w.killedBy.Store(reason)
		_ = syscall.Kill(-w.pid, syscall.SIGKILL)
	})
}

// maxRSS is the process's peak resident memory in KiB: VmHWM while it
// lives (from a /proc status file kept open: reopening it each time costs
// more than the read), the kernel's rusage once it is gone.
func (w *worker) maxRSS() int64 {
	if w.exited() {
		if ru, ok := w.state.SysUsage().(*syscall.Rusage); ok {
			return ru.Maxrss
		}
		return 0
	}
	if w.status == nil {
		return 0
	}
	n, _ := w.status.ReadAt(w.statusBuf, 0)
	_, rest, ok := bytes.Cut(w.statusBuf[:n], []byte("VmHWM:"))
	if !ok {
		return 0
	}
	rest, _, _ = bytes.Cut(rest, []byte("kB"))
	kb, _ := strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
	return kb
}

// deathError explains an exit without an answer. oom: its stderr said so.
func (w *worker) deathError(oom, loading bool) error {
	when := "before answering"
	if loading {
		when = "while loading, before it asked for its first event"
	}
	st := w.state
	if oom || w.nearMemoryLimit() {
		// A runtime at its limit does not always say so: Go's collector
		// has been seen to fault (SIGSEGV in the mark phase) when an
		// allocation fails there, instead of "out of memory".
		return w.oomError()
	}
	if st == nil {
		return newError(KindCrash, "zambda %s's process ended %s", w.name, when)
	}
	ws, _ := st.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		if ws.Signal() == syscall.SIGKILL {
			// Ward's own kills are told apart before this, so this is the
			// kernel's out-of-memory killer (or a kill from outside).
			return w.oomError()
		}
		return newError(KindCrash, "zambda %s's process was killed by signal %d (%s) %s: see its logs", w.name, int(ws.Signal()), unix.SignalName(ws.Signal()), when)
	}
	hint := ""
	if ws.ExitStatus() == 0 {
		hint = " (did it return from main, or call process.exit, without answering?)"
	}
	return newError(KindCrash, "zambda %s's process exited with code %d %s%s: see its logs", w.name, ws.ExitStatus(), when, hint)
}

// nearMemoryLimit: the process's peak resident memory reached 90% of its
// memorySize.
func (w *worker) nearMemoryLimit() bool {
	return w.fn.MemoryMB > 0 && w.maxRSS() >= int64(w.fn.MemoryMB)*1024*9/10
}

func (w *worker) oomError() error {
	return newError(KindOOM, "zambda %s ran out of memory (memorySize %d MB): raise its memorySize or make it use less", w.name, w.fn.MemoryMB)
}
