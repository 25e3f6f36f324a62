// Package activity counts what each project did over the last hour, per
// minute, in memory: API requests (status class and latency) and zambda
// invocations. It feeds the console's dashboard. Each replica counts its
// own work; nothing is stored, so a restart starts from zero.
package activity

import (
	"math"
	"sync"
	"time"
)

// Minutes is how many one-minute buckets a project keeps: the last hour.
const Minutes = 60

// Latency histogram: bucket i holds durations up to bound(i), bounds
// growing by a factor of 1.25 from 100 µs, so a quantile is read to within
// 25% from 100 µs to over a minute in 60 counters.
const (
	latencyBuckets = 60
	latencyBase    = 100 * time.Microsecond
	latencyGrowth  = 1.25
)

var logGrowth = math.Log(latencyGrowth)

// bound is the upper bound of latency bucket i.
func bound(i int) time.Duration {
	return time.Duration(float64(latencyBase) * math.Pow(latencyGrowth, float64(i)))
}

func latencyBucket(d time.Duration) int {
	if d <= latencyBase {
		return 0
	}
	i := int(math.Ceil(math.Log(float64(d)/float64(latencyBase)) / logGrowth))
	return min(i, latencyBuckets-1)
}

type bucket struct {
	minute                          int64 // unix minute it counts; another value: stale
	requests, clientErr, serverErr  int64
	invocations, invocationFailures int64
	latency                         [latencyBuckets]uint32
}

type ring struct {
	mu      sync.Mutex
	buckets [Minutes]bucket
	last    int64 // the latest minute written
}

// at returns the bucket of unix minute m, reset if it held an older one.
// Caller holds r.mu.
func (r *ring) at(m int64) *bucket {
	b := &r.buckets[m%Minutes]
	if b.minute != m {
		*b = bucket{minute: m}
	}
	if m > r.last {
		r.last = m
	}
	return b
}

// Recorder counts per project. Safe for concurrent use; construct with New.
type Recorder struct {
	now         func() time.Time
	maxProjects int
	mu          sync.RWMutex
	projects    map[string]*ring
}

// DefaultMaxProjects bounds memory (about 17 KB a project, 70 MB in all):
// past it, a project idle for an hour makes room, else the new one is not
// counted. Only authenticated callers count, so only real projects.
const DefaultMaxProjects = 4096

// New builds a recorder; now nil: time.Now; maxProjects <= 0:
// DefaultMaxProjects.
func New(now func() time.Time, maxProjects int) *Recorder {
	if now == nil {
		now = time.Now
	}
	if maxProjects <= 0 {
		maxProjects = DefaultMaxProjects
	}
	return &Recorder{now: now, maxProjects: maxProjects, projects: map[string]*ring{}}
}

func (r *Recorder) ring(project string) *ring {
	r.mu.RLock()
	rg := r.projects[project]
	r.mu.RUnlock()
	if rg != nil {
		return rg
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if rg = r.projects[project]; rg != nil {
		return rg
	}
	if len(r.projects) >= r.maxProjects {
		idle := r.now().Unix()/60 - Minutes
		for p, old := range r.projects {
			old.mu.Lock()
			stale := old.last <= idle
			old.mu.Unlock()
			if stale {
				delete(r.projects, p)
			}
		}
		if len(r.projects) >= r.maxProjects {
			return nil
		}
	}
	rg = &ring{}
	r.projects[project] = rg
	return rg
}

// Request counts one API request of project that answered status after d.
func (r *Recorder) Request(project string, status int, d time.Duration) {
	if project == "" {
		return
	}
	rg := r.ring(project)
	if rg == nil {
		return
	}
	m := r.now().Unix() / 60
	rg.mu.Lock()
	b := rg.at(m)
	b.requests++
	switch {
	case status >= 500:
		b.serverErr++
	case status >= 400:
		b.clientErr++
	}
	b.latency[latencyBucket(d)]++
	rg.mu.Unlock()
}

// Invocation counts one zambda run of project; failed: it crashed, timed
// out or answered a 5xx status.
func (r *Recorder) Invocation(project string, failed bool) {
	if project == "" {
		return
	}
	rg := r.ring(project)
	if rg == nil {
		return
	}
	m := r.now().Unix() / 60
	rg.mu.Lock()
	b := rg.at(m)
	b.invocations++
	if failed {
		b.invocationFailures++
	}
	rg.mu.Unlock()
}

// Minute is one minute's figures.
type Minute struct {
	Start              time.Time     `json:"start"`
	Requests           int64         `json:"requests"`
	ClientErrors       int64         `json:"clientErrors"` // 4xx answers
	ServerErrors       int64         `json:"serverErrors"` // 5xx answers
	P50                time.Duration `json:"-"`
	P99                time.Duration `json:"-"`
	Invocations        int64         `json:"invocations"`
	InvocationFailures int64         `json:"invocationFailures"`
}

// Summary is the hour's totals.
type Summary struct {
	Requests, ClientErrors, ServerErrors int64
	P50, P99                             time.Duration
	Invocations, InvocationFailures      int64
}

// Hour returns the project's last Minutes minutes, oldest first, the
// current (partial) minute last, every minute present (zero when idle),
// and the hour's totals with its latency quantiles.
func (r *Recorder) Hour(project string) ([]Minute, Summary) {
	now := r.now().Unix() / 60
	out := make([]Minute, Minutes)
	for i := range out {
		out[i].Start = time.Unix((now-Minutes+1+int64(i))*60, 0).UTC()
	}
	r.mu.RLock()
	rg := r.projects[project]
	r.mu.RUnlock()
	var sum Summary
	if rg == nil {
		return out, sum
	}
	var all [latencyBuckets]uint32
	rg.mu.Lock()
	defer rg.mu.Unlock()
	for i := range out {
		m := now - Minutes + 1 + int64(i)
		b := &rg.buckets[m%Minutes]
		if b.minute != m {
			continue
		}
		out[i].Requests, out[i].ClientErrors, out[i].ServerErrors = b.requests, b.clientErr, b.serverErr
		out[i].Invocations, out[i].InvocationFailures = b.invocations, b.invocationFailures
		out[i].P50, out[i].P99 = quantile(&b.latency, b.requests, 0.50), quantile(&b.latency, b.requests, 0.99)
		sum.Requests += b.requests
		sum.ClientErrors += b.clientErr
		sum.ServerErrors += b.serverErr
		sum.Invocations += b.invocations
		sum.InvocationFailures += b.invocationFailures
		for j, n := range b.latency {
			all[j] += n
		}
	}
	sum.P50, sum.P99 = quantile(&all, sum.Requests, 0.50), quantile(&all, sum.Requests, 0.99)
	return out, sum
}

// quantile is the upper bound of the bucket holding the q-th of n
// durations (0 when there are none).
func quantile(h *[latencyBuckets]uint32, n int64, q float64) time.Duration {
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	var seen int64
	for i, c := range h {
		seen += int64(c)
		if seen >= rank {
			return bound(i)
		}
	}
	return bound(latencyBuckets - 1)
}
