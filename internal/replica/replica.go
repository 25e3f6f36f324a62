// Package replica keeps a server's in-memory state (revoked tokens,
// compiled policies and project settings, signing keys) in step with the
// changes other processes commit to the shared database, so that a change
// acknowledged by one replica holds on every replica's next request.
//
// Every such change bumps one counter in its own transaction and logs what
// changed (store.RecordChange). A replica listens for the announcements
// (PostgreSQL LISTEN/NOTIFY) and applies the log as they come; and since
// an announcement may reach it after the client that made the change has
// already sent its next request here, each request first confirms the
// counter (Fresh): one cheap read, shared by the requests that arrive
// while it runs. While the replica's lease holds (store.Listen), writers
// wait for it instead and Fresh reads nothing; the same lease keeps the
// store's resource cache current (internal/store/rcache.go says why,
// docs/replicas.md for operators).
package replica

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardhealth/ward/internal/store"
)

// Apply is what the server does with changes made elsewhere. Each must be
// idempotent: a change may be applied twice.
type Apply struct {
	Revoked func(jti string, expiresAt time.Time)
	Project func(projectID string)
	Keys    func(ctx context.Context) error
	// All reloads everything: this replica may have missed changes (its
	// listener lost its connection, or the log was trimmed past it).
	All func(ctx context.Context) error
}

// Config tunes a Watcher; the zero value is the default.
type Config struct {
	// Poll is how often a database that announces nothing (SQLite) is
	// checked for changes other processes (`ward admin`) made; default 1 s.
	// The one `ward serve` of a SQLite database needs nothing else.
	Poll time.Duration
	// CheckTimeout bounds one version read of Fresh; default 5 s.
	CheckTimeout time.Duration
}

// batch is how many log rows one read applies.
const batch = 1000

// Watcher applies changes. Construct with New, run Run, call Fresh before
// serving a request that depends on the state it keeps.
type Watcher struct {
	store *store.Store
	apply Apply
	log   *slog.Logger
	cfg   Config
	check bool // confirm the version per request (PostgreSQL)

	applied atomic.Int64 // the version whose changes are in memory
	mu      sync.Mutex   // one catch-up at a time

	roundMu sync.Mutex
	running bool   // a version read is in flight
	next    *round // the read after it, for requests that came meanwhile

	reads atomic.Int64 // version reads made by Fresh

	// id names this replica's lease (store.ListenConfig); while the lease
	// holds (leaseUntil, ns after base on the monotonic clock) writers wait
	// for this replica to apply their changes, and Fresh reads nothing.
	id         string
	base       time.Time
	leaseUntil atomic.Int64
}

// round is one version read shared by the requests waiting on it.
type round struct {
	done chan struct{}
	err  error
}

// New returns a Watcher whose caches hold every change up to version:
// read the version (store.ChangeVersion) before loading them.
func New(st *store.Store, version int64, apply Apply, cfg Config, log *slog.Logger) *Watcher {
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = 5 * time.Second
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	w := &Watcher{store: st, apply: apply, log: log, cfg: cfg, check: st.Dialect() == store.Postgres,
		id: hex.EncodeToString(id[:]), base: time.Now()}
	w.applied.Store(version)
	return w
}

// Applied is the version whose changes this replica holds.
func (w *Watcher) Applied() int64 { return w.applied.Load() }

// Reads is how many version reads Fresh has made (requests share them).
func (w *Watcher) Reads() int64 { return w.reads.Load() }

// Fresh returns once every change committed before it was called is
// applied here. Requests arriving while a version read is in flight share
// the next one (which starts after them): at most one read runs at a time,
// and none runs for a replica of a database that only this process writes.
// An error means freshness could not be confirmed: fail the request.
func (w *Watcher) Fresh(ctx context.Context) error {
	if !w.check || w.leased() {
		return nil
	}
	w.roundMu.Lock()
	if w.running {
		if w.next == nil {
			w.next = &round{done: make(chan struct{})}
		}
		r := w.next
		w.roundMu.Unlock()
		select {
		case <-r.done:
			return r.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.running = true
	w.roundMu.Unlock()
	r := &round{done: make(chan struct{})}
	w.run(ctx, r)
	return r.err
}

// leased reports whether this replica's lease holds: every change
// committed before now was applied before its writer answered.
func (w *Watcher) leased() bool { return int64(time.Since(w.base)) < w.leaseUntil.Load() }

// setLease records until when the lease holds (zero: it does not).
func (w *Watcher) setLease(until time.Time) {
	if until.IsZero() {
		w.leaseUntil.Store(0)
		return
	}
	w.leaseUntil.Store(int64(until.Sub(w.base)))
}

// Leased reports whether Fresh currently skips its read (a replica lease
// holds).
func (w *Watcher) Leased() bool { return w.leased() }

// run makes round r's read, then starts the next round if requests wait.
func (w *Watcher) run(ctx context.Context, r *round) {
	// The read serves other requests too: not bound to this one's cancel.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.CheckTimeout)
	w.reads.Add(1)
	r.err = w.CatchUp(rctx)
	cancel()
	close(r.done)
	w.roundMu.Lock()
	next := w.next
	w.next = nil
	w.running = next != nil
	w.roundMu.Unlock()
	if next != nil {
		go w.run(ctx, next)
	}
}

// CatchUp reads the current version and applies the changes up to it.
func (w *Watcher) CatchUp(ctx context.Context) error {
	v, err := w.store.ChangeVersion(ctx)
	if err != nil {
		return fmt.Errorf("check for changes: %w", err)
	}
	return w.advance(ctx, v)
}

// advance applies the logged changes up to version v.
func (w *Watcher) advance(ctx context.Context, v int64) error {
	if w.applied.Load() >= v {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		from := w.applied.Load()
		if from >= v {
			return nil
		}
		changes, err := w.store.ChangesSince(ctx, from, batch)
		if err != nil {
			return fmt.Errorf("read changes: %w", err)
		}
		if len(changes) == 0 || changes[0].Version != from+1 {
			w.log.Warn("the change log no longer reaches back to this replica's state: reloading everything", "applied", from, "version", v)
			return w.reloadAll(ctx)
		}
		keys := false
		for _, c := range changes {
			switch c.Kind {
			case store.ChangeRevocation:
				w.apply.Revoked(c.Subject, c.ExpiresAt)
			case store.ChangeProject:
				w.apply.Project(c.ProjectID)
			case store.ChangeKeys:
				keys = true
			default: // a newer release's change: this one cannot tell what it touched
				return w.reloadAll(ctx)
			}
		}
		if keys {
			if err := w.apply.Keys(ctx); err != nil {
				return fmt.Errorf("reload signing keys: %w", err)
			}
		}
		w.applied.Store(changes[len(changes)-1].Version)
	}
}

// reloadAll reloads everything and marks the version read before as
// applied; w.mu is held.
func (w *Watcher) reloadAll(ctx context.Context) error {
	v, err := w.store.ChangeVersion(ctx)
	if err != nil {
		return fmt.Errorf("check for changes: %w", err)
	}
	if err := w.apply.All(ctx); err != nil {
		return fmt.Errorf("reload after missed changes: %w", err)
	}
	if v > w.applied.Load() {
		w.applied.Store(v)
	}
	return nil
}

// ReloadAll reloads everything, as after a lost connection.
func (w *Watcher) ReloadAll(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reloadAll(ctx)
}

// Run applies changes as the database announces them until ctx ends. A
// lost connection is retried with backoff; on reconnecting, everything is
// reloaded (announcements made meanwhile are lost). Meanwhile Fresh keeps
// requests correct. On SQLite it checks every Config.Poll instead.
func (w *Watcher) Run(ctx context.Context) {
	if !w.check {
		w.poll(ctx)
		return
	}
	backoff := 100 * time.Millisecond
	connected := false
	for {
		err := w.store.Listen(ctx, store.ListenConfig{
			Listening: func() {
				catch := w.CatchUp
				if connected {
					catch = w.ReloadAll
				}
				if err := catch(ctx); err != nil && ctx.Err() == nil {
					w.log.Warn("catch up with changes", "err", err)
				}
				connected = true
				backoff = 100 * time.Millisecond
			},
			Heard: func(v int64) {
				if err := w.advance(ctx, v); err != nil && ctx.Err() == nil {
					// Not applied: requests read the version again until
					// a renewal has caught up (writers wait meanwhile).
					w.setLease(time.Time{})
					w.log.Warn("apply changes", "err", err, "version", v)
				}
			},
			ReplicaID: w.id,
			Applied:   w.Applied,
			CatchUp:   w.advance,
			Leased:    w.setLease,
		})
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, store.ErrNoListen) {
			w.poll(ctx)
			return
		}
		w.log.Warn("change listener lost: requests still check the change version; reconnecting", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (w *Watcher) poll(ctx context.Context) {
	t := time.NewTicker(w.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.CatchUp(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("catch up with changes", "err", err)
		}
	}
}
