package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// lifecycle runs serve's long-lived parts under one errgroup and stops
// them in order: on SIGTERM or SIGINT (or when a part fails) the HTTP
// servers stop accepting and finish the requests in flight, background
// workers take no new work and finish or release what they hold, then
// what was opened is closed, newest first. Each step is logged.
//
// Two contexts carry the stop. stop ends first: take no new work. work
// ends when the grace period is spent (less a reserve for releasing and
// closing): cut what is still in flight. Requests' contexts derive from
// work, so the cut reaches their handlers too.
type lifecycle struct {
	log   *slog.Logger
	grace time.Duration
	g     *errgroup.Group
	stop  context.Context
	work  context.Context
	cut   context.CancelFunc

	servers []*httpServer
	closers []closer

	// drain is how long the servers keep accepting after the stop while
	// /readyz answers 503, so that load balancers take the replica out
	// before its listener closes. draining is set at the stop.
	drain    time.Duration
	draining atomic.Bool
}

// errCut is the cause of work cut at the end of the grace period.
var errCut = errors.New("shutdown: the grace period is over")

type httpServer struct {
	name     string
	srv      *http.Server
	inflight sync.WaitGroup // handlers running: Close does not wait for them
	running  atomic.Int64
}

type closer struct {
	name  string
	close func() error
}

func newLifecycle(ctx context.Context, log *slog.Logger, grace time.Duration) *lifecycle {
	g, stop := errgroup.WithContext(ctx)
	// The cut has a cause of its own: a request cut by the shutdown is
	// the server's doing, unlike one whose client went away (fault.ClientGone).
	work, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	cut := func() { cancel(errCut) }
	return &lifecycle{log: log, grace: grace, g: g, stop: stop, work: work, cut: cut}
}

// Draining reports whether a shutdown has begun (/readyz then says 503).
func (l *lifecycle) Draining() bool { return l.draining.Load() }

// onClose registers what the last step closes; the newest closes first.
func (l *lifecycle) onClose(name string, close func() error) {
	l.closers = append(l.closers, closer{name, close})
}

// worker runs fn until the stop. fn ends its loop when stop ends, and
// may keep what it holds in flight until work ends; it must return then.
func (l *lifecycle) worker(fn func(stop, work context.Context)) {
	l.g.Go(func() error { fn(l.stop, l.work); return nil })
}

// serve serves srv on ln until the stop; the servers are shut down in the
// order they were added.
func (l *lifecycle) serve(name string, srv *http.Server, ln net.Listener) {
	s := &httpServer{name: name, srv: srv}
	h := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inflight.Add(1)
		s.running.Add(1)
		defer func() { s.running.Add(-1); s.inflight.Done() }()
		h.ServeHTTP(w, r)
	})
	srv.BaseContext = func(net.Listener) context.Context { return l.work }
	l.servers = append(l.servers, s)
	l.g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// reserve is the part of the grace period kept for after the cut: cut
// work releasing itself, the zambda workers and the store closing.
func reserve(grace time.Duration) time.Duration { return min(grace/4, 2*time.Second) }

// run waits for the stop, then stops everything in order within the grace
// period. It returns the error that stopped a part, if one did.
func (l *lifecycle) run() error {
	<-l.stop.Done()
	// Not ready from now on, while still accepting: probes see it first.
	l.draining.Store(true)
	start := time.Now()
	deadline := start.Add(l.grace)
	cutAt := deadline.Add(-reserve(l.grace))
	l.log.Info("shutdown: stopping", "cause", context.Cause(l.stop).Error(), "grace", l.grace.String())
	timer := time.AfterFunc(time.Until(cutAt), l.cut)
	defer timer.Stop()
	defer l.cut()

	if d := min(l.drain, l.grace/2); d > 0 {
		l.log.Info("shutdown: draining: /readyz answers 503, requests still served", "for", d.String())
		t := time.NewTimer(d)
		<-t.C
	}
	for _, s := range l.servers {
		l.shutdownHTTP(s, cutAt, deadline)
	}
	step := time.Now()
	err := l.g.Wait()
	l.log.Info("shutdown: background work stopped", "took", time.Since(step).String())
	l.closeAll()
	l.log.Info("shutdown: done", "took", time.Since(start).String())
	return err
}

// shutdownHTTP stops accepting and waits for the requests in flight until
// cutAt; those still running then are cut (their contexts end, their
// connections close) and given until deadline to return.
func (l *lifecycle) shutdownHTTP(s *httpServer, cutAt, deadline time.Time) {
	step := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), cutAt)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err == nil {
		l.log.Info("shutdown: "+s.name+" stopped, requests in flight finished", "took", time.Since(step).String())
		return
	}
	l.log.Warn("shutdown: "+s.name+": requests still running at the end of the grace period are cut", "running", s.running.Load())
	l.cut()
	_ = s.srv.Close()
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
		l.log.Info("shutdown: "+s.name+" stopped", "took", time.Since(step).String())
	case <-time.After(time.Until(deadline)):
		l.log.Error("shutdown: "+s.name+": handlers did not return after the cut", "running", s.running.Load())
	}
}

// closeAll closes what was opened, newest first.
func (l *lifecycle) closeAll() {
	for i := len(l.closers) - 1; i >= 0; i-- {
		c := l.closers[i]
		step := time.Now()
		if err := c.close(); err != nil {
			l.log.Warn("shutdown: close "+c.name, "err", err)
			continue
		}
		l.log.Info("shutdown: closed "+c.name, "took", time.Since(step).String())
	}
	l.closers = nil
}
