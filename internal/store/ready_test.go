package store_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// outage is a TCP proxy to the test PostgreSQL that can be cut (listener
// and every connection closed) and restored on the same address: a
// database outage for one store without stopping the shared server.
type outage struct {
	t      *testing.T
	addr   string // the proxy's host:port
	target string // PostgreSQL's host:port
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newOutage(t *testing.T, target string) *outage {
	o := &outage{t: t, target: target, addr: "127.0.0.1:0"}
	o.up()
	t.Cleanup(o.down)
	return o
}

func (o *outage) up() {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		o.t.Fatal(err)
	}
	o.mu.Lock()
	o.ln, o.addr = ln, ln.Addr().String()
	o.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", o.target)
			if err != nil {
				c.Close()
				continue
			}
			o.mu.Lock()
			o.conns = append(o.conns, c, s)
			o.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
}

func (o *outage) down() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ln != nil {
		o.ln.Close()
		o.ln = nil
	}
	for _, c := range o.conns {
		c.Close()
	}
	o.conns = nil
}

// TestReadyThroughOutage: Ready is nil on a working database, an
// ErrUnavailable during an outage (as are reads and writes), and nil
// again once the database is back, on the same store.
func TestReadyThroughOutage(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.PostgresDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	o := newOutage(t, u.Host)
	u.Host = o.addr
	s, err := store.Open(ctx, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("ready before the outage: %v", err)
	}

	o.down()
	for _, tc := range []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"ready", s.Ready},
		{"read", func(ctx context.Context) error { _, err := s.GetProject(ctx, "p"); return err }},
		{"write", func(ctx context.Context) error {
			return s.WithTx(ctx, func(tx *store.Tx) error { return tx.CreateProject(ctx, store.Project{ID: "p", Name: "p"}) })
		}},
	} {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := tc.run(ctx)
		cancel()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s during the outage: %v, want ErrUnavailable", tc.name, err)
		}
	}

	o.up()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Ready(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready 10s after the database came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}

// TestReadyClosed: a closed store is unavailable on every backend.
func TestReadyClosed(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := storetest.Open(t, b)
			if err := s.Ready(context.Background()); err != nil {
				t.Fatalf("ready: %v", err)
			}
			s.Close()
			if err := s.Ready(context.Background()); !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("ready after close: %v, want ErrUnavailable", err)
			}
		})
	}
}

// TestDeadlockIsConflict: two transactions locking two resources in
// opposite orders (two bundles) deadlock on PostgreSQL; the one it aborts
// fails with ErrConflict, a lost race its caller may run again, not an
// internal error.
func TestDeadlockIsConflict(t *testing.T) {
	ctx := t.Context()
	s := storetest.Open(t, storetest.Backend{Name: "postgres", DSN: storetest.PostgresDSN})
	putPatient(t, s, "a", 1, "A")
	putPatient(t, s, "b", 1, "B")
	var bothLocked sync.WaitGroup // each transaction holds its first row
	bothLocked.Add(2)
	lock := func(first, second string) error {
		return s.WithTx(ctx, func(tx *store.Tx) error {
			_, err := tx.GetResourceForUpdate(ctx, "p1", "Patient", first)
			bothLocked.Done()
			if err != nil {
				return err
			}
			bothLocked.Wait()
			_, err = tx.GetResourceForUpdate(ctx, "p1", "Patient", second)
			return err
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- lock("a", "b") }()
	go func() { errs <- lock("b", "a") }()
	var failed []error
	for range 2 {
		if err := <-errs; err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) != 1 || !errors.Is(failed[0], store.ErrConflict) {
		t.Errorf("errors %v, want one ErrConflict", failed)
	}
}
