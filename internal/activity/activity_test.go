package activity

import (
	"sync"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestHour(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 7, 10, 0, 30, 0, time.UTC)}
	r := New(clk.now, 0)
	for i := 0; i < 98; i++ {
		r.Request("p1", 200, 2*time.Millisecond)
	}
	r.Request("p1", 404, 2*time.Millisecond)
	r.Request("p1", 503, 900*time.Millisecond)
	r.Invocation("p1", false)
	r.Invocation("p1", true)
	r.Request("p2", 200, time.Second)
	r.Request("", 200, time.Second) // no project: not counted

	clk.t = clk.t.Add(5 * time.Minute)
	r.Request("p1", 500, 10*time.Millisecond)

	mins, sum := r.Hour("p1")
	if len(mins) != Minutes {
		t.Fatalf("%d minutes", len(mins))
	}
	last, first := mins[Minutes-1], mins[Minutes-6]
	if !last.Start.Equal(time.Date(2026, 12, 7, 10, 5, 0, 0, time.UTC)) || !first.Start.Equal(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("minute starts %v, %v", first.Start, last.Start)
	}
	if first.Requests != 100 || first.ClientErrors != 1 || first.ServerErrors != 1 || first.Invocations != 2 || first.InvocationFailures != 1 {
		t.Errorf("first minute = %+v", first)
	}
	// p50 is the 2 ms bucket's bound (within 25%), p99 the 99th request (2 ms).
	if first.P50 < 2*time.Millisecond || first.P50 > 2500*time.Microsecond || first.P99 != first.P50 {
		t.Errorf("first minute p50 %v p99 %v", first.P50, first.P99)
	}
	if last.Requests != 1 || last.ServerErrors != 1 || last.P99 < 10*time.Millisecond || last.P99 > 12500*time.Microsecond {
		t.Errorf("last minute = %+v", last)
	}
	if sum.Requests != 101 || sum.ServerErrors != 2 || sum.ClientErrors != 1 || sum.Invocations != 2 {
		t.Errorf("summary = %+v", sum)
	}
	if sum.P99 < 10*time.Millisecond || sum.P99 > 12500*time.Microsecond {
		t.Errorf("hour p99 = %v, want the 10 ms bucket", sum.P99)
	}
	// Another project's figures are its own.
	if _, s2 := r.Hour("p2"); s2.Requests != 1 || s2.P50 < time.Second {
		t.Errorf("p2 = %+v", s2)
	}
	if _, s3 := r.Hour("p3"); s3 != (Summary{}) {
		t.Errorf("unknown project = %+v", s3)
	}
	// An hour later the old minutes are gone.
	clk.t = clk.t.Add(Minutes * time.Minute)
	if _, s := r.Hour("p1"); s.Requests != 0 {
		t.Errorf("after an hour = %+v", s)
	}
	r.Request("p1", 200, time.Millisecond)
	if mins, s := r.Hour("p1"); s.Requests != 1 || mins[Minutes-1].Requests != 1 || mins[Minutes-1].ServerErrors != 0 {
		t.Errorf("reused bucket = %+v", s)
	}
}

func TestMaxProjects(t *testing.T) {
	clk := &clock{t: time.Unix(6000, 0)}
	r := New(clk.now, 2)
	r.Request("a", 200, 0)
	r.Request("b", 200, 0)
	r.Request("c", 200, 0) // full: not counted
	if _, s := r.Hour("c"); s.Requests != 0 {
		t.Errorf("over the bound: %+v", s)
	}
	clk.t = clk.t.Add(2 * time.Hour)
	r.Request("c", 200, 0) // a and b idle for an hour: room made
	if _, s := r.Hour("c"); s.Requests != 1 {
		t.Errorf("after idle projects went: %+v", s)
	}
}

func TestLatencyBuckets(t *testing.T) {
	for _, d := range []time.Duration{0, time.Microsecond, latencyBase, 150 * time.Microsecond, time.Millisecond, time.Second, time.Minute, time.Hour} {
		i := latencyBucket(d)
		if d <= bound(i) == false && i != latencyBuckets-1 {
			t.Errorf("%v in bucket %d of bound %v", d, i, bound(i))
		}
		if i > 0 && d <= bound(i-1) {
			t.Errorf("%v in bucket %d, but fits bucket %d", d, i, i-1)
		}
	}
}

func TestConcurrent(t *testing.T) {
	r := New(nil, 0)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				r.Request("p", 200, time.Millisecond)
				r.Invocation("p", false)
			}
		}()
	}
	wg.Wait()
	// The minute may turn during the loop: count over the hour.
	if _, s := r.Hour("p"); s.Requests != 8000 || s.Invocations != 8000 {
		t.Errorf("summary = %+v", s)
	}
}

func BenchmarkRequest(b *testing.B) {
	r := New(nil, 0)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Request("project", 200, 3*time.Millisecond)
		}
	})
}
