package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// AddRateCounts adds each key's count to its row of the window starting
// at window and returns every key's total after the addition (all
// replicas' counts). One transaction for the batch; keys are locked in
// sorted order, so two replicas adding the same keys cannot deadlock.
// A count of 0 reads the total without writing (an upsert of 0 would
// still write a row version on PostgreSQL).
func (s *Store) AddRateCounts(ctx context.Context, window time.Time, counts map[string]int64) (map[string]int64, error) {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(map[string]int64, len(keys))
	err := s.WithTx(ctx, func(tx *Tx) error {
		for _, k := range keys {
			var total int64
			if counts[k] == 0 {
				err := tx.queryRow(ctx, `SELECT count FROM rate_counts WHERE key = ? AND window_start = ?`, k, ms(window)).Scan(&total)
				if err != nil && !errors.Is(err, sql.ErrNoRows) {
					return s.mapErr(err)
				}
				out[k] = total
				continue
			}
			err := tx.queryRow(ctx, `INSERT INTO rate_counts (key, window_start, count) VALUES (?, ?, ?)
				ON CONFLICT (key, window_start) DO UPDATE SET count = rate_counts.count + excluded.count
				RETURNING count`, k, ms(window), counts[k]).Scan(&total)
			if err != nil {
				return s.mapErr(err)
			}
			out[k] = total
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("add rate counts: %w", err)
	}
	return out, nil
}

// PruneRateCounts deletes the rows of windows that started before before.
func (s *Store) PruneRateCounts(ctx context.Context, before time.Time) error {
	if _, err := s.exec(ctx, `DELETE FROM rate_counts WHERE window_start < ?`, ms(before)); err != nil {
		return fmt.Errorf("prune rate counts: %w", err)
	}
	return nil
}
