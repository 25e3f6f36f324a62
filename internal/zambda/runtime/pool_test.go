package runtime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// inFlight waits until the pool has one worker running an invocation.
func busyWorker(t *testing.T, p *Pool) *worker {
	t.Helper()
	var found *worker
	waitFor(t, "an invocation in flight", 10*time.Second, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for w := range p.all {
			w.mu.Lock()
			busy := w.cur != nil
			w.mu.Unlock()
			if busy {
				found = w
				return true
			}
		}
		return false
	})
	return found
}

func TestCloseKillsBusyWorkers(t *testing.T) {
	p, err := New(Config{WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	fn := goFn(t, "close")
	fn.Timeout = 30 * time.Second
	idlePid, _ := goInfo(t, p, fn)
	var wg sync.WaitGroup
	var hangErr error
	wg.Go(func() { _, hangErr = invoke(t, p, fn, `{"mode":"hang"}`) })
	w := busyWorker(t, p)
	if w.pid != idlePid {
		t.Fatalf("the hang did not reuse the idle worker")
	}
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !errors.Is(hangErr, ErrClosed) || time.Since(start) > 5*time.Second {
		t.Fatalf("in-flight invocation: %v after %s", hangErr, time.Since(start))
	}
	if alive(w.pid) {
		t.Fatal("Close left a busy worker alive")
	}
	if _, err := os.Stat(p.scratch); !os.IsNotExist(err) {
		t.Errorf("scratch dir left: %v", err)
	}
	if _, err := invoke(t, p, fn, `{}`); !errors.Is(err, ErrClosed) {
		t.Fatalf("invoke after Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestIdleWorkersAreReaped(t *testing.T) {
	p := newPool(t, Config{IdleTimeout: 50 * time.Millisecond})
	fn := goFn(t, "reap")
	pid, _ := goInfo(t, p, fn)
	waitFor(t, "the idle worker to be reaped", 10*time.Second, func() bool { return !alive(pid) })
	waitFor(t, "the key's entry to be dropped", 10*time.Second, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.fns) == 0
	})
	// The reaper removes the dir just after it drops the entry.
	waitFor(t, "the key's scratch dir to be removed", 10*time.Second, func() bool {
		ents, err := os.ReadDir(p.scratch)
		return err == nil && len(ents) == 0
	})
	if res := mustInvoke(t, p, fn, `{}`); !res.Cold {
		t.Error("a reaped function started warm")
	}
}

func TestCancelAndCallerDeadline(t *testing.T) {
	p := newPool(t, Config{})
	fn := goFn(t, "cancel")
	fn.Timeout = 30 * time.Second

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var err error
	wg.Go(func() { _, err = p.Invoke(ctx, fn, Invocation{Payload: []byte(`{"mode":"hang"}`)}) })
	w := busyWorker(t, p)
	cancel()
	wg.Wait()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
	waitFor(t, "the canceled worker to die", 5*time.Second, func() bool { return !alive(w.pid) })

	// A caller's deadline before the function's timeout is a timeout.
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = p.Invoke(ctx, fn, Invocation{Payload: []byte(`{"mode":"hang"}`)})
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Fatalf("caller deadline: %v", err)
	}
	mustInvoke(t, p, fn, `{}`)
}

func TestInvalidFunctions(t *testing.T) {
	p := newPool(t, Config{})
	ok := Function{Key: "k", Name: "n", Runtime: "provided", CodeDir: t.TempDir()}
	for _, tc := range []struct {
		name   string
		change func(*Function)
		msg    string
	}{
		{"no key", func(f *Function) { f.Key = "" }, "Key is required"},
		{"no code dir", func(f *Function) { f.CodeDir = "" }, "CodeDir is required"},
		{"memory too small", func(f *Function) { f.MemoryMB = 64 }, "memorySize 64 MB is out of range"},
		{"memory too large", func(f *Function) { f.MemoryMB = 20000 }, "memorySize 20000 MB is out of range"},
		{"bad env name", func(f *Function) { f.Env = map[string]string{"A=B": "x"} }, `environment variable "A=B"`},
	} {
		fn := ok
		tc.change(&fn)
		if _, err := invoke(t, p, fn, `{}`); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestNewNeedsWorkDir(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without a WorkDir worked")
	}
}

// At Config.MaxWorkers a cold start stops the least recently used idle
// worker of another function; with every worker busy it is refused.
func TestMaxWorkers(t *testing.T) {
	p := newPool(t, Config{MaxWorkers: 2, ProjectWorkers: 2, QueueWait: 50 * time.Millisecond})
	a, b, c := goFn(t, "cap-a"), goFn(t, "cap-b"), goFn(t, "cap-c")
	pidA, _ := goInfo(t, p, a)
	pidB, _ := goInfo(t, p, b)
	pidC, _ := goInfo(t, p, c) // the third: a's worker, the least recently used, makes room
	waitFor(t, "a's idle worker to be stopped", 10*time.Second, func() bool { return !alive(pidA) })
	if !alive(pidB) || !alive(pidC) {
		t.Fatalf("b's or c's worker stopped (b %v, c %v)", alive(pidB), alive(pidC))
	}

	// b and c both busy: a has no room.
	b.Timeout, c.Timeout = 30*time.Second, 30*time.Second
	var wg sync.WaitGroup
	for _, fn := range []Function{b, c} {
		wg.Go(func() { _, _ = invoke(t, p, fn, `{"mode":"hang"}`) })
	}
	waitFor(t, "two invocations in flight", 10*time.Second, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		busy := 0
		for w := range p.all {
			w.mu.Lock()
			if w.cur != nil {
				busy++
			}
			w.mu.Unlock()
		}
		return busy == 2
	})
	if _, err := invoke(t, p, a, `{}`); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "all 2 zambda workers") {
		t.Fatalf("cold start with every worker busy: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// The eviction rule on its own: which idle worker makes room for a cold
// start at Config.MaxWorkers.
func TestFairShareVictim(t *testing.T) {
	type idle struct {
		name, project string
		age           int // minutes since last use
		exited        bool
	}
	for _, tc := range []struct {
		name      string
		max       int
		held      map[string]int // live workers per project, busy and idle
		idle      []idle
		requester string
		over      bool
		victim    string // "" for none
	}{
		{name: "under its share: from the project holding the most, not the global LRU", max: 4,
			held: map[string]int{"A": 3, "B": 1}, idle: []idle{{"a1", "A", 3, false}, {"a2", "A", 1, false}, {"b1", "B", 9, false}},
			requester: "B", victim: "a1"},
		{name: "over its share: only its own", max: 4,
			held: map[string]int{"A": 3, "B": 1}, idle: []idle{{"a2", "A", 1, false}, {"b1", "B", 9, false}},
			requester: "A", over: true, victim: "a2"},
		{name: "over its share, none of its own idle: none", max: 4,
			held: map[string]int{"A": 3, "B": 1}, idle: []idle{{"b1", "B", 9, false}},
			requester: "A", over: true},
		{name: "at exactly its share after the start: still under", max: 4,
			held: map[string]int{"A": 3, "B": 1}, idle: []idle{{"a1", "A", 1, false}},
			requester: "B", victim: "a1"},
		{name: "a new project counts itself in", max: 4,
			held: map[string]int{"A": 4}, idle: []idle{{"a1", "A", 1, false}, {"a2", "A", 2, false}},
			requester: "C", victim: "a2"},
		{name: "three projects: the biggest before the least recently used", max: 6,
			held: map[string]int{"A": 2, "B": 4}, idle: []idle{{"a1", "A", 9, false}, {"b1", "B", 1, false}},
			requester: "C", victim: "b1"},
		{name: "equal holders: the least recently used", max: 4,
			held: map[string]int{"A": 2, "B": 2}, idle: []idle{{"a1", "A", 1, false}, {"b1", "B", 2, false}},
			requester: "C", victim: "b1"},
		{name: "exited workers are skipped", max: 4,
			held: map[string]int{"A": 3, "B": 1}, idle: []idle{{"a1", "A", 9, true}, {"a2", "A", 1, false}},
			requester: "B", victim: "a2"},
		{name: "one project alone is over as soon as it is full", max: 2,
			held: map[string]int{"A": 2}, idle: []idle{{"a1", "A", 1, false}},
			requester: "A", over: true, victim: "a1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Pool{cfg: Config{MaxWorkers: tc.max, ProjectWorkers: tc.max}, fns: map[string]*fnPool{}, projects: map[string]int{}}
			maps.Copy(p.projects, tc.held)
			now := time.Now()
			for _, i := range tc.idle {
				w := &worker{name: i.name, fn: Function{Key: i.name, Project: i.project}, lastUsed: now.Add(-time.Duration(i.age) * time.Minute), dead: make(chan struct{})}
				if i.exited {
					close(w.dead)
				}
				p.fns[i.name] = &fnPool{idle: []*worker{w}}
			}
			over := p.overShare(tc.requester)
			if over != tc.over {
				t.Errorf("overShare(%s) = %v, want %v", tc.requester, over, tc.over)
			}
			got := ""
			if w := p.idleVictim(tc.requester, over); w != nil {
				got = w.name
				if slices.Contains(p.fns[got].idle, w) {
					t.Errorf("the victim %s is still idle", got)
				}
			}
			if got != tc.victim {
				t.Errorf("victim %q, want %q", got, tc.victim)
			}
		})
	}
}

// projectFn is the Go test function of a project, under its own Key.
func projectFn(t *testing.T, project, name string) Function {
	fn := goFn(t, project+"-"+name)
	fn.Project, fn.Timeout = project, 30*time.Second
	return fn
}

// hang runs fn in "hang" mode until the returned cancel is called (which
// waits for the invocation to end), and waits until busy invocations run.
func hang(t *testing.T, p *Pool, fn Function, busy int) (cancel func()) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = p.Invoke(ctx, fn, Invocation{Payload: []byte(`{"mode":"hang"}`)})
	}()
	waitBusy(t, p, busy)
	return func() { stop(); <-done }
}

// waitBusy waits until n invocations are in flight.
func waitBusy(t *testing.T, p *Pool, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d invocations in flight", n), 20*time.Second, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		busy := 0
		for w := range p.all {
			w.mu.Lock()
			if w.cur != nil {
				busy++
			}
			w.mu.Unlock()
		}
		return busy == n
	})
}

// counts is Pool.live and a copy of Pool.projects.
func counts(p *Pool) (int, map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live, maps.Clone(p.projects)
}

func wantCounts(t *testing.T, p *Pool, live int, projects map[string]int) {
	t.Helper()
	if l, pr := counts(p); l != live || !maps.Equal(pr, projects) {
		t.Fatalf("live %d %v, want %d %v", l, pr, live, projects)
	}
}

// closeToZero closes p and waits for its counters to return to zero.
func closeToZero(t *testing.T, p *Pool) {
	t.Helper()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the worker counters to return to zero", 10*time.Second, func() bool {
		l, pr := counts(p)
		return l == 0 && len(pr) == 0
	})
}

// A project at Config.ProjectWorkers replaces its own idle worker, or
// waits for one of its workers and is refused, while another project
// still starts workers.
func TestProjectWorkers(t *testing.T) {
	p := newPool(t, Config{MaxWorkers: 4, ProjectWorkers: 2, QueueWait: 10 * time.Second})
	a1, a2, a3 := projectFn(t, "A", "1"), projectFn(t, "A", "2"), projectFn(t, "A", "3")
	b1, b2 := projectFn(t, "B", "1"), projectFn(t, "B", "2")

	stopA1 := hang(t, p, a1, 1)
	pidA2, _ := goInfo(t, p, a2)
	wantCounts(t, p, 2, map[string]int{"A": 2})
	// At its limit, A's cold start replaces its own idle worker.
	if res := mustInvoke(t, p, a3, `{}`); !res.Cold {
		t.Fatal("a3 started warm")
	}
	waitFor(t, "a2's idle worker to be stopped", 10*time.Second, func() bool { return !alive(pidA2) })
	wantCounts(t, p, 2, map[string]int{"A": 2})

	// Both of A's workers busy: A waits (here until its deadline), then is
	// refused, naming its limit...
	stopA3 := hang(t, p, a3, 2)
	_, err := p.Invoke(context.Background(), a2, Invocation{Payload: []byte(`{}`), Deadline: time.Now().Add(200 * time.Millisecond)})
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "its project already runs 2 zambda workers") {
		t.Fatalf("A past its limit: %v", err)
	}
	// ... while B still starts workers.
	for _, fn := range []Function{b1, b2} {
		if res := mustInvoke(t, p, fn, `{}`); !res.Cold {
			t.Fatalf("%s started warm", fn.Key)
		}
	}
	wantCounts(t, p, 4, map[string]int{"A": 2, "B": 2})

	// A waiting invocation gets the place one of A's workers frees.
	var wg sync.WaitGroup
	var waited error
	wg.Go(func() { _, waited = invoke(t, p, a2, `{}`) })
	waitFor(t, "a2 to wait for a worker", 10*time.Second, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		f := p.fns[a2.Key]
		return f != nil && len(f.slots) == 1
	})
	stopA1()
	wg.Wait()
	if waited != nil {
		t.Fatalf("a2 after a1's worker exited: %v", waited)
	}
	stopA3()
	closeToZero(t, p)
}

// At Config.MaxWorkers, a project under its fair share stops an idle
// worker of the project over its share; a project at its share only
// replaces its own, and never the other's.
func TestFairShareAtServerCap(t *testing.T) {
	p := newPool(t, Config{MaxWorkers: 4, ProjectWorkers: 4, QueueWait: 50 * time.Millisecond})
	a := []Function{projectFn(t, "A", "1"), projectFn(t, "A", "2"), projectFn(t, "A", "3"), projectFn(t, "A", "4"), projectFn(t, "A", "5")}
	b1, b2 := projectFn(t, "B", "1"), projectFn(t, "B", "2")
	pids := map[string]int{}
	for _, fn := range []Function{a[0], a[1], a[2], b1} {
		pids[fn.Key], _ = goInfo(t, p, fn)
	}
	wantCounts(t, p, 4, map[string]int{"A": 3, "B": 1})
	stopped := func(keys ...string) {
		t.Helper()
		for _, fn := range []Function{a[0], a[1], a[2], b1, b2} {
			if pids[fn.Key] == 0 {
				continue
			}
			if want := slices.Contains(keys, fn.Key); want {
				waitFor(t, fn.Key+"'s worker to be stopped", 10*time.Second, func() bool { return !alive(pids[fn.Key]) })
			} else if !alive(pids[fn.Key]) {
				t.Fatalf("%s's worker was stopped", fn.Key)
			}
		}
	}

	// B (1 of 4, share 2) takes the place of A's least recently used idle
	// worker, though B's own is older.
	pids[b2.Key], _ = goInfo(t, p, b2)
	stopped(a[0].Key)
	wantCounts(t, p, 4, map[string]int{"A": 2, "B": 2})

	// A (2 of 4: its share) replaces its own, never B's.
	goInfo(t, p, a[3])
	stopped(a[0].Key, a[1].Key)
	wantCounts(t, p, 4, map[string]int{"A": 2, "B": 2})

	// A's workers busy: A is refused though B has idle workers.
	stop2 := hang(t, p, a[2], 1)
	stop3 := hang(t, p, a[3], 2)
	if _, err := invoke(t, p, a[4], `{}`); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "its project holds 2, its share") {
		t.Fatalf("A at its share with B idle: %v", err)
	}
	stopped(a[0].Key, a[1].Key)
	wantCounts(t, p, 4, map[string]int{"A": 2, "B": 2})
	stop2()
	stop3()
	waitFor(t, "A's canceled workers to exit", 10*time.Second, func() bool {
		l, pr := counts(p)
		return l == 2 && maps.Equal(pr, map[string]int{"B": 2})
	})
	closeToZero(t, p)
}
