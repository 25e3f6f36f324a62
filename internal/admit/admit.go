// Package admit runs CPU-bound requests a few at a time, first come first
// served.
//
// With 32 searches in flight on two cores, Go interleaves them all and
// database/sql hands its connections to a random waiter, so a few requests
// wait many turns: p99 was 4-5x the median. Letting in only as many as
// there are cores, in arrival order, keeps each request's turn short and
// the order fair (bench/RESULTS.md: search p99 14-16 ms -> 7-9 ms at a
// higher rate).
package admit

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// Gate holds n slots. A nil *Gate admits everyone at once.
type Gate struct {
	slots   chan struct{}
	maxWait time.Duration
	waiting atomic.Int64
	over    atomic.Int64
}

// New returns a gate of n slots whose callers wait at most maxWait, or nil
// (no limit) when n <= 0.
func New(n int, maxWait time.Duration) *Gate {
	if n <= 0 {
		return nil
	}
	return &Gate{slots: make(chan struct{}, n), maxWait: maxWait}
}

// Pass is one caller's admission. Leave gives its slot back; it may be
// called more than once, from the goroutine that entered.
type Pass struct {
	g    *Gate
	held bool
}

// Leave returns the slot (once).
func (p *Pass) Leave() {
	if p.held {
		p.held = false
		<-p.g.slots
	}
}

// Enter waits for a slot in arrival order (a channel's blocked senders are
// served first in, first out). Past maxWait, or when ctx ends, the caller
// goes in without one: a few slow requests holding every slot must delay
// the others by at most maxWait, never stall them.
func (g *Gate) Enter(ctx context.Context) Pass {
	if g == nil {
		return Pass{}
	}
	select {
	case g.slots <- struct{}{}:
		return Pass{g: g, held: true}
	default:
	}
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	t := time.NewTimer(g.maxWait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return Pass{g: g, held: true}
	case <-t.C:
	case <-ctx.Done():
	}
	g.over.Add(1)
	return Pass{}
}

// Waiting is how many callers wait for a slot now.
func (g *Gate) Waiting() int64 {
	if g == nil {
		return 0
	}
	return g.waiting.Load()
}

// Overflowed is how many callers went in without a slot so far.
func (g *Gate) Overflowed() int64 {
	if g == nil {
		return 0
	}
	return g.over.Load()
}

// Stats is a gate's state, for metrics.
type Stats struct {
	Slots      int   // 0: no limit
	Waiting    int64 // callers waiting for a slot now
	Overflowed int64 // callers that went in without a slot so far
}

// Stats reports the gate's state.
func (g *Gate) Stats() Stats {
	if g == nil {
		return Stats{}
	}
	return Stats{Slots: cap(g.slots), Waiting: g.Waiting(), Overflowed: g.Overflowed()}
}

// WritePrometheus writes st in the Prometheus text format, its metric
// names starting with prefix (e.g. ward_fhir_reads).
func (st Stats) WritePrometheus(w io.Writer, prefix string) error {
	_, err := fmt.Fprintf(w, `# HELP %[1]s_slots Requests let in at once (0: no limit).
# TYPE %[1]s_slots gauge
%[1]s_slots %[2]d
# HELP %[1]s_waiting Requests waiting for their turn now.
# TYPE %[1]s_waiting gauge
%[1]s_waiting %[3]d
# HELP %[1]s_overflow_total Requests that waited the longest wait and went in without a turn.
# TYPE %[1]s_overflow_total counter
%[1]s_overflow_total %[4]d
`, prefix, st.Slots, st.Waiting, st.Overflowed)
	return err
}
