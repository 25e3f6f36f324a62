package admit

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGateBoundsAndOrder(t *testing.T) {
	ctx := context.Background()
	g := New(1, time.Hour)
	first := g.Enter(ctx)
	if !first.held {
		t.Fatal("an empty gate did not admit")
	}
	// Five waiters queue in a known order; each records its turn.
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := g.Enter(ctx)
			if !p.held {
				t.Errorf("waiter %d went in without a slot", i)
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			p.Leave()
		}()
		waitFor(t, "a waiter to queue", func() bool { return g.Waiting() == int64(i+1) })
	}
	mu.Lock()
	if len(order) != 0 {
		t.Fatalf("waiters ran while the only slot was held: %v", order)
	}
	mu.Unlock()
	first.Leave()
	wg.Wait()
	for i, got := range order {
		if got != i {
			t.Fatalf("admission order %v, want arrival order", order)
		}
	}
	if g.Overflowed() != 0 {
		t.Fatalf("overflowed %d, want 0", g.Overflowed())
	}
}

func TestGateLetsWaitersPast(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		maxWait time.Duration
	}{
		{"max wait passed", context.Background(), 5 * time.Millisecond},
		{"context ended", cancelled, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := New(1, tc.maxWait)
			holder := g.Enter(context.Background())
			p := g.Enter(tc.ctx) // must return although the slot stays held
			if p.held {
				t.Fatal("got a slot that another caller holds")
			}
			if g.Overflowed() != 1 {
				t.Fatalf("overflowed %d, want 1", g.Overflowed())
			}
			p.Leave() // a pass without a slot gives nothing back
			holder.Leave()
			if again := g.Enter(context.Background()); !again.held {
				t.Fatal("the freed slot was not free")
			}
		})
	}
}

func TestPassLeavesOnce(t *testing.T) {
	ctx := context.Background()
	g := New(2, time.Millisecond)
	a, b := g.Enter(ctx), g.Enter(ctx)
	a.Leave()
	a.Leave() // a second Leave must not free b's slot
	if c := g.Enter(ctx); !c.held {
		t.Fatal("a's slot was not given back")
	}
	if d := g.Enter(ctx); d.held {
		t.Fatal("a left twice: b's slot was handed out while b holds it")
	}
	b.Leave()
}

func TestNilGateAdmitsAll(t *testing.T) {
	var g *Gate
	if New(0, time.Second) != nil {
		t.Fatal("New(0) should mean no limit")
	}
	p := g.Enter(context.Background())
	p.Leave()
	if g.Waiting() != 0 || g.Overflowed() != 0 {
		t.Fatal("a nil gate counts nothing")
	}
}

func TestStatsPrometheus(t *testing.T) {
	g := New(1, time.Millisecond)
	held := g.Enter(context.Background())
	defer held.Leave()
	g.Enter(context.Background()) // waits 1 ms, goes in without a slot
	var b strings.Builder
	if err := g.Stats().WritePrometheus(&b, "ward_fhir_reads"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nward_fhir_reads_slots 1\n", "\nward_fhir_reads_waiting 0\n", "\nward_fhir_reads_overflow_total 1\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
	var none *Gate
	if st := none.Stats(); st != (Stats{}) {
		t.Errorf("nil gate stats = %+v", st)
	}
}
