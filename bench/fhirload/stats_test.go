package main

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {90, 90 * time.Millisecond}, {99, 99 * time.Millisecond},
		{99.9, 100 * time.Millisecond}, {100, 100 * time.Millisecond}, {0.1, time.Millisecond}} {
		if got := percentile(s, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %v, want 0", got)
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("p99 of one sample = %v, want it", got)
	}
}

func TestSummarizeShuffled(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var s []time.Duration
	for i := 1; i <= 1000; i++ {
		s = append(s, time.Duration(i)*time.Microsecond)
	}
	r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	got := summarize(s)
	want := summary{N: 1000, Mean: 500500 * time.Nanosecond, P50: 500 * time.Microsecond, P90: 900 * time.Microsecond,
		P99: 990 * time.Microsecond, Max: 1000 * time.Microsecond}
	if got != want {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
}

func TestHistogramCountsEverySample(t *testing.T) {
	s := []time.Duration{5 * time.Microsecond, 100 * time.Microsecond, 101 * time.Microsecond, 3 * time.Millisecond, time.Minute}
	h := newHistogram(s)
	total := 0
	for i, c := range h.Counts {
		total += c
		if i > 0 && h.UpperMicros[i] <= h.UpperMicros[i-1] {
			t.Fatalf("bounds not increasing at %d: %v", i, h.UpperMicros)
		}
	}
	if total != len(s) {
		t.Fatalf("histogram holds %d samples, want %d", total, len(s))
	}
	if h.Counts[0] != 1 || h.Counts[len(h.Counts)-1] != 1 {
		t.Errorf("the smallest and the largest sample should sit alone in the end buckets: %+v", h)
	}
}
