package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// call is one request of a scenario, relative to the FHIR base.
type call struct {
	method, path string
	body         []byte
}

// scenario makes the next request for one client from its own random
// source; ids are the target's ids of the loaded patients, by index.
type scenario struct {
	name string
	next func(r *rand.Rand, ids []string) call
}

// scenarios are the four interactions, in the order they run:
// create last, so the searches of every target see the same data.
func scenarios() []scenario {
	return []scenario{
		{"read", func(r *rand.Rand, ids []string) call {
			return call{method: http.MethodGet, path: "/Patient/" + ids[r.IntN(len(ids))]}
		}},
		{"search-obs", func(r *rand.Rand, ids []string) call {
			return call{method: http.MethodGet, path: obsQuery(ids[r.IntN(len(ids))], loincCodes[r.IntN(len(loincCodes))].code)}
		}},
		{"search-name", func(r *rand.Rand, ids []string) call {
			// The full family name, as a receptionist types it: ~10
			// patients each (100 families, 1,000 patients), one page.
			return call{method: http.MethodGet, path: "/Patient?name=" + families[r.IntN(len(families))]}
		}},
		{"create", func(r *rand.Rand, ids []string) call {
			body, _ := json.Marshal(observation(r, "Patient/"+ids[r.IntN(len(ids))], ""))
			return call{method: http.MethodPost, path: "/Observation", body: body}
		}},
	}
}

func obsQuery(id, code string) string {
	return "/Observation?subject=Patient/" + id + "&code=http://loinc.org%7C" + code
}

// run is the outcome of one scenario on one target.
type run struct {
	Target   string  `json:"target"`
	Scenario string  `json:"scenario"`
	Round    int     `json:"round"`
	Clients  int     `json:"clients"`
	Seconds  float64 `json:"seconds"`
	// Requests and Errors are counted in the measured window only;
	// Acked and Failed count every answer of the whole run, warm-up
	// included (the durability check needs them).
	Requests    int       `json:"requests"`
	Errors      int       `json:"errors"`
	Acked       int       `json:"acked"`
	Failed      int       `json:"failed"`
	PerSecond   float64   `json:"perSecond"`
	MeanMS      float64   `json:"meanMs"`
	P50MS       float64   `json:"p50Ms"`
	P90MS       float64   `json:"p90Ms"`
	P99MS       float64   `json:"p99Ms"`
	MaxMS       float64   `json:"maxMs"`
	RespBytes   float64   `json:"responseBytesMean"`
	Dials       int64     `json:"connectionsOpened"`
	FirstErrors []string  `json:"firstErrors,omitempty"`
	Timeline    []int     `json:"completionsPerSecond"`
	Histogram   histogram `json:"latencyHistogram"`
	CPU         cpuShare  `json:"cpu"`
	Durable     *durable  `json:"durability,omitempty"`
	Profile     string    `json:"profile,omitempty"`
	// CacheHits and CacheMisses are the resource cache's counts over the
	// scenario (warm-up included), summed over replicas (PostgreSQL).
	CacheHits   int64 `json:"cacheHits,omitempty"`
	CacheMisses int64 `json:"cacheMisses,omitempty"`
}

// durable is the result of the kill -9 check after the create scenario.
type durable struct {
	Loaded   int  `json:"loadedObservations"`
	Acked    int  `json:"ackedCreates"`
	Errors   int  `json:"failedCreates"`
	Found    int  `json:"foundAfterRestart"`
	Verified bool `json:"verified"`
}

// client is one load-generating client: its own keep-alive connection and
// random source, and its own samples (merged after the run, so the hot
// loop shares nothing but an atomic counter of dials).
type client struct {
	do      func(ctx context.Context, cl call) (int64, string)
	done    func()
	rng     *rand.Rand
	samples []time.Duration
	errors  int
	acked   int
	failed  int
	bytes   int64
	perSec  []int
}

const maxFirstErrors = 5

// measure runs sc against t from clients goroutines for warmup+duration
// and reports the measured window. Each client sends its next request as
// soon as the previous answer is read (closed loop), every request with
// the target's bearer token (also to peers that ignore it, so every
// target receives the same bytes).
func measure(ctx context.Context, t *target, ids []string, sc scenario, kind string, clients int, warmup, duration time.Duration, seed uint64) run {
	var dials atomic.Int64
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	auth := "Bearer " + t.token
	cs := make([]*client, clients)
	for i := range cs {
		c := &client{rng: rand.New(rand.NewPCG(seed, uint64(i))), perSec: make([]int, int(duration/time.Second)+1)}
		base := t.base
		if len(t.bases) > 0 {
			base = t.bases[i%len(t.bases)] // replicas share the clients round robin
		}
		if kind == "raw" {
			rc, err := newRawConn(base, auth, 30*time.Second, func(ctx context.Context, addr string) (net.Conn, error) {
				dials.Add(1)
				return dialer.DialContext(ctx, "tcp", addr)
			})
			if err != nil {
				return run{Target: t.name, Scenario: sc.name, FirstErrors: []string{err.Error()}}
			}
			c.do, c.done = rc.do, rc.close
		} else {
			tr := &http.Transport{
				DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					dials.Add(1)
					return dialer.DialContext(ctx, network, addr)
				},
				MaxIdleConnsPerHost: 1,
				DisableCompression:  true,
				IdleConnTimeout:     time.Minute,
			}
			hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			c.do = func(ctx context.Context, cl call) (int64, string) { return send(ctx, hc, base, auth, cl) }
			c.done = hc.CloseIdleConnections
		}
		cs[i] = c
	}
	var (
		errMu     sync.Mutex
		firstErrs []string
	)
	noteErr := func(msg string) {
		errMu.Lock()
		defer errMu.Unlock()
		if len(firstErrs) < maxFirstErrors {
			firstErrs = append(firstErrs, msg)
		}
	}
	start := time.Now()
	from, to := start.Add(warmup), start.Add(warmup+duration)
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.done()
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(to) {
					return
				}
				req := sc.next(c.rng, ids)
				n, errMsg := c.do(ctx, req)
				end := time.Now()
				ok := errMsg == ""
				if ok {
					c.acked++
				} else {
					c.failed++
				}
				if end.Before(from) || end.After(to) {
					continue // warm-up, or finished after the window closed
				}
				if !ok {
					c.errors++
					noteErr(fmt.Sprintf("%s %s: %s", req.method, req.path, errMsg))
					continue
				}
				c.samples = append(c.samples, end.Sub(t0))
				c.bytes += n
				if s := int(end.Sub(from) / time.Second); s < len(c.perSec) {
					c.perSec[s]++
				}
			}
		}()
	}
	// CPU accounting over the measured window only.
	var cpu cpuMeter
	timer := time.NewTimer(time.Until(from))
	select {
	case <-timer.C:
		cpu.start(append([]*proc{t.proc}, t.replicas...), t.pgDB)
	case <-ctx.Done():
	}
	wg.Wait()
	elapsed := duration
	res := run{Target: t.name, Scenario: sc.name, Clients: clients, Seconds: elapsed.Seconds(), Dials: dials.Load()}
	res.CPU = cpu.stop(time.Now().Sub(from))
	var all []time.Duration
	var bytesTotal int64
	res.Timeline = make([]int, int(duration/time.Second))
	for _, c := range cs {
		all = append(all, c.samples...)
		res.Errors += c.errors
		res.Acked += c.acked
		res.Failed += c.failed
		bytesTotal += c.bytes
		for s := range res.Timeline {
			res.Timeline[s] += c.perSec[s]
		}
	}
	res.FirstErrors = firstErrs
	res.Requests = len(all)
	res.PerSecond = float64(len(all)) / elapsed.Seconds()
	res.Histogram = newHistogram(all)
	s := summarize(all)
	res.MeanMS, res.P50MS, res.P90MS, res.P99MS, res.MaxMS = msf(s.Mean), msf(s.P50), msf(s.P90), msf(s.P99), msf(s.Max)
	if len(all) > 0 {
		res.RespBytes = float64(bytesTotal) / float64(len(all))
	}
	return res
}

func msf(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// send makes one request and reads the whole answer (so the connection is
// reused), returning the body size. The message is "" for a 2xx, else the
// status and the start of the body, or the transport error.
func send(ctx context.Context, c *http.Client, base, auth string, cl call) (int64, string) {
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, base+cl.path, body)
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "application/fhir+json")
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 300))
		_, _ = io.Copy(io.Discard, res.Body)
		return 0, "status " + strconv.Itoa(res.StatusCode) + ": " + string(b)
	}
	n, err := io.Copy(io.Discard, res.Body)
	if err != nil {
		return n, "reading body: " + err.Error()
	}
	return n, ""
}
