package batch

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDo: every item is flushed exactly once and gets its own outcome;
// no batch exceeds Max; no more than Writers flushes run at once; callers
// queued behind a busy writer share batches.
func TestDo(t *testing.T) {
	for _, tc := range []struct {
		name         string
		writers, max int
	}{
		{"one writer, no limit", 1, 0},
		{"one writer, max 4", 1, 4},
		{"two writers, max 64", 2, 64},
		{"zero writers means one", 0, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const callers = 200
			var (
				mu       sync.Mutex
				seen     = map[int]int{}
				inFlight atomic.Int32
				most     atomic.Int32
				batches  atomic.Int32
			)
			release := make(chan struct{})
			b := &Batcher[int]{Writers: tc.writers, Max: tc.max, Flush: func(items []int) []error {
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				if tc.max > 0 && len(items) > tc.max {
					t.Errorf("batch of %d, max %d", len(items), tc.max)
				}
				if int(batches.Add(1)) <= max(tc.writers, 1) {
					<-release // hold the first batches until every other caller queued
				}
				errs := make([]error, len(items))
				mu.Lock()
				for i, it := range items {
					seen[it]++
					if it%7 == 0 {
						errs[i] = fmt.Errorf("item %d: %w", it, errOdd)
					}
				}
				mu.Unlock()
				return errs
			}}
			var wg sync.WaitGroup
			results := make([]error, callers)
			for i := range callers {
				wg.Go(func() { results[i] = b.Do(i) })
			}
			// Every caller but the held writers is queued: then release.
			w := max(tc.writers, 1)
			deadline := time.Now().Add(10 * time.Second)
			for {
				b.mu.Lock()
				n := len(b.queue)
				b.mu.Unlock()
				if n == callers-w {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d callers queued, want %d", n, callers-w)
				}
				runtime.Gosched()
			}
			close(release)
			wg.Wait()
			for i := range callers {
				if seen[i] != 1 {
					t.Errorf("item %d flushed %d times", i, seen[i])
				}
				if want := i%7 == 0; errors.Is(results[i], errOdd) != want {
					t.Errorf("item %d: outcome %v", i, results[i])
				}
			}
			if int(most.Load()) > w {
				t.Errorf("%d flushes at once, Writers %d", most.Load(), w)
			}
			if int(batches.Load()) >= callers {
				t.Errorf("%d batches for %d callers: none shared", batches.Load(), callers)
			}
		})
	}
}

var errOdd = errors.New("refused")
