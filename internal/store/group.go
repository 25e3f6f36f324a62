package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// SQLite has one writer and each commit costs an fsync (~0.3 ms here), so
// concurrent transactions share commits: one goroutine drains the queue of
// waiting transactions into a single SQLite transaction, runs each inside
// its own savepoint (a failing one rolls back alone), commits once, then
// answers every caller. Nothing is acknowledged before its commit.

// maxGroup bounds how many transactions share one commit.
const maxGroup = 128

type txRequest struct {
	ctx  context.Context
	fn   func(tx *Tx) error
	done chan error
	// single marks one lone statement: SQLite undoes a failed statement
	// by itself, so it needs no savepoint (whose page copies cost).
	single bool
}

// groupCommitter owns the single SQLite write connection.
type groupCommitter struct {
	reqs chan *txRequest
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
	// ckpt is the checkpointer's connection; committed wakes it.
	ckpt      *sql.DB
	committed chan struct{}
}

// checkpointEvery bounds how often the WAL is copied into the database
// file: often enough to keep the WAL small, rarely enough that each copy
// writes many commits' pages at once.
const checkpointEvery = 200 * time.Millisecond

func (s *Store) startGroupCommit(ckpt *sql.DB) {
	g := &groupCommitter{reqs: make(chan *txRequest), stop: make(chan struct{}), ckpt: ckpt, committed: make(chan struct{}, 1)}
	s.group = g
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		g.checkpointer()
	}()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			select {
			case <-g.stop:
				return
			case first := <-g.reqs:
				batch := []*txRequest{first}
			drain:
				for len(batch) < maxGroup {
					select {
					case r := <-g.reqs:
						batch = append(batch, r)
					default:
						break drain
					}
				}
				s.runGroup(batch)
			}
		}
	}()
}

// stopGroupCommit ends the committer after the batch in flight.
func (s *Store) stopGroupCommit() {
	if s.group == nil {
		return
	}
	s.group.once.Do(func() { close(s.group.stop) })
	s.group.wg.Wait()
	_ = s.group.ckpt.Close()
}

// checkpointer copies committed WAL frames into the database file (a
// PASSIVE checkpoint: it never blocks the writer or readers), after
// commits, at most every checkpointEvery.
func (g *groupCommitter) checkpointer() {
	for {
		select {
		case <-g.stop:
			return
		case <-g.committed:
		}
		if _, err := g.ckpt.Exec(`PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
			slog.Warn("sqlite checkpoint failed", "err", err)
		}
		select {
		case <-g.stop:
			return
		case <-time.After(checkpointEvery):
		}
	}
}

// submit queues fn and waits for its commit (or its own error).
func (s *Store) submit(ctx context.Context, fn func(tx *Tx) error) error {
	return s.enqueue(&txRequest{ctx: ctx, fn: fn, done: make(chan error, 1)})
}

// submitStatement is submit for a function that runs one statement.
func (s *Store) submitStatement(ctx context.Context, fn func(tx *Tx) error) error {
	return s.enqueue(&txRequest{ctx: ctx, fn: fn, done: make(chan error, 1), single: true})
}

func (s *Store) enqueue(req *txRequest) error {
	ctx := req.ctx
	select {
	case s.group.reqs <- req:
	case <-s.group.stop:
		return fmt.Errorf("begin: %w", ErrClosed)
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued it runs: wait for the outcome even if ctx ends meanwhile,
	// so the caller never reports failure for a committed write.
	return <-req.done
}

func (s *Store) runGroup(batch []*txRequest) {
	results := make([]error, len(batch))
	// Between groups the writer's connection is free: prepare what the
	// last groups ran unprepared.
	s.wstmts.prepareWanted(context.Background())
	sqlTx, err := s.write.BeginTx(context.Background(), nil)
	if err != nil {
		for _, r := range batch {
			r.done <- s.mapErr(fmt.Errorf("begin: %w", err))
		}
		return
	}
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		if r.single {
			results[i] = s.runStatement(sqlTx, r)
		} else {
			results[i] = s.runSavepoint(sqlTx, r)
		}
	}
	commitErr := sqlTx.Commit()
	select {
	case s.group.committed <- struct{}{}:
	default: // a checkpoint is already due
	}
	for i, r := range batch {
		if results[i] == nil && commitErr != nil {
			results[i] = s.mapErr(fmt.Errorf("commit: %w", commitErr))
		}
		r.done <- results[i]
	}
}

// runStatement runs a one-statement function in the shared transaction.
func (s *Store) runStatement(sqlTx *sql.Tx, r *txRequest) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("statement panicked: %v", p)
		}
	}()
	tx := &Tx{Store: *s}
	tx.q = sqlTx
	return r.fn(tx)
}

// runSavepoint runs one transaction function inside a savepoint of the
// shared transaction; its error (or panic) undoes only its own writes.
func (s *Store) runSavepoint(sqlTx *sql.Tx, r *txRequest) (err error) {
	if _, err := sqlTx.Exec(`SAVEPOINT ward_tx`); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("transaction panicked: %v", p)
		}
		if err != nil {
			if _, rbErr := sqlTx.Exec(`ROLLBACK TO ward_tx`); rbErr != nil {
				err = fmt.Errorf("%w (and rollback to savepoint failed: %v)", err, rbErr)
			}
		}
		if _, relErr := sqlTx.Exec(`RELEASE ward_tx`); relErr != nil && err == nil {
			err = fmt.Errorf("release savepoint: %w", relErr)
		}
	}()
	tx := &Tx{Store: *s}
	tx.q = sqlTx
	return r.fn(tx)
}
