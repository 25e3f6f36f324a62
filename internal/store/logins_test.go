package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store"
)

// testLoginFailures: counts per key in a fixed window, a new window once it
// has passed, take-back and clear, and concurrent counts that each see a
// distinct value.
func testLoginFailures(t *testing.T, s *store.Store) {
	ctx := context.Background()
	const window = 15 * time.Minute
	count := func(now time.Time, keys ...string) []store.FailureWindow {
		t.Helper()
		w, err := s.CountLoginFailure(ctx, keys, now, window)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	for i := range 3 {
		w := count(t0.Add(time.Duration(i)*time.Minute), "acct:a", "addr:x")
		if w[0].Key != "acct:a" || w[0].Count != i || !w[0].Start.Equal(t0) || w[1].Count != i {
			t.Fatalf("count %d = %+v", i, w)
		}
	}
	if w := count(t0, "acct:b", "addr:x"); w[0].Count != 0 || w[1].Count != 3 {
		t.Fatalf("another account = %+v", w)
	}
	if err := s.UncountLoginFailure(ctx, []string{"addr:x", "acct:none"}); err != nil {
		t.Fatal(err)
	}
	if err := s.ClearLoginFailures(ctx, []string{"acct:a"}); err != nil {
		t.Fatal(err)
	}
	if w := count(t0.Add(time.Minute), "acct:a", "addr:x"); w[0].Count != 0 || w[1].Count != 3 {
		t.Fatalf("after uncount and clear = %+v", w)
	}
	// The window has passed: a new one starts.
	later := t0.Add(window)
	if w := count(later, "addr:x"); w[0].Count != 0 || !w[0].Start.Equal(later) {
		t.Fatalf("after the window = %+v", w)
	}

	const n = 8
	seen := make([]int, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.CountLoginFailure(ctx, []string{"pair:c", "acct:c"}, later, window)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if w[0].Count < n {
				seen[w[0].Count]++
			}
		}()
	}
	wg.Wait()
	for _, c := range seen {
		if c != 1 {
			t.Fatalf("concurrent counts seen %v, want each of 0..%d once", seen, n-1)
		}
	}
}
