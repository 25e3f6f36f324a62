// Package runtime runs zambdas as worker processes that speak the AWS Lambda
// Runtime API to Ward, so aws-lambda-go binaries ("provided" runtimes) run
// unchanged and Node.js functions run under Ward's own small bootstrap.
//
// Each worker gets its own Runtime API listener on loopback
// (AWS_LAMBDA_RUNTIME_API), a fresh environment holding only what the
// function is given, its own process group, and a memory limit. Workers
// serve one invocation at a time, are reused while warm (per Function.Key),
// and are killed at the deadline, on a crash, and when idle too long.
//
//	pool, _ := runtime.New(runtime.Config{WorkDir: dir})
//	res, err := pool.Invoke(ctx, fn, runtime.Invocation{RequestID: id, Payload: event, Deadline: t})
//
// Failures are *Error values with a Kind (handler error, init error, crash,
// timeout, out of memory, output too large, busy, no runtime).
package runtime

import (
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

//go:embed bootstrap.js
var nodeBootstrap []byte

// Function is what a worker runs.
type Function struct {
	Key         string // warm-pool key: function id + code version; workers are reused only for the same Key
	Name        string
	Runtime     string // nodejs20.x, nodejs22.x, provided.al2023, provided
	CodeDir     string // unpacked code, the worker's working directory
	Handler     string // node: "index.index" (default); falls back to exports.handler
	MemoryMB    int
	Timeout     time.Duration
	Env         map[string]string // extra environment for the function
	Concurrency int               // invocations at once; default 8
}

// Invocation is one call.
type Invocation struct {
	RequestID string
	Payload   []byte // the event JSON
	Deadline  time.Time
}

// LogLine is a line the worker wrote.
type LogLine struct {
	Time   time.Time
	Stream string // stdout or stderr
	Text   string
}

// Result is a finished invocation. Logs, Duration and MaxRSSKB are filled
// in on failures too.
type Result struct {
	Payload      []byte
	Logs         []LogLine
	Duration     time.Duration
	InitDuration time.Duration // > 0 on a cold start
	Cold         bool
	MaxRSSKB     int64
}

// Kind classifies a failed invocation.
type Kind int

const (
	KindHandler   Kind = iota + 1 // the handler threw or called back with an error
	KindInit                      // loading the function failed
	KindCrash                     // the process exited without answering
	KindTimeout                   // the deadline passed
	KindOOM                       // the memory limit was hit
	KindTooLarge                  // the response is over MaxOutputBytes
	KindBusy                      // the function's concurrency limit is reached
	KindNoRuntime                 // the runtime is not installed here
)

// Error is a failed invocation.
type Error struct {
	Kind      Kind
	Message   string
	ErrorType string // handler and init errors: the error's name
}

func (e *Error) Error() string { return e.Message }

// IsKind reports whether err is an *Error of kind k.
func IsKind(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

// Config is the pool's settings.
type Config struct {
	WorkDir        string        // private scratch dirs for workers
	NodePath       string        // default: "node" on PATH
	IdleTimeout    time.Duration // reap workers idle this long; default 5 minutes
	MaxOutputBytes int           // default 6 MiB
	QueueWait      time.Duration // how long an invocation waits for a free slot; default 2 s
	Logger         *slog.Logger
}

// Pool owns the workers.
type Pool struct {
	cfg       Config
	bootstrap string
	mu        sync.Mutex
	fns       map[string]*fnPool
	closed    bool
	stop      chan struct{}
	done      chan struct{}
}

type fnPool struct {
	slots chan struct{}
	idle  []*worker
}

// New prepares the work directory and starts the idle reaper.
func New(cfg Config) (*Pool, error) {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 5 * time.Minute
	}
	if cfg.MaxOutputBytes <= 0 {
		cfg.MaxOutputBytes = 6 << 20
	}
	if cfg.QueueWait <= 0 {
		cfg.QueueWait = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.NodePath == "" {
		if p, err := exec.LookPath("node"); err == nil {
			cfg.NodePath = p
		}
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o700); err != nil {
		return nil, fmt.Errorf("runtime work dir: %w", err)
	}
	boot := filepath.Join(cfg.WorkDir, "ward-bootstrap.js")
	if err := os.WriteFile(boot, nodeBootstrap, 0o644); err != nil {
		return nil, fmt.Errorf("runtime bootstrap: %w", err)
	}
	p := &Pool{cfg: cfg, bootstrap: boot, fns: map[string]*fnPool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go p.reap()
	return p, nil
}

// Close kills every worker.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	var all []*worker
	for _, f := range p.fns {
		all = append(all, f.idle...)
		f.idle = nil
	}
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	for _, w := range all {
		w.kill()
	}
	return nil
}

func (p *Pool) reap() {
	defer close(p.done)
	t := time.NewTicker(p.cfg.IdleTimeout / 4)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		var old []*worker
		p.mu.Lock()
		for _, f := range p.fns {
			keep := f.idle[:0]
			for _, w := range f.idle {
				if time.Since(w.lastUsed) > p.cfg.IdleTimeout {
					old = append(old, w)
				} else {
					keep = append(keep, w)
				}
			}
			f.idle = keep
		}
		p.mu.Unlock()
		for _, w := range old {
			w.kill()
		}
	}
}

func (p *Pool) fn(fn Function) *fnPool {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.fns[fn.Key]
	if f == nil {
		n := fn.Concurrency
		if n <= 0 {
			n = 8
		}
		f = &fnPool{slots: make(chan struct{}, n)}
		p.fns[fn.Key] = f
	}
	return f
}

func (p *Pool) takeIdle(f *fnPool) *worker {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(f.idle) > 0 {
		w := f.idle[len(f.idle)-1]
		f.idle = f.idle[:len(f.idle)-1]
		if !w.exited() {
			return w
		}
	}
	return nil
}

func (p *Pool) putIdle(f *fnPool, w *worker) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		w.kill()
		return
	}
	w.lastUsed = time.Now()
	f.idle = append(f.idle, w)
	p.mu.Unlock()
}
