package store

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// FailureWindow is one key's count of failed sign-ins in its current window.
type FailureWindow struct {
	Key   string
	Start time.Time // the window's first failure
	Count int       // failures in the window before this one
}

// CountLoginFailure adds one failure to each key's window (a new window
// when the key has none or its window began window ago or earlier) and
// returns each key's window with the count before this failure, in the
// order of keys. Each key's increment is atomic: concurrent callers (in
// any replica) see distinct counts, so at most N of them see a count
// below N. Expired windows of other keys are pruned on the way.
func (s *Store) CountLoginFailure(ctx context.Context, keys []string, now time.Time, window time.Duration) ([]FailureWindow, error) {
	// Lock rows in one order, so two callers sharing keys cannot deadlock.
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	expired := ms(now.Add(-window))
	got := make(map[string]FailureWindow, len(sorted))
	err := s.WithTx(ctx, func(tx *Tx) error {
		for _, k := range sorted {
			var start int64
			var n int
			err := tx.queryRow(ctx, `INSERT INTO login_failures (key, window_start, count) VALUES (?, ?, 1)
				ON CONFLICT (key) DO UPDATE SET
				  count = CASE WHEN login_failures.window_start <= ? THEN 1 ELSE login_failures.count + 1 END,
				  window_start = CASE WHEN login_failures.window_start <= ? THEN excluded.window_start ELSE login_failures.window_start END
				RETURNING window_start, count`, k, ms(now), expired, expired).Scan(&start, &n)
			if err != nil {
				return s.mapErr(err)
			}
			got[k] = FailureWindow{Key: k, Start: time.UnixMilli(start), Count: n - 1}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count login failure: %w", err)
	}
	s.pruneLoginFailures(ctx, expired)
	out := make([]FailureWindow, len(keys))
	for i, k := range keys {
		out[i] = got[k]
	}
	return out, nil
}

// pruneLoginFailures drops a few expired windows. Best effort: a row left
// behind is reset by its key's next failure. On PostgreSQL it skips rows
// another transaction holds, so it never waits on (or deadlocks with) a
// concurrent count.
func (s *Store) pruneLoginFailures(ctx context.Context, expired int64) {
	q := `DELETE FROM login_failures WHERE key IN (SELECT key FROM login_failures WHERE window_start <= ? LIMIT 100)`
	if s.dialect == Postgres {
		q = `DELETE FROM login_failures WHERE key IN (SELECT key FROM login_failures WHERE window_start <= ? LIMIT 100 FOR UPDATE SKIP LOCKED)`
	}
	if _, err := s.exec(ctx, q, expired); err != nil {
		s.log.WarnContext(ctx, "prune login failures", "err", err)
	}
}

// UncountLoginFailure takes one failure back from each key (an attempt that
// was refused, succeeded, or failed for a reason other than the
// credentials). Keys without a failure are left alone.
func (s *Store) UncountLoginFailure(ctx context.Context, keys []string) error {
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	err := s.WithTx(ctx, func(tx *Tx) error {
		for _, k := range sorted {
			if _, err := tx.exec(ctx, `UPDATE login_failures SET count = count - 1 WHERE key = ? AND count > 0`, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("uncount login failure: %w", err)
	}
	return nil
}

// ClearLoginFailures forgets the keys' failures.
func (s *Store) ClearLoginFailures(ctx context.Context, keys []string) error {
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	err := s.WithTx(ctx, func(tx *Tx) error {
		for _, k := range sorted {
			if _, err := tx.exec(ctx, `DELETE FROM login_failures WHERE key = ?`, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("clear login failures: %w", err)
	}
	return nil
}
