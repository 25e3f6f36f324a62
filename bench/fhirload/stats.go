package main

import (
	"math"
	"slices"
	"time"
)

// summary is the latency distribution of one scenario run: every measured
// request's latency is kept, so the percentiles are exact, not estimated.
type summary struct {
	N    int
	Mean time.Duration
	P50  time.Duration
	P90  time.Duration
	P99  time.Duration
	Max  time.Duration
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted: the smallest sample that at least p% of the samples are <= to.
// Nearest rank never interpolates, so the answer is always an observed
// latency, and p99 of 100 samples is the 99th smallest, not the largest.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = max(1, min(n, rank))
	return sorted[rank-1]
}

// summarize sorts samples in place and returns their distribution.
func summarize(samples []time.Duration) summary {
	if len(samples) == 0 {
		return summary{}
	}
	slices.Sort(samples)
	var total time.Duration
	for _, d := range samples {
		total += d
	}
	return summary{
		N:    len(samples),
		Mean: total / time.Duration(len(samples)),
		P50:  percentile(samples, 50),
		P90:  percentile(samples, 90),
		P99:  percentile(samples, 99),
		Max:  samples[len(samples)-1],
	}
}

// histogram counts samples in log-spaced buckets (4 per doubling, from
// 16 µs): coarse enough to print in the JSON report, fine enough to see
// a second mode (e.g. commits that wait for an fsync).
type histogram struct {
	// UpperMicros[i] is bucket i's inclusive upper bound in microseconds;
	// the last bucket has no bound (math.MaxInt64).
	UpperMicros []int64 `json:"upperMicros"`
	Counts      []int   `json:"counts"`
}

// newHistogram buckets sorted (or unsorted) samples.
func newHistogram(samples []time.Duration) histogram {
	var bounds []int64
	for b := 16.0; b < 10e6; b *= math.Pow(2, 0.25) {
		bounds = append(bounds, int64(math.Round(b)))
	}
	bounds = append(bounds, math.MaxInt64)
	h := histogram{UpperMicros: bounds, Counts: make([]int, len(bounds))}
	for _, d := range samples {
		us := d.Microseconds()
		i, _ := slices.BinarySearch(bounds, us)
		h.Counts[i]++
	}
	// Trim empty buckets at both ends so the JSON stays short.
	lo, hi := 0, len(h.Counts)
	for lo < hi && h.Counts[lo] == 0 {
		lo++
	}
	for hi > lo && h.Counts[hi-1] == 0 {
		hi--
	}
	h.UpperMicros, h.Counts = h.UpperMicros[lo:hi], h.Counts[lo:hi]
	return h
}
