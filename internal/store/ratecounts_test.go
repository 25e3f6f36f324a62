package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store"
)

// testRateCounts: batches add up per key and window, a zero count reads,
// windows are apart, concurrent batches (replicas) lose no count, and
// pruning drops past windows only.
func testRateCounts(t *testing.T, s *store.Store) {
	ctx := context.Background()
	w1, w2 := t0, t0.Add(time.Minute)
	add := func(w time.Time, counts map[string]int64) map[string]int64 {
		t.Helper()
		got, err := s.AddRateCounts(ctx, w, counts)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := add(w1, map[string]int64{"a": 3, "b": 1}); got["a"] != 3 || got["b"] != 1 {
		t.Fatalf("first batch = %v", got)
	}
	if got := add(w1, map[string]int64{"a": 2, "c": 0}); got["a"] != 5 || got["c"] != 0 || len(got) != 2 {
		t.Fatalf("second batch = %v", got)
	}
	if got := add(w2, map[string]int64{"a": 1}); got["a"] != 1 {
		t.Fatalf("next window = %v", got)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := s.AddRateCounts(ctx, w2, map[string]int64{"a": 10, "b": 1}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := add(w2, map[string]int64{"a": 0, "b": 0}); got["a"] != 81 || got["b"] != 8 {
		t.Fatalf("after concurrent batches = %v", got)
	}
	// Reads of many keys at once (they go by chunks).
	many := map[string]int64{"a": 0, "b": 0}
	for i := range 250 {
		many[fmt.Sprintf("idle-%d", i)] = 0
	}
	if got := add(w2, many); len(got) != 252 || got["a"] != 81 || got["b"] != 8 || got["idle-249"] != 0 {
		t.Fatalf("reading 252 keys: %d totals, a %d, b %d", len(got), got["a"], got["b"])
	}
	if err := s.PruneRateCounts(ctx, w2); err != nil {
		t.Fatal(err)
	}
	if got := add(w1, map[string]int64{"a": 0}); got["a"] != 0 {
		t.Fatalf("pruned window still counts %v", got)
	}
	if got := add(w2, map[string]int64{"a": 0}); got["a"] != 81 {
		t.Fatalf("current window pruned: %v", got)
	}
}
