package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/server"
)

// TestLifecycleStop: on the stop, a request in flight is answered in full
// and a worker's job in flight finishes while the grace lasts; work past
// the grace is cut (the handler's and the worker's contexts end) and the
// stop still ends within the grace. Closing comes after both, newest
// first, and each step is logged.
func TestLifecycleStop(t *testing.T) {
	for _, tc := range []struct {
		name               string
		request, job       time.Duration // how long each takes
		grace              time.Duration
		requestCut, jobCut bool
	}{
		{"within the grace", 100 * time.Millisecond, 400 * time.Millisecond, 5 * time.Second, false, false},
		{"a job past the grace", 100 * time.Millisecond, time.Minute, 800 * time.Millisecond, false, true},
		{"a request past the grace", time.Minute, time.Minute, 800 * time.Millisecond, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			var mu sync.Mutex
			var events []string
			event := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
			ctx, signal := context.WithCancel(t.Context())
			life := newLifecycle(ctx, slog.New(slog.NewTextHandler(&logs, nil)), tc.grace)
			life.onClose("first", func() error { event("close first"); return nil })
			life.onClose("second", func() error { event("close second"); return nil })
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			started := make(chan struct{}, 2)
			work := func(ctx context.Context, who string, takes time.Duration) {
				started <- struct{}{}
				select {
				case <-time.After(takes):
					event(who + " finished")
				case <-ctx.Done():
					event(who + " cut")
				}
			}
			life.serve("http server", &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				work(r.Context(), "request", tc.request)
				_, _ = io.WriteString(w, strings.Repeat("x", 1<<16))
			})}, ln)
			life.worker(func(stop, inflight context.Context) {
				<-stop.Done()
				work(inflight, "job", tc.job) // held past the stop, as a delivery is
			})
			type answer struct {
				body []byte
				err  error
			}
			answered := make(chan answer, 1)
			go func() {
				res, err := http.Get("http://" + ln.Addr().String() + "/")
				if err != nil {
					answered <- answer{err: err}
					return
				}
				defer res.Body.Close()
				b, err := io.ReadAll(res.Body)
				answered <- answer{b, err}
			}()
			<-started // the request is in flight
			signal()
			begin := time.Now()
			if err := life.run(); err != nil {
				t.Fatalf("run: %v", err)
			}
			if took := time.Since(begin); took > tc.grace {
				t.Errorf("the stop took %v, more than the grace %v", took, tc.grace)
			}
			a := <-answered
			if !tc.requestCut && (a.err != nil || len(a.body) != 1<<16) {
				t.Errorf("the request in flight got %d bytes, %v; want the whole answer", len(a.body), a.err)
			}
			mu.Lock()
			defer mu.Unlock()
			outcome := map[bool]string{false: "finished", true: "cut"}
			if !slices.Contains(events, "request "+outcome[tc.requestCut]) || !slices.Contains(events, "job "+outcome[tc.jobCut]) {
				t.Errorf("events %v, want the request %s and the job %s", events, outcome[tc.requestCut], outcome[tc.jobCut])
			}
			if n := len(events); n < 2 || events[n-2] != "close second" || events[n-1] != "close first" {
				t.Errorf("events %v, want the closes last, newest first", events)
			}
			for _, step := range []string{"shutdown: stopping", "shutdown: http server stopped", "shutdown: background work stopped",
				"shutdown: closed second", "shutdown: closed first", "shutdown: done"} {
				if !strings.Contains(logs.String(), step) {
					t.Errorf("no log line %q in:\n%s", step, logs.String())
				}
			}
		})
	}
}

// TestReadyzDrains: from the stop on, the server's /readyz answers 503
// while it still accepts new connections and serves (/healthz stays 200)
// for --shutdown-drain; then it stops accepting.
func TestReadyzDrains(t *testing.T) {
	ctx, signal := context.WithCancel(t.Context())
	life := newLifecycle(ctx, slog.New(slog.DiscardHandler), 10*time.Second)
	life.drain = 2 * time.Second
	srv := server.New(server.Config{PublicURL: "http://ward.test", MaxBodyBytes: 1 << 10, RequestTimeout: 5 * time.Second},
		server.Deps{Log: slog.New(slog.DiscardHandler), Draining: life.Draining})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	life.serve("http server", &http.Server{Handler: srv.Handler()}, ln)
	stopped := make(chan error, 1)
	go func() { stopped <- life.run() }()
	// A fresh connection each time: a kept-alive one would not show that
	// the listener still accepts.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	status := func(path string) int {
		res, err := client.Get(base + path)
		if err != nil {
			return -1
		}
		res.Body.Close()
		return res.StatusCode
	}
	if st := status("/readyz"); st != 200 {
		t.Fatalf("/readyz before the stop: %d", st)
	}
	signal()
	deadline := time.Now().Add(time.Second)
	for status("/readyz") != 503 {
		if time.Now().After(deadline) {
			t.Fatal("/readyz did not turn 503 after the stop")
		}
	}
	if st := status("/healthz"); st != 200 {
		t.Fatalf("/healthz while draining: %d, want 200 (liveness)", st)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if st := status("/healthz"); st != -1 {
		t.Fatalf("after the stop the listener still answers: %d", st)
	}
}
