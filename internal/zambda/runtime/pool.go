package runtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

//go:embed bootstrap.js
var nodeBootstrap []byte

// Pool owns the workers of every function. It is safe for concurrent use.
type Pool struct {
	cfg       Config
	log       *slog.Logger
	bootstrap string // path of the Node bootstrap in WorkDir
	scratch   string // this pool's root for per-version scratch dirs
	noPtrace  atomic.Bool

	mu     sync.Mutex
	fns    map[string]*fnPool
	all    map[*worker]struct{} // live workers, busy or idle, so Close can kill them all
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// fnPool is the state of one Key.
type fnPool struct {
	slots   chan struct{} // concurrency limit; replaced when Function.Concurrency changes
	idle    []*worker     // warm workers, most recently used last
	users   int           // Invokes holding this entry: it is not dropped while > 0
	scratch string        // HOME and TMPDIR of its workers
}

// New prepares WorkDir (the Node bootstrap, scratch dirs) and starts the
// idle reaper. Close releases it all.
func New(cfg Config) (*Pool, error) {
	if cfg.WorkDir == "" {
		return nil, errors.New("zambda runtime: Config.WorkDir is required")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = defaultIdleTimeout
	}
	if cfg.MaxOutputBytes <= 0 {
		cfg.MaxOutputBytes = defaultMaxOutput
	}
	if cfg.QueueWait <= 0 {
		cfg.QueueWait = defaultQueueWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.NodePath == "" {
		// Not finding node is not an error: provided functions still run,
		// and nodejs ones fail with KindNoRuntime.
		if path, err := exec.LookPath("node"); err == nil {
			cfg.NodePath = path
		}
	}
	if cfg.NodePath != "" {
		if abs, err := filepath.Abs(cfg.NodePath); err == nil {
			cfg.NodePath = abs
		}
	}
	dir, err := filepath.Abs(cfg.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("zambda runtime work dir: %w", err)
	}
	cfg.WorkDir = dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("zambda runtime work dir: %w", err)
	}
	boot, err := writeBootstrap(dir)
	if err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp(dir, "scratch-")
	if err != nil {
		return nil, fmt.Errorf("zambda runtime scratch dir: %w", err)
	}
	p := &Pool{cfg: cfg, log: cfg.Logger, bootstrap: boot, scratch: scratch,
		fns: map[string]*fnPool{}, all: map[*worker]struct{}{}, stop: make(chan struct{}), done: make(chan struct{})}
	go p.reap()
	return p, nil
}

// writeBootstrap puts the Node bootstrap in dir under a name holding its
// hash, so Ward versions sharing a dir never rewrite a file a running
// worker reads; an existing copy is kept.
func writeBootstrap(dir string) (string, error) {
	sum := sha256.Sum256(nodeBootstrap)
	path := filepath.Join(dir, "ward-bootstrap-"+hex.EncodeToString(sum[:6])+".js")
	if b, err := os.ReadFile(path); err == nil && bytes.Equal(b, nodeBootstrap) {
		return path, nil
	}
	tmp, err := os.CreateTemp(dir, "ward-bootstrap-*.tmp")
	if err != nil {
		return "", fmt.Errorf("zambda runtime bootstrap: %w", err)
	}
	_, err = tmp.Write(nodeBootstrap)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return "", fmt.Errorf("zambda runtime bootstrap: %w", err)
	}
	return path, nil
}

// Close kills every worker, busy or idle, and waits (briefly) for them to
// exit. Invocations in flight fail with ErrClosed; later ones too.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	workers := make([]*worker, 0, len(p.all))
	for w := range p.all {
		workers = append(workers, w)
	}
	p.fns = map[string]*fnPool{}
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	for _, w := range workers {
		w.kill(killClosed)
	}
	limit := time.NewTimer(5 * time.Second)
	defer limit.Stop()
	for _, w := range workers {
		select {
		case <-w.dead:
		case <-limit.C:
			p.log.Warn("zambda runtime: a worker did not exit after SIGKILL", "pid", w.pid)
		}
	}
	if err := os.RemoveAll(p.scratch); err != nil {
		return fmt.Errorf("zambda runtime scratch dir: %w", err)
	}
	return nil
}

// Invoke runs one invocation of fn on an idle warm worker of fn.Key, or on
// a new one (a cold start). Failures are *Error values (see Kind), except
// for a canceled ctx (its error, wrapped), ErrClosed, and invalid Function
// settings. After any failure the worker is killed, so the next invocation
// starts clean. The Result carries the logs and timings in every case.
func (p *Pool) Invoke(ctx context.Context, fn Function, inv Invocation) (Result, error) {
	invoked := time.Now()
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("zambda %s: %w", fn.Name, err)
	}
	fn, err := p.normalize(fn)
	if err != nil {
		return Result{}, err
	}
	if len(inv.Payload) == 0 {
		inv.Payload = []byte("{}") // as the AWS CLI sends without a payload
	}
	deadline := inv.Deadline
	if deadline.IsZero() {
		deadline = time.Now().Add(fn.Timeout)
	}
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	id := inv.RequestID
	if !safeID(id) {
		id = newRequestID()
	}
	res := Result{RequestID: id}

	f, slots, err := p.enter(fn)
	if err != nil {
		return res, err
	}
	defer p.leave(f)
	if err := p.acquire(ctx, fn, slots, deadline); err != nil {
		return res, err
	}
	defer func() { <-slots }()

	w := p.takeIdle(f, fn)
	if w == nil {
		if w, err = p.start(fn, f.scratch); err != nil {
			return res, err
		}
		if !p.track(w) {
			w.kill(killClosed)
			return res, ErrClosed
		}
		res.Cold = true
		p.log.Debug("zambda worker started", "zambda", fn.Name, "key", fn.Key, "pid", w.pid)
	}
	c := &call{id: id, payload: inv.Payload, deadline: deadline, timeout: fn.Timeout, answer: make(chan answer, 1)}
	res, err = p.run(ctx, w, c, invoked, res)
	if err != nil {
		w.kill(killReplaced)
		p.log.Debug("zambda worker replaced after a failure", "zambda", fn.Name, "pid", w.pid, "err", err)
		return res, err
	}
	p.putIdle(f, w)
	return res, nil
}

// normalize applies defaults and checks what would fail later anyway.
func (p *Pool) normalize(fn Function) (Function, error) {
	if fn.Key == "" {
		return fn, errors.New("zambda runtime: Function.Key is required")
	}
	if fn.MemoryMB == 0 {
		fn.MemoryMB = defaultMemoryMB
	}
	if fn.MemoryMB < minMemoryMB || fn.MemoryMB > maxMemoryMB {
		return fn, fmt.Errorf("zambda %s: memorySize %d MB is out of range (%d to %d)", fn.Name, fn.MemoryMB, minMemoryMB, maxMemoryMB)
	}
	if fn.Timeout <= 0 {
		fn.Timeout = defaultTimeout
	}
	if fn.Concurrency <= 0 {
		fn.Concurrency = defaultConcurrency
	}
	if fn.CodeDir == "" {
		return fn, fmt.Errorf("zambda %s: Function.CodeDir is required", fn.Name)
	}
	dir, err := filepath.Abs(fn.CodeDir)
	if err != nil {
		return fn, fmt.Errorf("zambda %s: code dir: %w", fn.Name, err)
	}
	fn.CodeDir = dir
	if _, err := p.argv(fn); err != nil {
		return fn, err
	}
	return fn, nil
}

// enter finds or makes the Key's entry and holds it.
func (p *Pool) enter(fn Function) (*fnPool, chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil, ErrClosed
	}
	f := p.fns[fn.Key]
	if f == nil {
		dir, err := os.MkdirTemp(p.scratch, safeName(fn.Key)+"-")
		if err != nil {
			return nil, nil, fmt.Errorf("zambda %s: scratch dir: %w", fn.Name, err)
		}
		f = &fnPool{slots: make(chan struct{}, fn.Concurrency), scratch: dir}
		p.fns[fn.Key] = f
	} else if cap(f.slots) != fn.Concurrency {
		// Holders of the old semaphore release into it; until they have,
		// the two limits add up.
		f.slots = make(chan struct{}, fn.Concurrency)
	}
	f.users++
	return f, f.slots, nil
}

func (p *Pool) leave(f *fnPool) {
	p.mu.Lock()
	f.users--
	p.mu.Unlock()
}

// acquire takes a concurrency slot, waiting up to QueueWait (and never past
// the deadline) for one.
func (p *Pool) acquire(ctx context.Context, fn Function, slots chan struct{}, deadline time.Time) error {
	select {
	case slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(max(min(p.cfg.QueueWait, time.Until(deadline)), 0))
	defer t.Stop()
	select {
	case slots <- struct{}{}:
		return nil
	case <-t.C:
		return newError(KindBusy, "zambda %s is already running %d invocations, its concurrency limit: try again shortly", fn.Name, cap(slots))
	case <-ctx.Done():
		return fmt.Errorf("zambda %s: waiting for a free slot: %w", fn.Name, ctx.Err())
	}
}

// takeIdle returns the most recently used idle worker that can serve fn.
// Workers started with other settings are killed.
func (p *Pool) takeIdle(f *fnPool, fn Function) *worker {
	var stale []*worker
	defer func() {
		for _, w := range stale {
			w.kill(killReplaced)
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(f.idle) > 0 {
		w := f.idle[len(f.idle)-1]
		f.idle = f.idle[:len(f.idle)-1]
		switch {
		case w.exited():
		case !w.fn.sameProcess(fn):
			stale = append(stale, w)
		default:
			return w
		}
	}
	return nil
}

func (p *Pool) putIdle(f *fnPool, w *worker) {
	p.mu.Lock()
	if p.closed || w.exited() {
		p.mu.Unlock()
		w.kill(killClosed)
		return
	}
	w.lastUsed = time.Now()
	f.idle = append(f.idle, w)
	p.mu.Unlock()
}

// track registers a new worker, unless the pool is closed.
func (p *Pool) track(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.all[w] = struct{}{}
	go func() {
		<-w.dead
		p.mu.Lock()
		delete(p.all, w)
		p.mu.Unlock()
	}()
	return true
}

// reap kills workers idle longer than IdleTimeout and drops the entries
// (and scratch dirs) of keys that have none left.
func (p *Pool) reap() {
	defer close(p.done)
	t := time.NewTicker(max(p.cfg.IdleTimeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		var old []*worker
		var dirs []string
		p.mu.Lock()
		for key, f := range p.fns {
			keep := f.idle[:0]
			for _, w := range f.idle {
				switch {
				case w.exited():
				case time.Since(w.lastUsed) > p.cfg.IdleTimeout:
					old = append(old, w)
				default:
					keep = append(keep, w)
				}
			}
			clear(f.idle[len(keep):])
			f.idle = keep
			if f.users == 0 && len(f.idle) == 0 {
				delete(p.fns, key)
				dirs = append(dirs, f.scratch)
			}
		}
		p.mu.Unlock()
		for _, w := range old {
			p.log.Debug("zambda worker idle, stopping it", "zambda", w.name, "pid", w.pid)
			w.kill(killReplaced)
		}
		for _, d := range dirs {
			_ = os.RemoveAll(d)
		}
	}
}

// run hands c to w and waits for the answer, the worker's death, the
// deadline, or ctx. It does not kill w; Invoke does on any error.
func (p *Pool) run(ctx context.Context, w *worker, c *call, invoked time.Time, res Result) (Result, error) {
	w.mu.Lock()
	w.cur = c
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.cur = nil
		w.mu.Unlock()
	}()
	timer := time.NewTimer(time.Until(c.deadline))
	defer timer.Stop()
	var start time.Time // when the worker took the event
	var oom bool        // its stderr said it ran out of memory
	// finish fills in what every outcome reports.
	finish := func(err error) (Result, error) {
		if !start.IsZero() {
			res.Duration = time.Since(start)
		}
		res.Logs, oom = w.logs.take()
		res.MaxRSSKB = w.maxRSS()
		return res, err
	}
	died := func(loading bool) (Result, error) {
		// It may have answered just before exiting (an uncaught error
		// posted, then exit): the answer wins.
		select {
		case a := <-c.answer:
			if !a.isError && !a.tooBig {
				res.Payload = a.body
			}
			return finish(w.answered(a))
		case a := <-w.initErr:
			return finish(w.initError(a))
		default:
		}
		if w.killedBy.Load() == killClosed {
			return finish(ErrClosed)
		}
		r, _ := finish(nil)
		return r, w.deathError(oom, loading)
	}
	timedOut := func(loading bool) (Result, error) {
		w.kill(killTimeout)
		when := ""
		if loading {
			when = " while loading (before it asked for its first event)"
		}
		// Name the function's timeout when that is what ran out (the
		// caller computed the deadline from it, a moment before invoked).
		limit := c.deadline.Sub(invoked)
		if t := c.timeout; limit > t-100*time.Millisecond && limit < t+100*time.Millisecond {
			limit = t
		}
		return finish(newError(KindTimeout, "zambda %s timed out after %s%s: raise its timeout, or make it faster", w.name, fmtDuration(limit), when))
	}
	canceled := func(loading bool) (Result, error) {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return timedOut(loading)
		}
		w.kill(killCanceled)
		return finish(fmt.Errorf("zambda %s: %w", w.name, ctx.Err()))
	}

	// Hand the event over; a cold worker takes it once it has loaded.
	select {
	case w.jobs <- c:
	case a := <-w.initErr:
		return finish(w.initError(a))
	case <-w.dead:
		return died(true)
	case <-timer.C:
		return timedOut(res.Cold)
	case <-ctx.Done():
		return canceled(res.Cold)
	}
	start = time.Now()
	if res.Cold {
		res.InitDuration = w.readyAt.Sub(w.started)
	}

	select {
	case a := <-c.answer:
		if !a.isError && !a.tooBig {
			res.Payload = a.body
		}
		return finish(w.answered(a))
	case a := <-w.initErr:
		return finish(w.initError(a))
	case <-w.dead:
		return died(false)
	case <-timer.C:
		return timedOut(false)
	case <-ctx.Done():
		return canceled(false)
	}
}

// answered turns the worker's answer into the invocation's outcome.
func (w *worker) answered(a answer) error {
	if a.tooBig {
		return newError(KindTooLarge, "zambda %s returned a response larger than the %s limit: return less, or store the data (e.g. in Z3) and return a link to it", w.name, fmtBytes(w.maxOut))
	}
	if !a.isError {
		return nil
	}
	typ, msg := errorBody(a)
	if strings.Contains(msg, "Array buffer allocation failed") {
		// Node's Buffers live outside the JS heap, under RLIMIT_DATA.
		return w.oomError()
	}
	verb := "failed with"
	if isNode(w.fn.Runtime) {
		verb = "threw"
	}
	e := newError(KindHandler, "zambda %s %s %s: %s", w.name, verb, typ, msg)
	e.ErrorType = typ
	return e
}

func (w *worker) initError(a answer) error {
	typ, msg := errorBody(a)
	e := newError(KindInit, "zambda %s failed to load: %s: %s", w.name, typ, msg)
	e.ErrorType = typ
	return e
}

// safeID accepts request ids that need no escaping in a URL path.
func safeID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':') {
			return false
		}
	}
	return true
}

// newRequestID is a random UUID, as Lambda's request ids are.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// safeName makes a Key usable in a file name.
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}
