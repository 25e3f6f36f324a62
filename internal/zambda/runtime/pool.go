package runtime

import (
	"bytes"
	"context"
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

	"github.com/wardhealth/ward/internal/zambda/sandbox"
)

//go:embed bootstrap.js
var nodeBootstrap []byte

// Pool owns the workers of every function. It is safe for concurrent use.
type Pool struct {
	cfg       Config
	log       *slog.Logger
	bootstrap string // path of the Node bootstrap in WorkDir
	scratch   string // this pool's root for per-version scratch dirs (without isolation)
	sandbox   sandbox.Sandbox
	isolated  bool   // the sandbox shows code at /var/task, the bootstrap under /var/runtime
	nodeMount string // a Node install outside /usr, shown at the same path in sandboxes
	seq       atomic.Int64

	mu  sync.Mutex
	fns map[string]*fnPool
	all map[*worker]struct{} // live workers, busy or idle, so Close can kill them all
	// live counts worker processes against Config.MaxWorkers: reserved
	// before a start, released when the process exits (or the start
	// fails), taken over from an idle worker stopped to make room.
	live int
	// projects counts the same places per Function.Project, against
	// Config.ProjectWorkers; a project holding none has no entry, so
	// len(projects) is how many projects share the server now.
	projects map[string]int
	// room is closed, and replaced, whenever a place may have come free
	// (a worker went idle or exited, a reservation was given back), to
	// wake the invocations waiting for one.
	room   chan struct{}
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
	if cfg.MaxWorkers <= 0 {
		cfg.MaxWorkers = defaultMaxWorkers
	}
	if cfg.ProjectWorkers <= 0 {
		cfg.ProjectWorkers = defaultProjectWorkers(cfg.MaxWorkers)
	}
	cfg.ProjectWorkers = min(cfg.ProjectWorkers, cfg.MaxWorkers)
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
	if cfg.Sandbox == nil {
		cfg.Sandbox = sandbox.NewDirect(cfg.Logger, "no sandbox configured")
	}
	p := &Pool{cfg: cfg, log: cfg.Logger, bootstrap: boot, scratch: scratch, sandbox: cfg.Sandbox, isolated: cfg.Sandbox.Info().Isolated,
		fns: map[string]*fnPool{}, all: map[*worker]struct{}{}, projects: map[string]int{}, room: make(chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{})}
	if p.isolated && cfg.NodePath != "" {
		p.nodeMount = nodeInstall(cfg.NodePath)
	}
	go p.reap()
	return p, nil
}

// nodeInstall is the directory to show in sandboxes for a node binary
// outside /usr (which every sandbox has): its install prefix (bin/..).
func nodeInstall(node string) string {
	real, err := filepath.EvalSymlinks(node)
	if err != nil || strings.HasPrefix(real, "/usr/") {
		return ""
	}
	return filepath.Dir(filepath.Dir(real))
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

// acquire takes a concurrency slot, waiting until until (the end of the
// invocation's QueueWait, never past its deadline) for one.
func (p *Pool) acquire(ctx context.Context, fn Function, slots chan struct{}, until time.Time) error {
	select {
	case slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(max(time.Until(until), 0))
	defer t.Stop()
	select {
	case slots <- struct{}{}:
		return nil
	case <-t.C:
		return newError(KindBusy, "zambda %s is busy: it is at its limit of %d invocations at once; try again shortly", fn.Name, cap(slots))
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
	p.signal()
	p.mu.Unlock()
}

// signal wakes the invocations waiting for room. Callers hold p.mu.
func (p *Pool) signal() {
	close(p.room)
	p.room = make(chan struct{})
}

// getWorker returns an idle warm worker of fn, or starts one (cold). When
// there is no room for a new one (KindBusy from reserveWorker) it waits
// until until for a worker to go idle or exit, and tries again.
func (p *Pool) getWorker(ctx context.Context, f *fnPool, fn Function, until time.Time) (w *worker, cold bool, err error) {
	for {
		// Taken before looking, so a place freed meanwhile is not missed.
		p.mu.Lock()
		room := p.room
		p.mu.Unlock()
		if w := p.takeIdle(f, fn); w != nil {
			return w, false, nil
		}
		err := p.reserveWorker(fn)
		if err == nil {
			break
		}
		wait := time.Until(until)
		if !IsKind(err, KindBusy) || wait <= 0 {
			return nil, false, err
		}
		t := time.NewTimer(wait)
		select {
		case <-room:
			t.Stop()
		case <-t.C:
			return nil, false, err
		case <-ctx.Done():
			t.Stop()
			return nil, false, fmt.Errorf("zambda %s: waiting for a worker: %w", fn.Name, ctx.Err())
		case <-p.stop:
			t.Stop()
			return nil, false, ErrClosed
		}
	}
	w, err = p.start(ctx, fn, f.scratch)
	if err != nil {
		p.releaseWorker(fn.Project)
		return nil, false, err
	}
	if !p.track(w) {
		p.releaseWorker(fn.Project)
		w.kill(killClosed)
		return nil, false, ErrClosed
	}
	p.log.DebugContext(ctx, "zambda worker started", "zambda", fn.Name, "key", fn.Key, "pid", w.pid)
	return w, true, nil
}

// reserveWorker makes room for one more worker process of fn's project,
// or fails with KindBusy:
//   - a project at Config.ProjectWorkers may only replace its own least
//     recently used idle worker;
//   - under Config.MaxWorkers the place is counted;
//   - at MaxWorkers an idle worker is stopped and its place taken over. A
//     project under its fair share (MaxWorkers divided among the projects
//     holding workers, itself included) takes it from the project holding
//     the most workers (the least recently used of those); a project at or
//     over its share only replaces its own, so its demand never pushes
//     out a smaller project's warm workers.
func (p *Pool) reserveWorker(fn Function) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	held := p.projects[fn.Project]
	var victim *worker
	switch {
	case held >= p.cfg.ProjectWorkers && p.cfg.ProjectWorkers < p.cfg.MaxWorkers:
		if victim = p.idleVictim(fn.Project, true); victim == nil {
			p.mu.Unlock()
			return newError(KindBusy, "zambda %s cannot start: its project already runs %d zambda workers, its limit on this server, and none is idle; try again shortly", fn.Name, p.cfg.ProjectWorkers)
		}
	case p.live < p.cfg.MaxWorkers:
		p.live++
		p.projects[fn.Project]++
		p.mu.Unlock()
		return nil
	default:
		over := p.overShare(fn.Project)
		if victim = p.idleVictim(fn.Project, over); victim == nil {
			p.mu.Unlock()
			if over && len(p.projects) > 1 {
				return newError(KindBusy, "zambda %s cannot start: all %d zambda workers of this server are in use and its project holds %d, its share while other projects need them; try again shortly", fn.Name, p.cfg.MaxWorkers, held)
			}
			return newError(KindBusy, "zambda %s cannot start: all %d zambda workers of this server are busy; try again shortly", fn.Name, p.cfg.MaxWorkers)
		}
	}
	// The victim's place is the new worker's.
	victim.uncounted = true
	p.unhold(victim.fn.Project)
	p.projects[fn.Project]++
	p.mu.Unlock()
	p.log.Debug("zambda worker stopped to make room", "zambda", victim.name, "project", victim.fn.Project, "pid", victim.pid, "for", fn.Name, "for_project", fn.Project)
	victim.kill(killReplaced)
	return nil
}

// overShare reports whether one more worker would put project over its
// fair share of MaxWorkers: an equal part for every project holding
// workers, itself included. Callers hold p.mu.
func (p *Pool) overShare(project string) bool {
	held := p.projects[project]
	n := len(p.projects)
	if held == 0 {
		n++
	}
	return (held+1)*n > p.cfg.MaxWorkers
}

// idleVictim removes and returns the idle worker to stop for a new worker
// of project: only project's own when ownOnly, else one of the project
// holding the most workers; among those the least recently used. nil if
// none. Callers hold p.mu.
func (p *Pool) idleVictim(project string, ownOnly bool) *worker {
	var victim *worker
	var from *fnPool
	at, most := -1, 0
	for _, f := range p.fns {
		for i, w := range f.idle {
			// An exited worker has given its place back already.
			if w.exited() || ownOnly && w.fn.Project != project {
				continue
			}
			held := p.projects[w.fn.Project]
			if victim == nil || held > most || held == most && w.lastUsed.Before(victim.lastUsed) {
				victim, from, at, most = w, f, i, held
			}
		}
	}
	if victim != nil {
		from.idle = append(from.idle[:at], from.idle[at+1:]...)
	}
	return victim
}

// unhold gives back one of project's places. Callers hold p.mu.
func (p *Pool) unhold(project string) {
	if p.projects[project]--; p.projects[project] <= 0 {
		delete(p.projects, project)
	}
}

// releaseWorker gives back a place reserved for a worker that did not start.
func (p *Pool) releaseWorker(project string) {
	p.mu.Lock()
	p.live--
	p.unhold(project)
	p.signal()
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
		if !w.uncounted {
			p.live--
			p.unhold(w.fn.Project)
		}
		p.signal()
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
