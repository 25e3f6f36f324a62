package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

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
	// One wait for the whole invocation: for a slot, then for a worker.
	until := time.Now().Add(p.cfg.QueueWait)
	if deadline.Before(until) {
		until = deadline
	}
	if err := p.acquire(ctx, fn, slots, until); err != nil {
		return res, err
	}
	defer func() { <-slots }()

	w, cold, err := p.getWorker(ctx, f, fn, until)
	if err != nil {
		return res, err
	}
	res.Cold = cold
	c := &call{id: id, payload: inv.Payload, deadline: deadline, timeout: fn.Timeout, answer: make(chan answer, 1)}
	res, err = p.run(ctx, w, c, invoked, res)
	if err != nil {
		w.kill(killReplaced)
		p.log.DebugContext(ctx, "zambda worker replaced after a failure", "zambda", fn.Name, "pid", w.pid, "err", err)
		return res, err
	}
	// Nothing the function started outlives its invocation.
	w.proc.Sweep()
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
