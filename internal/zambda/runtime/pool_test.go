package runtime

import (
	"context"
	"errors"
	"os"
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
	p := newPool(t, Config{MaxWorkers: 2, QueueWait: 50 * time.Millisecond})
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
