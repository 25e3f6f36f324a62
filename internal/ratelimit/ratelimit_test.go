package ratelimit_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/ratelimit"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// clock is a settable time for window math.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

func TestWindow(t *testing.T) {
	c := &clock{t: t0.Add(15 * time.Second)}
	l := ratelimit.New(nil, ratelimit.Config{Now: c.now})
	cases := []struct {
		name      string
		advance   time.Duration
		key       string
		allowed   bool
		remaining int
		reset     time.Duration
	}{
		{"first", 0, "a", true, 2, 45 * time.Second},
		{"second", time.Second, "a", true, 1, 44 * time.Second},
		{"third", 0, "a", true, 0, 44 * time.Second},
		{"over", 0, "a", false, 0, 44 * time.Second},
		{"still over", 0, "a", false, 0, 44 * time.Second},
		{"another key", 0, "b", true, 2, 44 * time.Second},
		{"last instant of the window", 44*time.Second - time.Nanosecond, "a", false, 0, time.Nanosecond},
		{"next window", time.Nanosecond, "a", true, 2, time.Minute},
	}
	for _, tc := range cases {
		c.add(tc.advance)
		d := l.Take(tc.key, 3)
		if d.Allowed != tc.allowed || d.Remaining != tc.remaining || d.Reset != tc.reset || d.Limit != 3 || d.Window != time.Minute {
			t.Fatalf("%s: %+v, want allowed %v remaining %d reset %v", tc.name, d, tc.allowed, tc.remaining, tc.reset)
		}
	}
	if d := l.Take("z", 0); d.Allowed {
		t.Fatalf("a limit of 0 let a request through: %+v", d)
	}
	var m strings.Builder
	if err := l.WritePrometheus(&m); err != nil || !strings.Contains(m.String(), "ward_rate_limited_total 4\n") {
		t.Fatalf("metrics (%v):\n%s", err, m.String())
	}
}

// TestExactWithoutShared: concurrent takes in one process accept exactly
// the limit.
func TestExactWithoutShared(t *testing.T) {
	l := ratelimit.New(nil, ratelimit.Config{Window: time.Hour})
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if l.Take("k", 250).Allowed {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if ok.Load() != 250 {
		t.Fatalf("accepted %d, want 250", ok.Load())
	}
}

// countingShared counts calls into the shared store and can fail them.
type countingShared struct {
	ratelimit.Shared
	adds atomic.Int64
	fail atomic.Bool
}

func (c *countingShared) AddRateCounts(ctx context.Context, w time.Time, counts map[string]int64) (map[string]int64, error) {
	c.adds.Add(1)
	if c.fail.Load() {
		return nil, errors.New("database down")
	}
	return c.Shared.AddRateCounts(ctx, w, counts)
}

// TestSharedBatches runs on both databases: two limiters (replicas) on
// one store share a key's limit once they flush, takes cost no store call
// (one batch per flush, whatever the number of requests), and counts of a
// failed flush are kept for the next.
func TestSharedBatches(t *testing.T) {
	ctx := context.Background()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := storetest.Open(t, b)
			c := &clock{t: t0}
			shared := &countingShared{Shared: st}
			a := ratelimit.New(shared, ratelimit.Config{Now: c.now})
			bb := ratelimit.New(shared, ratelimit.Config{Now: c.now})
			take := func(l *ratelimit.Limiter, key string, n int) int {
				ok := 0
				for range n {
					if l.Take(key, 10).Allowed {
						ok++
					}
				}
				return ok
			}
			if got := take(a, "p", 6); got != 6 {
				t.Fatalf("replica a accepted %d of 6", got)
			}
			if shared.adds.Load() != 0 {
				t.Fatalf("takes wrote to the store %d times", shared.adds.Load())
			}
			flush := func(l *ratelimit.Limiter) {
				t.Helper()
				if err := l.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			flush(a)
			if shared.adds.Load() != 1 {
				t.Fatalf("one flush made %d store calls", shared.adds.Load())
			}
			// b has not seen a's counts yet: it learns them at its first flush.
			if got := take(bb, "p", 1); got != 1 {
				t.Fatal("replica b refused its first request")
			}
			flush(bb) // shared total 7
			if got := take(bb, "p", 5); got != 3 {
				t.Fatalf("replica b accepted %d, want 3 (7 of 10 used)", got)
			}
			if got := take(bb, "q", 2); got != 2 {
				t.Fatalf("another key was limited: %d of 2", got)
			}
			flush(bb)
			flush(a) // a learns the total of 10
			if got := take(a, "p", 1); got != 0 {
				t.Fatal("replica a accepted a request over the shared limit")
			}

			// A failed flush keeps the counts local and limits on them.
			shared.fail.Store(true)
			if got := take(a, "r", 4); got != 4 {
				t.Fatalf("accepted %d of 4", got)
			}
			if err := a.Flush(ctx); err == nil {
				t.Fatal("flush with the store down succeeded")
			}
			if got := take(a, "r", 10); got != 6 {
				t.Fatalf("after a failed flush accepted %d, want 6", got)
			}
			shared.fail.Store(false)
			flush(a)
			got, err := st.AddRateCounts(ctx, t0, map[string]int64{"r": 0, "p": 0})
			if err != nil || got["r"] != 10 || got["p"] != 10 {
				t.Fatalf("shared totals = %v, %v; want r 10, p 10", got, err)
			}

			// The next window starts from zero everywhere.
			c.add(time.Minute)
			if got := take(a, "p", 10); got != 10 {
				t.Fatalf("next window accepted %d of 10", got)
			}
		})
	}
}

var _ ratelimit.Shared = (*store.Store)(nil)

// BenchmarkTake is the limiter's cost per request against a request's
// other fixed cost measured in the same run (BenchmarkBaseline: a map
// lookup under a mutex, as a policy cache hit does).
func BenchmarkTake(b *testing.B) {
	l := ratelimit.New(nil, ratelimit.Config{Window: time.Hour})
	keys := []string{"p1/m2m/a", "p1/m2m/b", "p2/user/c", "p2/developer/d"}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Take(keys[i%len(keys)], 1<<30)
			i++
		}
	})
}
