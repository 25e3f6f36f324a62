package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxLogBytes bounds what one invocation's log keeps.
const maxLogBytes = 256 << 10

// answer is what the worker posted for an invocation.
type answer struct {
	id      string
	payload []byte
	errBody []byte // /error or /init/error body
	init    bool
	tooBig  bool
}

type job struct {
	inv Invocation
	arn string
}

// worker is one process and its Runtime API server.
type worker struct {
	fn       Function
	cmd      *exec.Cmd
	srv      *http.Server
	jobs     chan job    // handed to the worker's GET /next
	answers  chan answer // from its POSTs
	ready    chan struct{}
	readyAt  time.Time
	started  time.Time
	dead     chan struct{}
	exitErr  error
	lastUsed time.Time
	maxOut   int

	logMu    sync.Mutex
	logs     []LogLine
	logBytes int
	partial  [2][]byte
	pipes    [2]*os.File
	head     []byte // first and last bytes of stderr, to tell an
	tail     []byte // out-of-memory death from a crash
	current  string // request id in flight
	curMu    sync.Mutex
	killOnce sync.Once
}

func (w *worker) exited() bool {
	select {
	case <-w.dead:
		return true
	default:
		return false
	}
}

// kill ends the worker's whole process group and its API server.
func (w *worker) kill() {
	w.killOnce.Do(func() {
		if w.cmd.Process != nil {
			_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
		}
		_ = w.srv.Close()
	})
}

// env builds the worker's environment from scratch.
func (p *Pool) env(fn Function, api, scratch string) []string {
	handler := fn.Handler
	if handler == "" {
		handler = "index.index"
	}
	env := map[string]string{
		"PATH":                            "/usr/local/bin:/usr/bin:/bin",
		"HOME":                            scratch,
		"TMPDIR":                          scratch,
		"LANG":                            "C.UTF-8",
		"TZ":                              "UTC",
		"AWS_LAMBDA_RUNTIME_API":          api,
		"AWS_LAMBDA_FUNCTION_NAME":        fn.Name,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(fn.MemoryMB),
		"AWS_REGION":                      "local",
		"LAMBDA_TASK_ROOT":                fn.CodeDir,
		"_HANDLER":                        handler,
	}
	if !isNode(fn.Runtime) {
		// Go functions keep their heap under the limit rather than dying.
		env["GOMEMLIMIT"] = strconv.Itoa(fn.MemoryMB*9/10) + "MiB"
	}
	for k, v := range fn.Env {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

func isNode(rt string) bool { return strings.HasPrefix(rt, "nodejs") }

// start launches a worker for fn; it is ready when its first GET /next
// arrives.
func (p *Pool) start(fn Function) (*worker, error) {
	var argv []string
	switch {
	case isNode(fn.Runtime):
		if p.cfg.NodePath == "" {
			return nil, &Error{Kind: KindNoRuntime, Message: fmt.Sprintf("runtime %s needs Node.js, which is not installed on this server", fn.Runtime)}
		}
		heap := fn.MemoryMB * 3 / 4
		argv = []string{p.cfg.NodePath, "--max-old-space-size=" + strconv.Itoa(max(heap, 32)), p.bootstrap}
	case fn.Runtime == "provided.al2023" || fn.Runtime == "provided":
		argv = []string{filepath.Join(fn.CodeDir, "bootstrap")}
	default:
		return nil, &Error{Kind: KindNoRuntime, Message: fmt.Sprintf("runtime %q is not supported", fn.Runtime)}
	}
	scratch := filepath.Join(p.cfg.WorkDir, "tmp", safeName(fn.Key))
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return nil, fmt.Errorf("worker scratch dir: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("runtime api listener: %w", err)
	}
	w := &worker{fn: fn, jobs: make(chan job), answers: make(chan answer, 1), ready: make(chan struct{}),
		dead: make(chan struct{}), maxOut: p.cfg.MaxOutputBytes, started: time.Now()}
	w.srv = &http.Server{Handler: w.api(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = w.srv.Serve(ln) }()

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = fn.CodeDir
	cmd.Env = p.env(fn, ln.Addr().String(), scratch)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		_ = w.srv.Close()
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		_ = w.srv.Close()
		return nil, err
	}
	w.cmd = cmd
	if err := cmd.Start(); err != nil {
		_ = w.srv.Close()
		if errors.Is(err, os.ErrPermission) || errors.Is(err, os.ErrNotExist) {
			return nil, &Error{Kind: KindInit, ErrorType: "Runtime.InvalidEntrypoint",
				Message: fmt.Sprintf("cannot start the function: %v (a provided runtime needs an executable file named bootstrap at the zip's root)", err)}
		}
		return nil, fmt.Errorf("start worker: %w", err)
	}
	if !isNode(fn.Runtime) {
		// The data-segment limit (private writable memory, Linux >= 4.7):
		// the kernel refuses allocations past it. Not RLIMIT_AS: the Go
		// runtime reserves large, unused address ranges at start. Set just
		// after start, while the binary is still loading. Node is limited
		// through its heap size instead.
		lim := uint64(fn.MemoryMB+64) << 20
		_ = unix.Prlimit(cmd.Process.Pid, unix.RLIMIT_DATA, &unix.Rlimit{Cur: lim, Max: lim}, nil)
	}
	w.pipes = [2]*os.File{stdout.(*os.File), stderr.(*os.File)}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); w.read(0, stdout) }()
	go func() { defer readers.Done(); w.read(1, stderr) }()
	go func() {
		readers.Wait()
		w.exitErr = cmd.Wait()
		close(w.dead)
		_ = w.srv.Close()
	}()
	return w, nil
}

func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

var streamNames = [2]string{"stdout", "stderr"}

// read turns a pipe into log lines.
func (w *worker) read(i int, r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			w.logMu.Lock()
			data := append(w.partial[i], buf[:n]...)
			for {
				nl := bytes.IndexByte(data, '\n')
				if nl < 0 {
					break
				}
				w.addLine(i, string(data[:nl]))
				data = data[nl+1:]
			}
			w.partial[i] = append([]byte(nil), data...)
			if i == 1 {
				if len(w.head) < 4096 {
					w.head = append(w.head, buf[:min(n, 4096-len(w.head))]...)
				}
				w.tail = append(w.tail, buf[:n]...)
				if len(w.tail) > 4096 {
					w.tail = w.tail[len(w.tail)-4096:]
				}
			}
			w.logMu.Unlock()
		}
		if err != nil {
			w.logMu.Lock()
			if len(w.partial[i]) > 0 {
				w.addLine(i, string(w.partial[i]))
				w.partial[i] = nil
			}
			w.logMu.Unlock()
			return
		}
	}
}

// addLine keeps a line; logMu is held.
func (w *worker) addLine(i int, text string) {
	if w.logBytes > maxLogBytes {
		return
	}
	w.logBytes += len(text)
	if w.logBytes > maxLogBytes {
		text = "[log truncated: more than 256 KiB in one invocation]"
	}
	w.logs = append(w.logs, LogLine{Time: time.Now(), Stream: streamNames[i], Text: text})
}

// drain (TIOCINQ is FIONREAD: bytes waiting in the pipe) waits until the worker's pipes are empty and the readers have
// taken what was in them: a worker answers after writing its logs, and
// Linux pipe writes are complete when they return, so what it logged for
// this invocation is in the pipe (or read) by now. Bounded, in case the
// worker keeps writing after answering.
func (w *worker) drain() {
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
		pending := 0
		for _, f := range w.pipes {
			if rc, err := f.SyscallConn(); err == nil {
				_ = rc.Control(func(fd uintptr) {
					if n, err := unix.IoctlGetInt(int(fd), unix.TIOCINQ); err == nil {
						pending += n
					}
				})
			}
		}
		if pending == 0 {
			// The readers may hold bytes they have read but not split yet:
			// taking the lock waits for them.
			w.logMu.Lock()
			w.logMu.Unlock() //nolint:staticcheck // an empty critical section is the point
			return
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// takeLogs returns the lines since the last call, flushing partial lines.
func (w *worker) takeLogs() []LogLine {
	w.drain()
	w.logMu.Lock()
	defer w.logMu.Unlock()
	for i := range w.partial {
		if len(w.partial[i]) > 0 {
			w.addLine(i, string(w.partial[i]))
			w.partial[i] = nil
		}
	}
	out := w.logs
	w.logs, w.logBytes = nil, 0
	return out
}

// api is the Runtime API one worker talks to.
func (w *worker) api() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(rw http.ResponseWriter, r *http.Request) {
		select {
		case <-w.ready:
		default:
			w.readyAt = time.Now()
			close(w.ready)
		}
		select {
		case j := <-w.jobs:
			h := rw.Header()
			h.Set("Lambda-Runtime-Aws-Request-Id", j.inv.RequestID)
			h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(j.inv.Deadline.UnixMilli(), 10))
			h.Set("Lambda-Runtime-Invoked-Function-Arn", j.arn)
			h.Set("Lambda-Runtime-Trace-Id", "Root="+j.inv.RequestID)
			h.Set("Content-Type", "application/json")
			_, _ = rw.Write(j.inv.Payload)
		case <-r.Context().Done():
		}
	})
	post := func(kind string) http.HandlerFunc {
		return func(rw http.ResponseWriter, r *http.Request) {
			id := r.PathValue("id")
			w.curMu.Lock()
			cur := w.current
			w.curMu.Unlock()
			if kind != "init" && id != cur {
				http.Error(rw, `{"errorMessage":"unknown request id","errorType":"InvalidRequestID"}`, http.StatusBadRequest)
				return
			}
			body, err := io.ReadAll(io.LimitReader(r.Body, int64(w.maxOut)+1))
			if err != nil {
				http.Error(rw, `{"errorMessage":"could not read the body"}`, http.StatusBadRequest)
				return
			}
			a := answer{id: id, init: kind == "init"}
			switch {
			case len(body) > w.maxOut:
				a.tooBig = true
			case kind == "response":
				a.payload = body
			default:
				a.errBody = body
			}
			select {
			case w.answers <- a:
			default: // an answer is already waiting: this one is a protocol error
			}
			if a.tooBig {
				http.Error(rw, `{"errorMessage":"response too large","errorType":"Function.ResponseSizeTooLarge"}`, http.StatusRequestEntityTooLarge)
				return
			}
			rw.WriteHeader(http.StatusAccepted)
		}
	}
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", post("response"))
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", post("error"))
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", post("init"))
	return mux
}

// Invoke runs one invocation of fn, on a warm worker if one is idle.
func (p *Pool) Invoke(ctx context.Context, fn Function, inv Invocation) (Result, error) {
	f := p.fn(fn)
	wait := p.cfg.QueueWait
	if until := time.Until(inv.Deadline); until < wait {
		wait = until
	}
	timer := time.NewTimer(max(wait, 0))
	select {
	case f.slots <- struct{}{}:
		timer.Stop()
	case <-timer.C:
		return Result{}, &Error{Kind: KindBusy, Message: fmt.Sprintf("zambda %s is running %d invocations, its limit: try again shortly", fn.Name, cap(f.slots))}
	case <-ctx.Done():
		timer.Stop()
		return Result{}, ctx.Err()
	}
	defer func() { <-f.slots }()

	res := Result{}
	w := p.takeIdle(f)
	if w == nil {
		var err error
		if w, err = p.start(fn); err != nil {
			return res, err
		}
		res.Cold = true
	}
	res, keep, err := p.run(ctx, w, inv, res)
	if keep {
		p.putIdle(f, w)
	} else {
		w.kill()
	}
	return res, err
}

// run hands inv to w and waits for its answer, its death or the deadline.
func (p *Pool) run(ctx context.Context, w *worker, inv Invocation, res Result) (Result, bool, error) {
	start := time.Now()
	deadline := time.NewTimer(time.Until(inv.Deadline))
	defer deadline.Stop()
	w.curMu.Lock()
	w.current = inv.RequestID
	w.curMu.Unlock()
	arn := "arn:aws:lambda:local:000000000000:function:" + w.fn.Name
	finish := func() {
		res.Duration = time.Since(start)
		res.Logs = w.takeLogs()
		res.MaxRSSKB = peakRSS(w.cmd.Process.Pid)
	}
	timeout := func() (Result, bool, error) {
		w.kill()
		finish()
		return res, false, &Error{Kind: KindTimeout, Message: fmt.Sprintf("zambda %s timed out after %s", w.fn.Name, fmtSeconds(w.fn.Timeout))}
	}
	// Hand the job over; a cold worker takes it once it has loaded.
	select {
	case w.jobs <- job{inv: inv, arn: arn}:
	case a := <-w.answers:
		finish()
		return res, false, initError(w, a)
	case <-w.dead:
		finish()
		return res, false, w.deathError()
	case <-deadline.C:
		return timeout()
	case <-ctx.Done():
		finish()
		return res, false, ctx.Err()
	}
	if res.Cold {
		res.InitDuration = w.readyAt.Sub(w.started)
		start = time.Now()
	}
	select {
	case a := <-w.answers:
		finish()
		switch {
		case a.init:
			return res, false, initError(w, a)
		case a.tooBig:
			return res, false, &Error{Kind: KindTooLarge, Message: fmt.Sprintf("zambda %s returned more than the 6 MiB limit (%d bytes): return less, or write it to Z3 and return a link", w.fn.Name, w.maxOut)}
		case a.errBody != nil:
			var e struct {
				ErrorMessage string `json:"errorMessage"`
				ErrorType    string `json:"errorType"`
			}
			_ = json.Unmarshal(a.errBody, &e)
			if e.ErrorType == "" {
				e.ErrorType = "Error"
			}
			// A handled error leaves the worker sound: keep it.
			return res, true, &Error{Kind: KindHandler, ErrorType: e.ErrorType, Message: fmt.Sprintf("zambda %s threw %s: %s", w.fn.Name, e.ErrorType, e.ErrorMessage)}
		}
		res.Payload = a.payload
		return res, true, nil
	case <-w.dead:
		finish()
		return res, false, w.deathError()
	case <-deadline.C:
		return timeout()
	case <-ctx.Done():
		finish()
		return res, false, ctx.Err()
	}
}

func initError(w *worker, a answer) error {
	var e struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}
	_ = json.Unmarshal(a.errBody, &e)
	return &Error{Kind: KindInit, ErrorType: e.ErrorType, Message: fmt.Sprintf("zambda %s failed to load: %s", w.fn.Name, e.ErrorMessage)}
}

// deathError explains an exit without an answer.
func (w *worker) deathError() error {
	w.logMu.Lock()
	tail := string(w.head) + string(w.tail)
	w.logMu.Unlock()
	for _, sign := range []string{"heap out of memory", "Allocation failed", "out of memory", "cannot allocate memory"} {
		if strings.Contains(tail, sign) {
			return &Error{Kind: KindOOM, Message: fmt.Sprintf("zambda %s ran out of memory (memorySize %d MB): raise memorySize or use less", w.fn.Name, w.fn.MemoryMB)}
		}
	}
	how := "exited"
	var ee *exec.ExitError
	if errors.As(w.exitErr, &ee) {
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			how = "was killed by signal " + st.Signal().String()
			if st.Signal() == syscall.SIGKILL {
				// Not Ward's kill (timeouts are told apart before): the
				// kernel's out-of-memory killer.
				return &Error{Kind: KindOOM, Message: fmt.Sprintf("zambda %s ran out of memory (memorySize %d MB): raise memorySize or use less", w.fn.Name, w.fn.MemoryMB)}
			}
		} else {
			how = fmt.Sprintf("exited with code %d", ee.ExitCode())
		}
	} else if w.exitErr == nil {
		how = "exited with code 0"
	}
	return &Error{Kind: KindCrash, Message: fmt.Sprintf("zambda %s's process %s before answering", w.fn.Name, how)}
}

func fmtSeconds(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%d s", int(d/time.Second))
	}
	return d.String()
}

// peakRSS reads the process's high-water resident set (KiB), 0 if gone.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
