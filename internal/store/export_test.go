package store

import (
	"context"
	"log/slog"
	"strings"
	"time"
)

// OpenUpTo opens dsn and runs the migrations up to version last only: the
// upgrade tests build a database as an older release left it.
func OpenUpTo(ctx context.Context, dsn, last string) (*Store, error) {
	var s *Store
	var err error
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		s, err = openPostgres(ctx, dsn, slog.New(slog.DiscardHandler), Options{})
	} else {
		s, err = openSQLite(ctx, dsn, slog.New(slog.DiscardHandler))
	}
	if err != nil {
		return nil, err
	}
	if err := s.migrateUpTo(ctx, last); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Exec runs one statement outside any transaction (? placeholders).
func (s *Store) Exec(ctx context.Context, q string, args ...any) error {
	_, err := s.exec(ctx, q, args...)
	return err
}

// QueryInt runs a query returning one integer (? placeholders).
func (s *Store) QueryInt(ctx context.Context, q string, args ...any) (int64, error) {
	var n int64
	err := s.queryRow(ctx, q, args...).Scan(&n)
	return n, err
}

// QueryString runs a query returning one string (? placeholders).
func (s *Store) QueryString(ctx context.Context, q string, args ...any) (string, error) {
	var v string
	err := s.queryRow(ctx, q, args...).Scan(&v)
	return v, err
}

// CacheLeased reports whether the resource cache may serve reads (this
// replica's lease holds).
func (s *Store) CacheLeased() bool { return s.rs != nil && s.rs.leased() }

// ExpireCacheLease ends the lease on this replica's clock, as a freeze
// past it would.
func (s *Store) ExpireCacheLease() { s.rs.setLease(time.Time{}) }

// CacheAlone reports whether this replica's writes skip the wait for
// other replicas' caches.
func (s *Store) CacheAlone() bool { return s.rs != nil && s.rs.alone() }

// QueryRowScan runs a one-row query (? placeholders) into dest.
func (s *Store) QueryRowScan(ctx context.Context, q string, dest ...any) error {
	return s.queryRow(ctx, q).Scan(dest...)
}

// FlushCreates writes rs as one batch of creates (PostgreSQL), each with
// its index rows and pending audit event (nil: none), and returns each
// create's outcome.
func (s *Store) FlushCreates(ctx context.Context, rs []Resource, index [][]IndexRow, audits []*PendingAudit) []error {
	batch := make([]*queuedCreate, len(rs))
	for i, r := range rs {
		batch[i] = &queuedCreate{ctx: ctx, r: r, index: index[i], audit: audits[i]}
	}
	return s.flushCreates(batch)
}
